"""The audit on clean data, and the tamper matrix: every case is caught and named."""

from __future__ import annotations

import json
import shutil
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


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """Two datasets, two versions of one, anchored, audited clean once."""
    home = Home.init(tmp_path / "home", ORIGIN)
    contract_path = tmp_path / "lb.json"
    contract_path.write_text(json.dumps(CONTRACT))
    contract = load_contract(contract_path)
    ingest(home, write_csv(lb_table(50, 1), tmp_path / "a1.csv"), "T1", "lb", contract)
    anchor(home)
    ingest(home, write_csv(lb_table(60, 2), tmp_path / "a2.csv"), "T1", "lb", contract)
    ingest(home, write_csv(lb_table(20, 3), tmp_path / "b1.csv"), "T1", "lb_b", contract)
    anchor(home)
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
