"""Ingest end to end on real files: stage, validate, commit, re-delivery, quarantine,
proofs, diffs, concurrency and crash safety."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from anchoring.verify import verify_record_proof
from pipeline.contract import load_contract
from pipeline.errors import ReadError, ValidationFailed
from pipeline.home import Home
from pipeline.ingest import ingest
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


_COMMIT_CHILD = """
import sys
from pathlib import Path
from pipeline.contract import load_contract
from pipeline.home import Home
from pipeline.ingest import StagedDelivery, ValidatedDelivery, commit
home_dir, sha, size, name, report_sha, contract = sys.argv[1:7]
home = Home.open(Path(home_dir))
staged = StagedDelivery(home.path / "raw" / sha, sha, int(size), name)
work = home.path / "work" / "T1" / "lb" / sha
validated = ValidatedDelivery(staged, "T1", "lb", work, report_sha)
commit(home, validated, load_contract(Path(contract)))
"""


def _clone_keys(source: Home, path: Path) -> Home:
    """A new home with the same keys, so roots are comparable."""
    clone = Home.init(path, ORIGIN)
    for name in ("log.skey", "salt.key"):
        target = clone.path / "keys" / name
        target.write_bytes((source.path / "keys" / name).read_bytes())
    return Home.open(path)


def _commit_window(command: list[str], dataset_dir: Path) -> tuple[float, float]:
    """When, after start, the commit begins (a staging directory appears) and the run ends."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    commit_start = None
    while child.poll() is None:
        if commit_start is None and dataset_dir.exists() and any(dataset_dir.iterdir()):
            commit_start = time.perf_counter() - started
        time.sleep(0.002)
    assert child.returncode == 0, child.stderr.read() if child.stderr else ""
    end = time.perf_counter() - started
    return (commit_start if commit_start is not None else 0.5 * end), end


def test_sigkill_during_commit_never_leaves_a_partial_version(
    home: Home, contract_path: Path, tmp_path: Path
) -> None:
    """Kill the commit step at 20 random moments. Each time no partial version is visible
    and the log is consistent; a re-run commits the root of an uninterrupted run."""
    from pipeline.ingest import StagedDelivery, ValidatedDelivery, commit, stage, validate

    source = write_csv(lb_table(20_000, 7), tmp_path / "big.csv")
    template = _clone_keys(home, tmp_path / "template")
    contract = load_contract(contract_path)
    validated = validate(template, stage(template, source), "T1", "lb", contract)
    args = [
        validated.staged.sha256,
        str(validated.staged.size),
        validated.staged.name,
        validated.report_sha256,
        str(contract_path),
    ]

    def command(target: Path) -> list[str]:
        return [sys.executable, "-c", _COMMIT_CHILD, str(target), *args]

    def fresh(name: str) -> Home:
        shutil.copytree(template.path, tmp_path / name)
        return Home.open(tmp_path / name)

    reference = fresh("reference")
    begin, end = _commit_window(command(reference.path), reference.path / "datasets" / "T1" / "lb")
    expected = Store(reference.path, reference.log()).versions("T1", "lb")[0].manifest["root"]

    rng = random.Random(20261129)
    after_append = 0
    for attempt in range(20):
        victim = fresh(f"victim{attempt}")
        child = subprocess.Popen(
            command(victim.path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(begin * 0.9, end * 1.05))
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()

        size = victim.log().size()
        assert size in (0, 1)
        after_append += size
        dataset_dir = victim.path / "datasets" / "T1" / "lb"
        visible = sorted(p.name for p in dataset_dir.glob("v*")) if dataset_dir.exists() else []
        assert len(visible) <= size  # no version directory without its log entry
        for name in visible:  # and a visible one is whole
            for part in (
                "records.parquet",
                "tree.bin",
                "manifest.json",
                "contract.json",
                "report.json",
            ):
                assert (dataset_dir / name / part).is_file()

        staged = StagedDelivery(victim.path / "raw" / args[0], args[0], int(args[1]), args[2])
        rerun = commit(
            victim,
            ValidatedDelivery(
                staged, "T1", "lb", victim.path / "work" / "T1" / "lb" / args[0], args[3]
            ),
            contract,
        )
        assert rerun.status == ("unchanged" if size else "committed")
        versions = Store(victim.path, victim.log()).versions("T1", "lb")
        assert [v.version for v in versions] == [1]
        assert versions[0].manifest["root"] == expected
        assert versions[0].path.is_dir()
        assert not list(dataset_dir.glob(".staging-*"))
        from pipeline.audit import audit

        report = audit(victim)
        assert report.ok, report.findings
