"""Ingest against hostile or unlucky deliveries: no file content or key material in any
output, symbolic links and paths in the home refused, owner-only files, header-only
deliveries, quarantine folder names, staging on a full disk, repeated JSON keys and
key values that differ only in their Unicode normalization."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from trialproof_cli import trialproof

from pipeline.contract import load_contract, parse_contract
from pipeline.errors import ReadError, ValidationFailed
from pipeline.home import Home
from pipeline.ingest import ingest, stage
from pipeline.quoting import library_reason, quote_names
from pipeline.readers import read_delivery
from pipeline.store import Store

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "trials.example.org/log"
CONTRACT = {
    "name": "lb",
    "fields": [
        {"name": "USUBJID", "type": "string", "constraints": {"required": True}},
        {"name": "LBSEQ", "type": "integer", "constraints": {"required": True}},
        {"name": "LBSTRESN", "type": "number", "constraints": {"minimum": 0}},
    ],
    "primaryKey": ["USUBJID", "LBSEQ"],
}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``trialproof ARGS`` in a process of its own (its output, umask and exit status)."""
    return trialproof(*args, env={"TRIALPROOF_HOME": str(home)}, cwd=REPO)


def lb_csv(path: Path, rows: int = 8) -> Path:
    pacsv.write_csv(pa.table({"USUBJID": [f"S{i // 4}" for i in range(rows)],
                              "LBSEQ": [i % 4 + 1 for i in range(rows)],
                              "LBSTRESN": [float(i) for i in range(rows)]}), path)
    return path


def one_error_line(stderr: str) -> bool:
    """The CLI's failure is one line (progress lines aside)."""
    return len([ln for ln in stderr.splitlines() if ln.startswith("trialproof:")]) == 1


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    assert run(path, "init", "--origin", ORIGIN).returncode == 0
    return path


@pytest.fixture
def contract_path(tmp_path: Path) -> Path:
    path = tmp_path / "contracts" / "lb.json"
    path.parent.mkdir()
    path.write_text(json.dumps(CONTRACT))
    return path


def secrets_of(home: Path) -> list[str]:
    """The key material of a home: the signing key's base64 part and the salt key."""
    skey = (home / "keys" / "log.skey").read_text().strip()
    salt = (home / "keys" / "salt.key").read_text().strip()
    return [skey.split("+", 4)[4], skey, salt]  # PRIVATE+KEY+name+keyid+base64key


def reports_and_notifications(home: Path) -> str:
    """Every report and notification in the home (raw/ and quarantine keep the delivered
    bytes themselves, as delivered)."""
    return "\n".join(p.read_text() for p in sorted(home.rglob("*"))
                     if p.name in ("report.json", "report.html", "notifications.log"))


# -- messages quote no content ---------------------------------------------------------


def test_column_names_are_escaped_truncated_and_capped() -> None:
    names = ["AGE", "two words", "x" * 70, "\u202eevil\nname", *(f"C{i}" for i in range(40))]
    text = quote_names(names)
    assert text.startswith('AGE, "two words", "' + "x" * 24 + '…" (70 characters), ')
    assert '"\\u202eevil\\u000aname"' in text and "\n" not in text and "\u202e" not in text
    assert text.endswith(" and 34 more") and "C6" not in text


def test_a_library_message_loses_what_it_quotes_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("A,B\n1,2\nsecret-value,other-secret,3\n")
    with pytest.raises(pa.ArrowInvalid) as caught:
        pacsv.read_csv(path)
    assert "secret-value" in str(caught.value)  # pyarrow quotes the row ...
    assert "secret" not in library_reason(caught.value)  # ... we do not
    assert "secret" not in library_reason(ValueError("Failed to parse string: 'secret' as x"))


