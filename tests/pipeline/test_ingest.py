"""Ingest end to end on real files: stage, validate, commit, re-delivery, quarantine,
proofs, diffs, concurrency and crash safety."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from anchoring.verify import verify_record_proof
from pipeline.contract import Contract, load_contract
from pipeline.errors import ReadError, ValidationFailed
from pipeline.home import Home
from pipeline.ingest import ValidatedDelivery, ingest
from pipeline.prove import prove_record
from pipeline.store import Store

ORIGIN = "trials.example.org/log"

CONTRACT = {
    "name": "lb",
    "fields": [
        {"name": "USUBJID", "type": "string", "constraints": {"required": True}},
        {"name": "LBSEQ", "type": "integer", "constraints": {"required": True}},
        {
            "name": "LBTESTCD",
            "type": "string",
            "constraints": {"enum": ["ALB", "ALT", "AST"], "maxLength": 8},
        },
        {"name": "LBSTRESN", "type": "number", "constraints": {"minimum": 0}},
        {
            "name": "LBDTC",
            "type": "string",
            "constraints": {"pattern": r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2})?"},
        },
    ],
    "primaryKey": ["USUBJID", "LBSEQ"],
}


def lb_table(rows: int, seed: int = 0) -> pa.Table:
    rng = random.Random(seed)
    return pa.table(
        {
            "USUBJID": [f"01-701-{1000 + i // 5}" for i in range(rows)],
            "LBSEQ": [i % 5 + 1 for i in range(rows)],
            "LBTESTCD": [rng.choice(["ALB", "ALT", "AST"]) for _ in range(rows)],
            "LBSTRESN": [round(rng.uniform(1, 90), 2) if i % 9 else None for i in range(rows)],
            "LBDTC": [f"2014-0{1 + i % 9}-1{i % 10}" for i in range(rows)],
        }
    )


def write_csv(table: pa.Table, path: Path) -> Path:
    pacsv.write_csv(table, path)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


@pytest.fixture
def contract_path(tmp_path: Path) -> Path:
    path = tmp_path / "contracts" / "lb.json"
    path.parent.mkdir()
    path.write_text(json.dumps(CONTRACT))
    return path


def test_commit_redeliver_and_prove(home: Home, contract_path: Path, tmp_path: Path) -> None:
    contract = load_contract(contract_path)
    table = lb_table(40)
    first = ingest(home, write_csv(table, tmp_path / "lb1.csv"), "T1", "lb", contract)
    assert (first.status, first.version, first.log_index) == ("committed", 1, 0)
    again = ingest(home, tmp_path / "lb1.csv", "T1", "lb", contract)
    assert (again.status, again.version) == ("unchanged", 1)
    assert home.log().size() == 1

    # The same data in another format under the same contract: a new version with the
    # same canonical records, under another root (salts bind the version).
    shuffled = table.take(list(reversed(range(table.num_rows))))
    pq.write_table(shuffled, tmp_path / "lb1.parquet")
    second = ingest(home, tmp_path / "lb1.parquet", "T1", "lb", contract)
    assert second.version == 2
    assert second.manifest["root"] != first.manifest["root"]
    from pipeline.diff import diff_versions

    unchanged = diff_versions(Store(home.path, home.log()), "T1", "lb", 1, 2)
    assert unchanged.summary() == {"added": 0, "removed": 0, "changed": 0}
    assert second.manifest["previous"] == home.log().entry(0).leaf_hash.hex()

    stored = pq.read_table(second.version_dir / "records.parquet")
    keys = list(
        zip(stored.column("USUBJID").to_pylist(), stored.column("LBSEQ").to_pylist(), strict=True)
    )
    assert keys == sorted(keys)

    for version, index in ((1, 0), (2, 39)):
        proof = prove_record(home, "T1", "lb", version=version, index=index)
        verify_record_proof(proof, [home.verifier])
    by_key = prove_record(home, "T1", "lb", key={"USUBJID": "01-701-1003", "LBSEQ": "2"})
    assert by_key.record["USUBJID"] == "01-701-1003" and by_key.record["LBSEQ"] == 2
    verify_record_proof(by_key, [home.verifier])


def test_failed_validation_quarantines_and_changes_nothing(
    home: Home, contract_path: Path, tmp_path: Path
) -> None:
    contract = load_contract(contract_path)
    bad = lb_table(20).to_pydict()
    bad["LBTESTCD"][3] = "XYZ"  # not in the enum
    bad["LBSEQ"][7] = bad["LBSEQ"][6]  # duplicate key
    bad["USUBJID"][7] = bad["USUBJID"][6]
    path = write_csv(pa.table(bad), tmp_path / "bad.csv")
    with pytest.raises(ValidationFailed) as info:
        ingest(home, path, "T1", "lb", contract)
    quarantine = Path(info.value.quarantine_path)
    assert (quarantine / "bad.csv").read_bytes() == path.read_bytes()
    report = json.loads((quarantine / "report.json").read_text())
    assert report["success"] is False
    assert "<html" in (quarantine / "report.html").read_text().lower()
    assert home.log().size() == 0
    assert not (home.path / "datasets" / "T1" / "lb").exists() or not any(
        p.name.startswith("v") for p in (home.path / "datasets" / "T1" / "lb").iterdir()
    )


def test_unknown_columns_are_refused_and_quarantined(
    home: Home, contract_path: Path, tmp_path: Path
) -> None:
    table = lb_table(5).append_column("EXTRA", pa.array(["x"] * 5))
    with pytest.raises(ValidationFailed, match=r"extra\.csv.*EXTRA") as info:
        ingest(home, write_csv(table, tmp_path / "extra.csv"), "T1", "lb",
               load_contract(contract_path))
    assert str(home.path / "raw") not in str(info.value)  # names the delivery, not its copy
    report = json.loads((Path(info.value.quarantine_path) / "report.json").read_text())
    assert report["success"] is False and "EXTRA" in report["error"]
    assert home.log().size() == 0


def test_a_missing_file_is_a_read_error(home: Home, contract_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"nope\.csv"):
        ingest(home, tmp_path / "nope.csv", "T1", "lb", load_contract(contract_path))


def test_diff_matches_by_key_and_both_sides_prove(
    home: Home, contract_path: Path, tmp_path: Path
) -> None:
    contract = load_contract(contract_path)
    v1 = lb_table(30)
    ingest(home, write_csv(v1, tmp_path / "v1.csv"), "T1", "lb", contract)
    data = v1.to_pydict()
    data["LBSTRESN"][4] = 99.5  # changed
    for column in data:  # removed: the last row
        data[column] = data[column][:-1]
    data["USUBJID"].append("01-701-9999")  # added
    data["LBSEQ"].append(1)
    data["LBTESTCD"].append("ALB")
    data["LBSTRESN"].append(1.0)
    data["LBDTC"].append("2014-05-05")
    ingest(home, write_csv(pa.table(data), tmp_path / "v2.csv"), "T1", "lb", contract)

    from pipeline.diff import diff_versions

    diff = diff_versions(Store(home.path, home.log()), "T1", "lb", 1, 2)
    assert diff.summary() == {"added": 1, "removed": 1, "changed": 1}
    entries = {e["change"]: e for e in diff.entries()}
    assert entries["changed"]["columns"] == ["LBSTRESN"]
    assert entries["added"]["key"] == {"USUBJID": "01-701-9999", "LBSEQ": 1}
    old = prove_record(home, "T1", "lb", version=1, index=entries["changed"]["from_index"])
    new = prove_record(home, "T1", "lb", version=2, index=entries["changed"]["to_index"])
    for proof in (old, new):
        verify_record_proof(proof, [home.verifier])
    assert old.record["LBSTRESN"] != new.record["LBSTRESN"] == 99.5


def _ingest_in_child(home_path: str, source: str, dataset: str, contract: str) -> str:
    home = Home.open(Path(home_path))
    result = ingest(home, Path(source), "T1", dataset, load_contract(Path(contract)))
    return result.status


def test_two_datasets_ingested_at_once_both_commit(
    home: Home, contract_path: Path, tmp_path: Path
) -> None:
    files = [write_csv(lb_table(2000, seed), tmp_path / f"d{seed}.csv") for seed in (1, 2)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        statuses = pool.starmap(
            _ingest_in_child,
            [
                (str(home.path), str(files[0]), "lb_a", str(contract_path)),
                (str(home.path), str(files[1]), "lb_b", str(contract_path)),
            ],
        )
    assert statuses == ["committed", "committed"]
    store = Store(home.path, home.log())
    assert [v.version for v in store.versions("T1", "lb_a")] == [1]
    assert [v.version for v in store.versions("T1", "lb_b")] == [1]
    assert sorted(v.log_index for d in ("lb_a", "lb_b") for v in store.versions("T1", d)) == [0, 1]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    from pipeline.cli import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _killed_commit(
    home_path: Path, validated: ValidatedDelivery, contract: Contract, step: str
) -> int:
    """Commit in a forked child that SIGKILLs itself after ``step``; its wait status."""
    from pipeline.ingest import commit
    from pipeline.store import KILL_AFTER_STEP_ENV

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.environ[KILL_AFTER_STEP_ENV] = step
            commit(Home.open(home_path), validated, contract)
        except BaseException:
            status = 3
        os._exit(status)
    return os.waitpid(pid, 0)[1]


def _check_commands_after_the_kill(capsys: pytest.CaptureFixture[str], path: Path,
                                   proof: Path, appended: bool) -> None:
    """Every command opens the home first, which rolls a stranded version forward: with
    the append done, ``versions`` lists it and ``prove`` proves it at once."""
    code, out, err = _cli(capsys, "versions", "--home", str(path), "--trial", "T1",
                          "--dataset", "lb", "--json")
    if not appended:
        assert code == 2 and "T1/lb: no committed version" in err, err
        return
    assert code == 0, err
    assert len(json.loads(out)["versions"]) == 1
    assert (path / "datasets" / "T1" / "lb" / "v1" / "records.parquet").is_file()
    code, _out, err = _cli(capsys, "prove", "--home", str(path), "--trial", "T1",
                           "--dataset", "lb", "--index", "3", "--out", str(proof))
    assert code == 0, err


def test_sigkill_after_every_commit_step_leaves_a_whole_or_no_version(
    contract_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kill the commit after each of its steps. Never a partial version; after the
    append, opening the home rolls the version forward before anything reads it (prove
    and versions work at once); a re-run gives the uninterrupted root; audit is clean."""
    from anchoring.verify import verify_record_proof
    from pipeline.audit import audit
    from pipeline.ingest import commit, stage
    from pipeline.readers import read_delivery
    from pipeline.store import COMMIT_STEPS

    source = write_csv(lb_table(300, 7), tmp_path / "lb.csv")
    contract = load_contract(contract_path)
    template = Home.init(tmp_path / "template", ORIGIN)
    # The delivery as validation leaves it in work/ (without running the suite, for speed).
    staged = stage(template, source)
    work = template.path / "work" / "T1" / "lb" / staged.sha256
    work.mkdir(parents=True)
    pq.write_table(read_delivery(staged.path, contract, name=staged.name).table,
                   work / "typed.parquet")
    (work / "report.json").write_text('{"success": true}\n')
    (work / "report.html").write_text("<html>passed</html>\n")
    report_sha = hashlib.sha256((work / "report.json").read_bytes()).hexdigest()
    validated = ValidatedDelivery(staged, "T1", "lb", work, report_sha)

    def fresh(name: str) -> tuple[Path, ValidatedDelivery]:
        """A copy of the template home, and the validated delivery as it is seen there."""
        path = Path(shutil.copytree(template.path, tmp_path / name))
        seen = json.dumps(validated.to_json()).replace(str(template.path), str(path))
        return path, ValidatedDelivery.from_json(json.loads(seen))

    reference_path, reference_delivery = fresh("reference")
    expected = commit(Home.open(reference_path), reference_delivery, contract).manifest["root"]

    for step in COMMIT_STEPS:
        path, delivery = fresh(f"killed-{step}")
        status = _killed_commit(path, delivery, contract, step)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, step

        appended = COMMIT_STEPS.index(step) >= COMMIT_STEPS.index("append")
        untouched = Home.open(path, read_only=True)  # look before recovery runs
        assert untouched.log().size() == int(appended), step
        dataset_dir = path / "datasets" / "T1" / "lb"
        visible = sorted(dataset_dir.glob("v*"))
        assert len(visible) == int(step == "publish"), step  # only a renamed, whole one
        for version_dir in visible:
            for part in ("records.parquet", "tree.bin", "manifest.json", "contract.json",
                         "report.json", "report.html"):
                assert (version_dir / part).is_file(), (step, part)

        _check_commands_after_the_kill(capsys, path, tmp_path / f"{step}.json", appended)
        assert not list(dataset_dir.glob(".staging-*")), step

        home = Home.open(path)
        # Re-run: a delivery already in the log is found before validation, else committed.
        rerun = (ingest(home, source, "T1", "lb", contract) if appended
                 else commit(home, delivery, contract))
        assert rerun.status == ("unchanged" if appended else "committed"), step
        versions = Store(home.path, home.log()).versions("T1", "lb")
        assert [v.version for v in versions] == [1], step
        assert versions[0].manifest["root"] == expected, step
        verify_record_proof(prove_record(home, "T1", "lb", index=5), [home.verifier])
        report = audit(home)
        assert report.ok, (step, report.findings)
