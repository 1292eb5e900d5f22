"""The audit on clean data, and the tamper matrix: every case is caught and named."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ingest import CONTRACT, ORIGIN, lb_table, write_csv

from anchoring.note import Signer, sign_note
from pipeline.anchor import anchor, anchored
from pipeline.audit import audit
from pipeline.contract import load_contract
from pipeline.home import Home
from pipeline.ingest import ingest


@pytest.fixture(scope="module")
def clean_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two datasets, two versions of one, anchored, audited clean: built once."""
    folder = tmp_path_factory.mktemp("clean-home")
    home = Home.init(folder / "home", ORIGIN)
    contract_path = folder / "lb.json"
    contract_path.write_text(json.dumps(CONTRACT))
    contract = load_contract(contract_path)
    ingest(home, write_csv(lb_table(50, 1), folder / "a1.csv"), "T1", "lb", contract)
    anchor(home)
    ingest(home, write_csv(lb_table(60, 2), folder / "a2.csv"), "T1", "lb", contract)
    ingest(home, write_csv(lb_table(20, 3), folder / "b1.csv"), "T1", "lb_b", contract)
    anchor(home)
    home.log().close()  # nothing held open while the home is copied
    return home.path


@pytest.fixture
def home(clean_home: Path, tmp_path: Path) -> Home:
    """A copy of the clean home for one test to tamper with; it audits clean."""
    home = Home.open(shutil.copytree(clean_home, tmp_path / "home", symlinks=True))
    report = audit(home)
    assert report.ok, report.findings
    assert report.versions_checked == 3 and report.receipts_checked == 2
    return Home.open(home.path)


def version_dir(home: Home, version: int = 2, dataset: str = "lb") -> Path:
    return home.path / "datasets" / "T1" / dataset / f"v{version}"


def checks(home: Home) -> set[str]:
    report = audit(home)
    assert not report.ok
    return {f.check for f in report.findings}


def rewrite_records(home: Home, change: Callable[[pa.Table], pa.Table]) -> None:
    path = version_dir(home) / "records.parquet"
    pq.write_table(change(pq.read_table(path)), path)


def db(home: Home) -> sqlite3.Connection:
    return sqlite3.connect(home.path / "log.db", isolation_level=None)


def test_clean_audit_passes_and_names_nothing(home: Home) -> None:
    report = audit(home)
    assert report.ok and report.findings == []
    assert report.checkpoints_checked >= 2


def test_flipped_byte_in_parquet(home: Home) -> None:
    path = version_dir(home) / "records.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40
    path.write_bytes(bytes(data))
    found = audit(home).findings
    assert found and all((f.trial, f.dataset, f.version) == ("T1", "lb", 2) for f in found)
    assert {f.check for f in found} & {"records", "root", "salts", "leaf-order"}


def test_record_value_edited_and_file_rewritten_validly(home: Home) -> None:
    def edit(table: pa.Table) -> pa.Table:
        values = table.column("LBSTRESN").to_pylist()
        values[5] = 12345.0
        return table.set_column(
            table.column_names.index("LBSTRESN"), "LBSTRESN", pa.array(values, pa.float64())
        )

    rewrite_records(home, edit)
    assert checks(home) == {"root"}


def test_stored_salt_replaced(home: Home) -> None:
    """A salt no longer the trial key's is named, though the records still hash to the root."""

    def edit(table: pa.Table) -> pa.Table:
        salts = table.column("_salt").to_pylist()
        salts[-1] = bytes(32)
        index = table.column_names.index("_salt")
        return table.set_column(index, "_salt", pa.array(salts, pa.binary(32)))

    rewrite_records(home, edit)
    assert checks(home) == {"salts"}


def test_record_deleted(home: Home) -> None:
    rewrite_records(home, lambda t: t.slice(1))
    assert {"records", "root"} <= checks(home)


def test_rows_reordered(home: Home) -> None:
    rewrite_records(home, lambda t: t.take(list(reversed(range(t.num_rows)))))
    assert "leaf-order" in checks(home)


def test_version_directory_deleted(home: Home) -> None:
    shutil.rmtree(version_dir(home, 1, "lb_b"))
    report = audit(home)
    assert [(f.check, f.dataset, f.version) for f in report.findings] == [
        ("version-files", "lb_b", 1)
    ]


