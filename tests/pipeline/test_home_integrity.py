"""Opening a home: a lost log is refused, a damaged one is named, a read-only home still
serves versions, prove and audit."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import site
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ingest import CONTRACT, ORIGIN, lb_table, write_csv

from anchoring.verify import verify_record_proof
from pipeline.anchor import anchor
from pipeline.audit import audit
from pipeline.cli import main
from pipeline.contract import load_contract
from pipeline.home import AUDIT_CHECKPOINT, Home
from pipeline.ingest import ingest
from pipeline.prove import prove_record
from pipeline.store import Store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two versions, anchored and audited clean."""
    base = tmp_path_factory.mktemp("template")
    home = Home.init(base / "home", ORIGIN)
    (base / "lb.json").write_text(json.dumps(CONTRACT))
    contract = load_contract(base / "lb.json")
    ingest(home, write_csv(lb_table(30, 1), base / "a.csv"), "T1", "lb", contract)
    ingest(home, write_csv(lb_table(40, 2), base / "b.csv"), "T1", "lb", contract)
    anchor(home)
    assert audit(home).ok
    home.log().close()  # every page in log.db itself
    return home.path


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "home"))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def versions(capsys: pytest.CaptureFixture[str], home: Path) -> tuple[int, str, str]:
    return cli(capsys, "versions", "--home", str(home), "--trial", "T1", "--dataset", "lb")


def remove_database(home: Path) -> None:
    for name in ("log.db", "log.db-wal", "log.db-shm"):
        (home / name).unlink(missing_ok=True)


# -- a lost log -------------------------------------------------------------------


