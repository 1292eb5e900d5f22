"""The log's database layer on plain DB-API: databases made by earlier releases (through
SQLAlchemy) keep working, the schema is the same, the URL forms, and no SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, inspect
from sqlalchemy.pool import NullPool
from trialproof_log_schema import anchor_local_ledger, log_head, metadata

from anchoring._internal.ledgers.local import LocalLedger
from anchoring._internal.log import TransparencyLog
from anchoring._internal.tree import MerkleTree
from anchoring.errors import LogError
from anchoring.note import Signer

ORIGIN = "trials.example.org/log"
TABLES = ("log_head", "log_entries", "log_nodes", "log_checkpoints", "anchor_local_ledger")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _schema(url: str) -> dict[str, Any]:
    """Every table's columns (name, type, nullable), primary key and unique constraints."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        found = inspect(engine)
        shape: dict[str, Any] = {}
        for table in TABLES:
            columns = [(c["name"], str(c["type"]), c["nullable"])
                       for c in found.get_columns(table)]
            unique = sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table))
            shape[table] = (columns, found.get_pk_constraint(table)["constrained_columns"], unique)
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                shape["sql"] = {name: " ".join(sql.split()).endswith("WITHOUT ROWID")
                                for name, sql in conn.exec_driver_sql(
                                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
        return shape
    finally:
        engine.dispose()


def _made_by_an_earlier_release(url: str) -> None:
    """The tables as the SQLAlchemy-based log created them, with its head row."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            anchor_local_ledger.metadata.create_all(conn)
            conn.execute(insert(log_head).values(id=1, size=0, origin=ORIGIN))
    finally:
        engine.dispose()


def test_the_schema_is_the_one_earlier_releases_made(url: str, tmp_path: Path) -> None:
    with TransparencyLog(url, ORIGIN) as log:
        LocalLedger(log)
        made_now = _schema(url)
    earlier = f"sqlite:///{tmp_path / 'earlier.db'}" if url.startswith("sqlite") else url
    if not url.startswith("sqlite"):  # one PostgreSQL database per test: start it afresh
        engine = create_engine(url, poolclass=NullPool)
        with engine.begin() as conn:
            for table in TABLES:
                conn.exec_driver_sql(f"DROP TABLE {table}")
        engine.dispose()
    _made_by_an_earlier_release(earlier)
    assert _schema(earlier) == made_now


def test_a_log_made_by_an_earlier_release_keeps_working(url: str) -> None:
    _made_by_an_earlier_release(url)
    data = [b"manifest %d" % i for i in range(37)]
    signer = Signer.generate("log.example")
    with TransparencyLog(url, ORIGIN) as log:
        log.append_many(data[:20])
        for item in data[20:]:
            log.append(item)
        tree = MerkleTree.from_leaf_inputs(data)
        assert log.root() == tree.root()
        assert log.inclusion_proof(21, 30) == tree.inclusion_proof(21, 30)
        assert log.consistency_proof(7) == tree.consistency_proof(7)
        ledger = LocalLedger(log)
        receipt = ledger.submit(log.sign_checkpoint(signer))
        assert [entry["entry_hash"] for entry in ledger.entries()] == [receipt["entry_hash"]]
        assert ledger.chain_problems() == []
    with pytest.raises(LogError, match="origin"):
        TransparencyLog(url, "other.example.org/log")


_WITHOUT_SQLALCHEMY = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sqlalchemy":
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
from anchoring._internal.log import TransparencyLog
from anchoring._internal.ledgers.local import LocalLedger
from anchoring.note import Signer
log = TransparencyLog(sys.argv[1], "example.org/log")
log.append_many([b"a", b"b", b"c"])
LocalLedger(log).submit(log.sign_checkpoint(Signer.generate("example.org/log")))
print(log.size(), len(LocalLedger(log).entries()))
"""


def test_the_log_needs_no_sqlalchemy(url: str) -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_SQLALCHEMY, url], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "1"]


@pytest.mark.postgres
def test_postgresql_urls_with_and_without_the_driver_name(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg2://")
    with TransparencyLog(postgres_url, ORIGIN) as log:
        log.append(b"one")
    plain = postgres_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    with TransparencyLog(plain, ORIGIN) as log:
        assert log.size() == 1


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with TransparencyLog("sqlite:///relative.db", ORIGIN) as log:
        log.append(b"x")
    assert (tmp_path / "relative.db").is_file()
    spaced = tmp_path / "a folder"
    spaced.mkdir()
    with TransparencyLog(f"sqlite:///{tmp_path}/a%20folder/log.db", ORIGIN) as log:
        log.append(b"x")
    assert (spaced / "log.db").is_file()
    with TransparencyLog("sqlite:///:memory:", ORIGIN) as log:
        assert log.size() == 0
    for url, message in (
        ("mysql://nobody@127.0.0.1/x", "SQLite and PostgreSQL, not 'mysql'"),
        ("postgresql+asyncpg://nobody@127.0.0.1/x", "not 'asyncpg'"),
        ("sqlite:///log.db?mode=memory", "no query parameters"),
        ("not a url", "not a valid database URL"),
    ):
        with pytest.raises(LogError, match=message):
            TransparencyLog(url, ORIGIN)


def test_repr_hides_the_password() -> None:
    from anchoring._internal.log.database import LogDatabase

    database = LogDatabase("postgresql://user:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in repr(database)
    assert database.display_url == "postgresql://user:***@127.0.0.1:1/x"
    assert repr(TransparencyLog("sqlite://", ORIGIN)) == f"TransparencyLog('sqlite://', {ORIGIN!r})"