def test_a_copied_or_linked_key_leaks_nowhere(home: Path, tmp_path: Path,
                                              contract_path: Path) -> None:
    """The review's attack: key files delivered as CSV, by copy and by link. Every output
    (stdout, stderr, reports, quarantine, notifications) is searched for the key material."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "skey.csv").write_bytes((home / "keys" / "log.skey").read_bytes())
    (drop / "salt.csv").write_bytes((home / "keys" / "salt.key").read_bytes())
    (drop / "skey-link.csv").symlink_to(home / "keys" / "log.skey")
    (drop / "skey.json").write_bytes((home / "keys" / "log.skey").read_bytes())
    outputs = []
    for name in ("skey.csv", "salt.csv", "skey-link.csv", "skey.json"):
        done = run(home, "ingest", str(drop / name), "--trial", "T1", "--dataset", "lb",
                   "--contract", str(contract_path))
        assert done.returncode == 2, done.stderr
        assert one_error_line(done.stderr) and "Traceback" not in done.stderr
        outputs += [done.stdout, done.stderr]
    # the registry entry pointing at the keys is refused, naming the entry
    registry = tmp_path / "registry.yaml"
    registry.write_text(json.dumps({"contracts": [str(contract_path.parent)], "datasets": [
        {"trial": "T1", "dataset": "lb", "contract": "lb", "deliveries": f"{home}/keys/*",
         "schedule": "@daily", "owners": ["dm@example.org"]}]}))
    checked = run(home, "registry", "check", "--registry", str(registry))
    assert checked.returncode == 2 and "datasets[0] (T1/lb) field 'deliveries'" in checked.stdout
    outputs += [checked.stdout, checked.stderr]
    # a failure notification for the rejected delivery
    from pipeline.registry import failure_notifier, load_registry

    os.environ["TRIALPROOF_HOME"] = str(home)
    try:
        registry.write_text(registry.read_text().replace(f"{home}/keys/*", f"{drop}/*.csv"))
        (entry,), problems = load_registry(registry, home)
        assert problems == []
        with pytest.raises(ValidationFailed) as caught:
            ingest(Home.open(home), drop / "skey.csv", "T1", "lb", load_contract(contract_path))
        failure_notifier(entry)({"exception": caught.value})
    finally:
        del os.environ["TRIALPROOF_HOME"]
    assert (home / "notifications.log").is_file()
    everything = "\n".join(outputs) + reports_and_notifications(home)
    assert "quarantine" in everything and "column(s) not in contract" in everything
    for secret in secrets_of(home):
        assert secret not in everything
    assert "is a symbolic link" in everything


# -- refused paths ------------------------------------------------------------------------


def test_symlinks_and_paths_in_the_home_are_refused(home: Path, tmp_path: Path,
                                                    contract_path: Path) -> None:
    real = lb_csv(tmp_path / "lb.csv")
    (tmp_path / "link.csv").symlink_to(real)
    (tmp_path / "linked-folder").symlink_to(tmp_path)
    inside = lb_csv(home / "lb.csv")
    cases = {
        tmp_path / "link.csv": "link.csv: refused: it is a symbolic link",
        tmp_path / "linked-folder" / "lb.csv": "linked-folder is a symbolic link",
        inside: "inside the trialproof home",
        home / "keys" / "log.skey": "inside the trialproof home",
        home / ".." / "home" / "keys" / "salt.key": "inside the trialproof home",
    }
    for path, words in cases.items():
        done = run(home, "ingest", str(path), "--trial", "T1", "--dataset", "lb",
                   "--contract", str(contract_path))
        assert done.returncode == 2 and words in done.stderr, (path, done.stderr)
        assert one_error_line(done.stderr)
    assert not (home / "raw").exists() or not any((home / "raw").iterdir())
    assert not (home / "quarantine").exists()
    assert run(home, "ingest", str(real), "--trial", "T1", "--dataset", "lb", "--contract",
               str(contract_path)).returncode == 0


def test_another_home_is_refused_too(tmp_path: Path) -> None:
    other = Home.init(tmp_path / "other", ORIGIN)
    mine = Home.init(tmp_path / "mine", ORIGIN)
    with pytest.raises(ReadError, match="inside the trialproof home"):
        stage(mine, other.path / "keys" / "salt.key")


# -- permissions --------------------------------------------------------------------------


def modes(home: Path) -> dict[str, int]:
    return {str(p.relative_to(home)) or ".": stat.S_IMODE(p.lstat().st_mode)
            for p in [home, *home.rglob("*")]}


def test_everything_in_the_home_is_owner_only(home: Path, tmp_path: Path,
                                              contract_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("USUBJID,LBSEQ,LBSTRESN\nS1,1,-5\n")
    for path in (lb_csv(tmp_path / "lb.csv"), bad):
        run(home, "ingest", str(path), "--trial", "T1", "--dataset", "lb", "--contract",
            str(contract_path))
    assert run(home, "anchor").returncode == 0
    found = modes(home)
    assert {"raw", "quarantine", "datasets", "keys", "log.db", "config.json"} <= set(found)
    assert any(name.startswith("quarantine/") for name in found)
    loose = {name: oct(mode) for name, mode in found.items()
             if mode & 0o077 or (mode & 0o700) not in (0o600, 0o700)}
    assert loose == {}


def test_a_group_readable_home_when_configured(home: Path, tmp_path: Path,
                                               contract_path: Path) -> None:
    config = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps({**config, "permissions": "group"}))
    assert run(home, "ingest", str(lb_csv(tmp_path / "lb.csv")), "--trial", "T1", "--dataset",
               "lb", "--contract", str(contract_path)).returncode == 0
    found = modes(home)
    assert found["raw"] == 0o750 and found["datasets/T1/lb/v1/records.parquet"] == 0o640
    assert found["keys"] == 0o700 and found["keys/log.skey"] == 0o600  # keys never


def test_notifications_are_owner_only(tmp_path: Path) -> None:
    from pipeline.registry import notify_failure

    home = Home.init(tmp_path / "home", ORIGIN)
    os.umask(0o022)  # a worker whose failure callback runs before any home was opened
    notify_failure(home.path, {"error": "x"})
    assert stat.S_IMODE((home.path / "notifications.log").stat().st_mode) == 0o600


# -- header-only deliveries -----------------------------------------------------------------


def test_a_header_only_delivery_is_refused_unless_the_contract_allows_it(
        home: Path, tmp_path: Path, contract_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("USUBJID,LBSEQ,LBSTRESN\n")
    done = run(home, "ingest", str(empty), "--trial", "T1", "--dataset", "lb", "--contract",
               str(contract_path))
    assert done.returncode == 2 and "no rows" in done.stderr and "allowEmpty" in done.stderr
    (folder,) = (home / "quarantine").iterdir()
    assert json.loads((folder / "report.json").read_text())["success"] is False
    assert run(home, "versions", "--trial", "T1", "--dataset", "lb",
               "--json").stdout.count('"version"') == 0

    allowing = tmp_path / "lb-empty-ok.json"
    allowing.write_text(json.dumps({**CONTRACT, "trialproof": {"allowEmpty": True}}))
    done = run(home, "ingest", str(empty), "--trial", "T1", "--dataset", "lb2", "--contract",
               str(allowing), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["manifest"]["records"] == 0
    with pytest.raises(Exception, match="allowEmpty must be true or false"):
        parse_contract({**CONTRACT, "trialproof": {"allowEmpty": "yes"}})


# -- quarantine folders ---------------------------------------------------------------------


def test_long_names_keep_their_report_and_a_file_rejected_twice_has_one_folder(
        tmp_path: Path, contract_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    contract = load_contract(contract_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("USUBJID,LBSEQ,LBSTRESN\nS1,1,-5\n")
    trial, dataset = "T" * 128, "D" * 128
    folders = []
    for _ in range(2):
        with pytest.raises(ValidationFailed) as caught:
            ingest(home, bad, trial, dataset, contract)
        folders.append(Path(caught.value.quarantine_path))
        assert Path(caught.value.report_path).is_file()
    assert folders[0] == folders[1] and len(folders[0].name) < 200
    assert [p.name for p in (home.path / "quarantine").iterdir()] == [folders[0].name]
    # another short-named dataset rejecting the same bytes twice: one more folder
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            ingest(home, bad, "T1", "lb", contract)
    assert len(list((home.path / "quarantine").iterdir())) == 2


# -- staging ---------------------------------------------------------------------------------


def test_a_full_disk_during_staging_leaves_no_temporary_file(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    big = tmp_path / "big.csv"
    big.write_bytes(b"A\n" + b"1\n" * 600_000)
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from pipeline.errors import StoreError
        from pipeline.home import Home
        from pipeline.ingest import stage
        home = Home.open(Path({str(home.path)!r}))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            stage(home, Path({str(big)!r}))
        except StoreError as exc:
            print(exc)
            sys.exit(2)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.returncode == 2, done.stderr
    assert "cannot be staged" in done.stdout and "File too large" in done.stdout
    assert list((home.path / "raw").iterdir()) == []


def test_recovery_removes_temporary_files_of_dead_writers(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    raw = home.path / "raw"
    raw.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = raw / f".{'a' * 64}.{int(dead.stdout)}.tmp"
    stale.write_bytes(b"half a delivery")
    mine = raw / f".{'b' * 64}.{os.getpid()}.tmp"  # a live writer's (young, this process)
    mine.write_bytes(b"being written")
    done = Store(home.path, home.log()).recover()
    assert not stale.exists() and mine.exists()
    assert any("raw/.aaaa" in line for line in done)
    # staging removes them too
    stale.write_bytes(b"half a delivery")
    stage(home, lb_csv(tmp_path / "lb.csv"))
    assert not stale.exists()


# -- JSON and Unicode -------------------------------------------------------------------------


def dataset_json(rows_text: str) -> str:
    return ('{"datasetJSONVersion": "1.1.0", "name": "LB", "records": 1, "columns": ['
            '{"itemOID": "a", "name": "USUBJID", "dataType": "string"},'
            '{"itemOID": "b", "name": "LBSEQ", "dataType": "integer"},'
            '{"itemOID": "c", "name": "LBSTRESN", "dataType": "float"}], ' + rows_text + "}")


def test_repeated_json_keys_are_an_error(tmp_path: Path, contract_path: Path) -> None:
    contract = load_contract(contract_path)
    two_rows = tmp_path / "lb.json"
    two_rows.write_text(dataset_json('"rows": [["FAKE", 1, 1.0]], "rows": [["S1", 1, 2.0]]'))
    with pytest.raises(ReadError, match=r'lb\.json: duplicate JSON key rows in one object'):
        read_delivery(two_rows, contract)
    ndjson = tmp_path / "lb.ndjson"
    ndjson.write_text('{"USUBJID": "S1", "LBSEQ": 1, "LBSTRESN": 1.0}\n'
                      '{"USUBJID": "S1", "LBSEQ": 2, "LBSEQ": 3, "LBSTRESN": 1.0}\n')
    with pytest.raises(ReadError, match=r"lb\.ndjson: duplicate JSON key LBSEQ .*\(line 2\)"):
        read_delivery(ndjson, contract)
    fine = tmp_path / "ok.json"
    fine.write_text(dataset_json('"rows": [["S1", 1, 2.0]]'))
    assert read_delivery(fine, contract).rows == 1


def test_nfc_and_nfd_spellings_of_one_key_fail_the_key(tmp_path: Path,
                                                        contract_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    nfc = unicodedata.normalize("NFC", "JOSÉ")
    nfd = unicodedata.normalize("NFD", "JOSÉ")
    assert nfc != nfd
    path = tmp_path / "lb.csv"
    pacsv.write_csv(pa.table({"USUBJID": [nfc, nfd, "S2"], "LBSEQ": [1, 1, 1],
                              "LBSTRESN": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(ValidationFailed) as caught:
        ingest(home, path, "T1", "lb", load_contract(contract_path))
    report = json.loads(Path(caught.value.report_path).with_name("report.json").read_text())
    (failed,) = [r for r in report["results"] if not r["success"]]
    assert failed["columns"] == ["USUBJID", "LBSEQ"]
    assert "Unicode normalization" in failed["check"] and failed["unexpected_count"] == 2
    assert [r["row"] for r in failed["failing_rows"]] == [0, 1]
    assert {r["value"] for r in failed["failing_rows"]} == {"JOS\\xc9", "JOSE\\u0301"}
    assert home.log().size() == 0
    # one spelling only: valid
    pacsv.write_csv(pa.table({"USUBJID": [nfd, "S2"], "LBSEQ": [1, 1],
                              "LBSTRESN": [1.0, 3.0]}), path)
    assert ingest(home, path, "T1", "lb", load_contract(contract_path)).status == "committed"


def test_stage_errors_name_the_file(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    with pytest.raises(ReadError, match=r"nope\.csv: no such file"):
        stage(home, tmp_path / "nope.csv")
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(ReadError, match="not a regular file"):
        stage(home, tmp_path / "pipe.csv")


def test_a_failed_durable_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    from pipeline.fsutil import write_bytes_durably

    script = textwrap.dedent(f"""
        import resource, signal
        from pathlib import Path
        from pipeline.fsutil import write_bytes_durably
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            write_bytes_durably(Path({str(tmp_path / "report.json")!r}), b"x" * 5000)
        except OSError as exc:
            print(exc.strerror)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert "File too large" in done.stdout
    assert list(tmp_path.iterdir()) == []
    write_bytes_durably(tmp_path / "report.json", b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