def test_a_deleted_log_database_is_refused_not_recreated(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remove_database(home)
    for args in (
        ("versions", "--home", str(home), "--trial", "T1", "--dataset", "lb"),
        ("checkpoint", "--home", str(home)),
        ("anchor", "--home", str(home)),
        ("audit", "--home", str(home)),
    ):
        code, _out, err = cli(capsys, *args)
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "log database" in err and "missing" in err and "restore" in err
        assert "trialproof init" in err and "datasets/" in err
        assert not (home / "log.db").exists()


def test_an_emptied_log_database_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remove_database(home)
    (home / "log.db").touch()
    code, _out, err = versions(capsys, home)
    assert code == 2 and "is empty" in err and "restore" in err
    assert (home / "log.db").stat().st_size == 0


def test_a_log_emptied_of_its_entries_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(home / "log.db") as conn:
        for table in ("log_entries", "log_nodes", "log_checkpoints"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE log_head SET size = 0")
    code, _out, err = versions(capsys, home)
    assert code == 2 and "holds no entries" in err


@pytest.mark.parametrize("kept", ["anchors", "audit"])
def test_anchors_or_an_audit_checkpoint_alone_show_a_history(
    home: Path, kept: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(home / "datasets")
    shutil.rmtree(home / ("audit" if kept == "anchors" else "anchors"))
    remove_database(home)
    code, _out, err = cli(capsys, "vkey", "--home", str(home))
    assert code == 2
    assert ("anchors/" if kept == "anchors" else str(AUDIT_CHECKPOINT)) in err


def test_a_home_without_history_may_recreate_its_log(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    home.log().close()
    remove_database(home.path)
    assert Home.open(home.path).log().size() == 0
    assert (home.path / "log.db").is_file()


# -- a damaged log ----------------------------------------------------------------


def garble(home: Path) -> None:
    database = home / "log.db"
    data = bytearray(database.read_bytes())
    data[:16] = b"not sqlite now!!"
    database.write_bytes(bytes(data))


def truncate(home: Path) -> None:
    database = home / "log.db"
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 3])


@pytest.mark.parametrize("damage", [garble, truncate])
def test_a_damaged_log_is_named_and_audit_reports_it(
    home: Path, damage: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(damage)
    damage(home)
    code, _out, err = versions(capsys, home)
    assert code == 2, err
    assert err.count("\n") == 1 and "internal error" not in err
    assert "log database is damaged" in err
    code, out, err = cli(capsys, "audit", "--home", str(home), "--json")
    assert code == 1, err
    findings = json.loads(out)["findings"]
    assert [f["check"] for f in findings][-1] == "log-database"


# -- a read-only home ---------------------------------------------------------------


def snapshot(home: Path) -> dict[str, str]:
    """Every file and folder of the home with its content hash (folders: '/')."""
    return {
        str(p.relative_to(home)): "/" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.name not in ("log.db-wal", "log.db-shm")  # SQLite's read-side shared memory
    }


def test_read_only_opening_serves_versions_prove_and_audit_without_writing(home: Path) -> None:
    # Grow the log past its last checkpoint, so that prove has one to sign.
    with sqlite3.connect(home / "log.db") as conn:
        conn.execute("DELETE FROM log_checkpoints WHERE size = 2")
    before = snapshot(home)
    opened = Home.open(home, read_only=True)
    assert opened.read_only and opened.log().read_only
    store = Store(opened.path, opened.log())
    assert [v.version for v in store.versions("T1", "lb")] == [1, 2]
    proof = prove_record(opened, "T1", "lb", index=3)
    verify_record_proof(proof, [opened.verifier])
    report = audit(opened)
    assert report.ok, report.findings
    assert snapshot(home) == before
    with pytest.raises(Exception, match="read-only"):
        opened.log().append(b"x")


@pytest.fixture
def unprivileged_python() -> Iterator[tuple[list[str], dict[str, str], int]]:
    """A command that runs Python with this package as an unprivileged user (as root:
    user ``nobody`` through ``setpriv``), its environment, and that user's id."""
    environment = dict(os.environ)
    paths = [str(REPO), *site.getsitepackages()]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    if os.geteuid() != 0:
        yield [sys.executable], environment, os.geteuid()
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")
    uid = 65534
    prefix = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    for python in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
        probe = subprocess.run([*prefix, python, "-c", "import pipeline.cli"], env=environment,
                               capture_output=True, check=False, cwd="/")
        if probe.returncode == 0:
            yield [*prefix, python], environment, uid
            return
    pytest.skip("no Python interpreter this package runs on is open to an unprivileged user")


def test_a_read_only_home_serves_versions_prove_and_audit(
    template: Path, unprivileged_python: tuple[list[str], dict[str, str], int]
) -> None:
    """The real thing: a home its user cannot write (chmod -R a-w)."""
    python, environment, uid = unprivileged_python
    base = Path(tempfile.mkdtemp(prefix="trialproof-ro-"))
    try:
        home = Path(shutil.copytree(template, base / "home"))
        for path in [base, *home.rglob("*"), home]:
            os.chown(path, uid, -1)
        before = snapshot(home)
        for path in [*home.rglob("*"), home]:
            os.chmod(path, path.stat().st_mode & ~0o222)
        out = base / "out"
        out.mkdir()
        os.chown(out, uid, -1)

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*python, "-m", "pipeline", *args, "--home", str(home)],
                                  env=environment, capture_output=True, text=True, check=False,
                                  cwd=str(out))

        listed = run("versions", "--trial", "T1", "--dataset", "lb", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [v["version"] for v in json.loads(listed.stdout)["versions"]] == [1, 2]
        proved = run("prove", "--trial", "T1", "--dataset", "lb", "--index", "4",
                     "--out", str(out / "proof.json"))
        assert proved.returncode == 0, proved.stderr
        audited = run("audit")
        assert audited.returncode == 0, audited.stderr + audited.stdout
        assert snapshot(home) == before
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_versions_of_an_unknown_dataset_exit_2(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert versions(capsys, home)[0] == 0
    code, out, err = cli(capsys, "versions", "--home", str(home), "--trial", "T1",
                         "--dataset", "nope")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "T1/nope" in err and "trialproof datasets --trial T1" in err
