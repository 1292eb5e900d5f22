"""The transparency log's tables as earlier releases declared them (SQLAlchemy Core), for
tests that read a log database over an independent connection, or create one the way an
earlier release did."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()
# SQLite makes a column a rowid alias only if its type is exactly INTEGER.
_Index = BigInteger().with_variant(Integer(), "sqlite")

log_head = Table(
    "log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", _Index, nullable=False),
    Column("origin", Text, nullable=False),
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", _Index, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("leaf_input", LargeBinary, nullable=False),
    Column("entry_key", String(1024), nullable=True),
    Column("key_seq", Integer, nullable=True),
    Column("appended_at", String(40), nullable=False),
    UniqueConstraint("entry_key", "key_seq", name="uq_log_entries_key_seq"),
)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", _Index, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", _Index, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

anchor_local_ledger = Table(
    "anchor_local_ledger",
    MetaData(),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
    Column("receipt", Text, nullable=False),
)