def test_log_row_rewritten(home: Home) -> None:
    with db(home) as conn:
        (leaf,) = conn.execute("SELECT leaf_input FROM log_entries WHERE idx = 1").fetchone()
        manifest = json.loads(leaf)
        manifest["records"] += 1
        forged = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        conn.execute("UPDATE log_entries SET leaf_input = ? WHERE idx = 1", (forged,))
    assert "log-entry" in checks(home)


def test_checkpoint_replaced_by_one_signed_with_another_key(home: Home) -> None:
    with db(home) as conn:
        size, note = conn.execute(
            "SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        body = note.partition("\n\n")[0] + "\n"
        forged = sign_note(body, [Signer.generate(ORIGIN)])
        conn.execute("UPDATE log_checkpoints SET note = ? WHERE size = ?", (forged, size))
    assert "checkpoint-signature" in checks(home)


def test_log_truncated_and_regrown_is_a_fork(home: Home) -> None:
    """Drop the last two entries and append two others: same size, another history."""
    size = home.log().size()
    with db(home) as conn:
        conn.execute("DELETE FROM log_entries WHERE idx >= ?", (size - 2,))
        for level in range(64):
            conn.execute(
                "DELETE FROM log_nodes WHERE level = ? AND ((idx + 1) << level) > ?",
                (level, size - 2),
            )
        conn.execute("DELETE FROM log_checkpoints WHERE size > ?", (size - 2,))
        conn.execute("UPDATE log_head SET size = ? WHERE id = 1", (size - 2,))
    log = Home.open(home.path).log()
    log.append(b'{"forged":1}')
    log.append(b'{"forged":2}')
    assert log.size() == size
    assert anchored(home)[-1] == size
    found = checks(Home.open(home.path))
    assert "fork" in found


def anchor_dir(home: Home, size: int) -> Path:
    return home.path / "anchors" / f"{size:012d}"


def test_deleted_anchor_folder(home: Home) -> None:
    shutil.rmtree(anchor_dir(home, anchored(home)[0]))
    found = audit(home).findings
    assert [f.check for f in found] == ["anchor-missing"]
    assert "anchors/000000000001/" in found[0].detail


def test_deleted_anchor_receipt(home: Home) -> None:
    (anchor_dir(home, anchored(home)[-1]) / "local.json").unlink()
    assert "anchor-missing" in checks(home)


def test_deleted_anchor_checkpoint(home: Home) -> None:
    (anchor_dir(home, anchored(home)[-1]) / "checkpoint.txt").unlink()
    assert "anchor-missing" in checks(home)


def test_last_ledger_row_deleted(home: Home) -> None:
    """The chain stays intact without its last entry: only the receipt on disk tells."""
    with db(home) as conn:
        conn.execute("DELETE FROM anchor_local_ledger WHERE idx = 1")
    assert "ledger-entry" in checks(home)


def test_ledger_row_edited_and_rechained(home: Home) -> None:
    """An edited row whose entry hash is recomputed: consistent in itself, but not the
    entry the receipt recorded."""
    from anchoring.ledgers.receipts import local_entry_hash

    with db(home) as conn:
        (text,) = conn.execute("SELECT receipt FROM anchor_local_ledger WHERE idx = 1").fetchone()
        row = json.loads(text)
        row["anchored_at"] = "2020-01-01T00:00:00Z"
        row["entry_hash"] = local_entry_hash(row)
        conn.execute("UPDATE anchor_local_ledger SET receipt = ?, entry_hash = ? WHERE idx = 1",
                     (json.dumps(row), row["entry_hash"]))
    assert "ledger-entry" in checks(home)


def test_ledger_row_edited(home: Home) -> None:
    with db(home) as conn:
        (text,) = conn.execute("SELECT receipt FROM anchor_local_ledger WHERE idx = 0").fetchone()
        conn.execute("UPDATE anchor_local_ledger SET receipt = ? WHERE idx = 0",
                     (text.replace('"size": 1', '"size": 2'),))
    assert "ledger-entry" in checks(home)


def test_version_folder_absent_from_the_log(home: Home) -> None:
    shutil.copytree(version_dir(home, 2), version_dir(home, 3))
    found = audit(home).findings
    assert [(f.check, f.dataset, f.version) for f in found] == [("unlogged-version", "lb", 3)]


def test_report_html_edited(home: Home) -> None:
    path = version_dir(home, 1, "lb_b") / "report.html"
    path.write_text(path.read_text().replace("</body>", "<p>all fine</p></body>"))
    found = audit(home).findings
    assert [(f.check, f.dataset, f.version) for f in found] == [("report", "lb_b", 1)]
    assert "report.html" in found[0].detail


def test_a_version_committed_without_the_report_html_hash_audits_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions committed before manifests carried validation.report_html_sha256."""
    import pipeline.ingest as ingest_module

    committed_hash = ingest_module.manifest_leaf_input

    def without_html_hash(manifest: dict[str, object]) -> bytes:
        validation = manifest["validation"]
        assert isinstance(validation, dict)
        validation.pop("report_html_sha256")
        return committed_hash(manifest)

    home = Home.init(tmp_path / "home", ORIGIN)
    (tmp_path / "lb.json").write_text(json.dumps(CONTRACT))
    contract = load_contract(tmp_path / "lb.json")
    with monkeypatch.context() as patched:
        patched.setattr(ingest_module, "manifest_leaf_input", without_html_hash)
        old = ingest(home, write_csv(lb_table(10, 1), tmp_path / "a.csv"), "T1", "lb", contract)
    new = ingest(home, write_csv(lb_table(12, 2), tmp_path / "b.csv"), "T1", "lb", contract)
    assert "report_html_sha256" not in old.manifest["validation"]
    assert "report_html_sha256" in new.manifest["validation"]
    report = audit(home)
    assert report.ok and report.versions_checked == 2, report.findings


def test_an_unreadable_log_database_is_a_finding(home: Home) -> None:
    with db(home) as conn:  # every page into the file itself, none left in the WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database = home.path / "log.db"
    data = bytearray(database.read_bytes())
    data[:16] = b"garbled garbled!"  # no longer an SQLite header
    database.write_bytes(bytes(data))
    found = audit(Home.open(home.path)).findings
    assert [f.check for f in found] == ["log-database"]
    assert "damaged" in found[0].detail


@pytest.mark.parametrize("step", ["anchor-prepared", "anchor-submitted"])
def test_an_anchoring_killed_midway_is_finished_with_one_ledger_entry_per_size(
    home: Home, step: str
) -> None:
    from anchoring._internal.ledgers.local import LocalLedger
    from pipeline.anchor import ANCHOR_STEPS
    from pipeline.store import KILL_AFTER_STEP_ENV

    assert step in ANCHOR_STEPS
    home.log().append(b'{"another":"entry"}')
    size = home.log().size()
    pid = os.fork()
    if pid == 0:  # the child SIGKILLs itself after the step
        os.environ[KILL_AFTER_STEP_ENV] = step
        try:
            anchor(Home.open(home.path))
        finally:
            os._exit(3)
    status = os.waitpid(pid, 0)[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    def ledger_sizes() -> list[int]:
        return [entry["size"] for entry in LocalLedger(Home.open(home.path).log()).entries()]

    assert size not in anchored(home)
    assert ledger_sizes().count(size) == (1 if step == "anchor-submitted" else 0)
    if step == "anchor-submitted":
        found = audit(Home.open(home.path)).findings
        assert [f.check for f in found] == ["anchor-missing"]
        assert "interrupted" in found[0].detail

    result = anchor(Home.open(home.path))
    assert result is not None and result.size == size
    assert ledger_sizes() == [1, 3, size]
    assert anchored(home)[-1] == size
    assert not list((home.path / "anchors").glob(".*"))
    assert anchor(Home.open(home.path)) is None
    report = audit(Home.open(home.path))
    assert report.ok, report.findings


def test_log_entry_deleted_is_named_not_a_crash(home: Home) -> None:
    """A row gone from the middle of the log: the checkpoints beyond it cannot be
    recomputed, and each says so."""
    with db(home) as conn:
        conn.execute("DELETE FROM log_entries WHERE idx = 1")
    report = audit(home)
    found = {f.check for f in report.findings}
    assert {"log-entry", "checkpoint-root"} <= found, report.findings
    assert "log entry 1 is missing" in {f.detail for f in report.findings}
