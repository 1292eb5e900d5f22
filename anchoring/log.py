"""The append-only transparency log of dataset-version manifests (DESIGN Formats 6).

One RFC 9162 Merkle tree (RFC 9162 §2.1) over every manifest in the order it
was appended, stored through SQLAlchemy Core on SQLite (the default, a file
such as ``sqlite:////abs/path/log.db``) or PostgreSQL
(``postgresql+psycopg2://...``).

Tables
------
``log_head``
    One row (``id = 1``): the tree size, and the origin the log was created
    under. Every append locks this row first, so appends are serialized.
``log_entries``
    ``idx`` (primary key), ``leaf_hash``, ``leaf_input``, ``entry_key`` and
    ``key_seq`` (both nullable; ``UNIQUE(entry_key, key_seq)``) and
    ``appended_at`` (RFC 3339, UTC). Entries sharing a key form a chain:
    ``key_seq`` counts 1, 2, 3 ... within the key.
``log_nodes``
    ``(level, idx) -> hash`` for every *perfect* subtree (see
    :mod:`anchoring.merkle.shape`): level 0 holds the leaf hashes, and
    ``(l + 1, i)`` is written as soon as its children ``(l, 2i)`` and
    ``(l, 2i + 1)`` both exist. The nodes of a size-n tree never change when
    the log grows, so any root or proof for any size up to the current one
    is read from at most about 2·log2(n) stored nodes with one ``SELECT``.
``log_checkpoints``
    ``size`` (primary key), ``root``, ``note`` (the signed C2SP
    tlog-checkpoint text) and ``created_at``.

Concurrency
-----------
Appends are serialized by the database, so several processes (each with its
own :class:`TransparencyLog` on the same URL) never both get an index, and an
append that fails leaves no trace (it is one transaction):

* SQLite runs in WAL mode with a 30 s busy timeout; the driver's own
  transaction handling is switched off and every write transaction starts
  with ``BEGIN IMMEDIATE``, which takes the database write lock up front.
  Reads use a plain (deferred) ``BEGIN`` and are not blocked by writers.
* PostgreSQL appends start with ``SELECT ... FROM log_head WHERE id = 1 FOR
  UPDATE``.

Damage and read-only homes
--------------------------
Any driver error (a truncated or garbled file, missing tables, an
unreachable server) is raised as :class:`LogDatabaseError`, one line naming
the damage. ``read_only=True`` opens the log for reading only: an SQLite file
is opened with ``mode=ro`` (and ``immutable=1`` when its folder is not
writable and it has no write-ahead log, since SQLite could not create its
shared-memory file there), and every write is refused.

Each instance owns its engine. A process forked after an engine was created
must not use the parent's pooled connections: a fork hook drops them in the
child (``Engine.dispose(close=False)``), but the intended pattern is to
create the :class:`TransparencyLog` in the child process.

This module imports only the standard library, SQLAlchemy and ``anchoring``.
"""

from __future__ import annotations

__all__ = ["LogEntry", "TransparencyLog"]

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    DuplicateEntryError,
    LogConsistencyError,
    LogDatabaseError,
    LogError,
    NoteFormatError,
)
from anchoring.merkle.hasher import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from anchoring.merkle.shape import (
    NodeId,
    consistency_ranges,
    fold_perfect_nodes,
    inclusion_ranges,
    perfect_nodes,
)
from anchoring.note import Signer, parse_note

#: Seconds a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT = 30.0
#: Rows per ``executemany`` in :meth:`TransparencyLog.append_many`.
BATCH_ROWS = 50_000
#: The longest entry key, in characters.
MAX_KEY_LENGTH = 1024
#: Key of the PostgreSQL advisory lock that serializes table creation.
_PG_INIT_LOCK = 0x74_70_6C_6F_67  # "tplog"
_BEGIN_OPTION = "trialproof_sqlite_begin"

_metadata = MetaData()
# SQLite makes a column a rowid alias only if its type is exactly INTEGER.
_Index = BigInteger().with_variant(Integer(), "sqlite")

log_head = Table(
    "log_head",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", _Index, nullable=False),
    Column("origin", Text, nullable=False),
)

log_entries = Table(
    "log_entries",
    _metadata,
    Column("idx", _Index, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(HASH_SIZE), nullable=False),
    Column("leaf_input", LargeBinary, nullable=False),
    Column("entry_key", String(MAX_KEY_LENGTH), nullable=True),
    Column("key_seq", Integer, nullable=True),
    Column("appended_at", String(40), nullable=False),
    UniqueConstraint("entry_key", "key_seq", name="uq_log_entries_key_seq"),
)

log_nodes = Table(
    "log_nodes",
    _metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", _Index, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(HASH_SIZE), nullable=False),
    sqlite_with_rowid=False,
)

log_checkpoints = Table(
    "log_checkpoints",
    _metadata,
    Column("size", _Index, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(HASH_SIZE), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)


# -- engines ---------------------------------------------------------------------

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _drop_pools_after_fork() -> None:
    # A forked child must never talk over its parent's sockets or file handles.
    for engine in list(_ENGINES):
        engine.dispose(close=False)


@cache
def _watch_forks() -> None:
    """Register the fork hook once, with the first engine: importing changes nothing."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_drop_pools_after_fork)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 driver: BEGIN is ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed append survives power loss, so a checkpoint signed
        # over it can never refer to entries the log has forgotten.
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")


def _sqlite_read_only_uri(database: str) -> str:
    """An SQLite URI that opens ``database`` without writing to it or beside it.

    A WAL database needs a shared-memory file: SQLite creates one in a writable
    folder; in a read-only folder without a write-ahead log, ``immutable=1``
    reads the file directly (every committed page is in it).
    """
    path = os.path.abspath(database)
    uri = f"file:{quote(path)}?mode=ro"
    wal = f"{path}-wal"
    has_wal = os.path.exists(wal) and os.path.getsize(wal) > 0
    if not has_wal and not os.access(os.path.dirname(path), os.W_OK):
        uri += "&immutable=1"
    return uri


@contextmanager
def _database_errors() -> Iterator[None]:
    """Driver errors become :class:`LogDatabaseError`: one line naming the damage."""
    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        raise LogDatabaseError(
            f"the log database is damaged or unreadable: {reason or type(exc.orig).__name__}"
        ) from None


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _make_engine(url: str, read_only: bool = False) -> tuple[Engine, str, bool]:
    """An engine for ``url``, its backend name, and whether it is an in-memory SQLite."""
    try:
        parsed = make_url(url)
    except Exception:  # ArgumentError, ValueError ...; the text may hold a password
        raise LogError("the log database URL is not a valid SQLAlchemy URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
        if memory:
            engine = create_engine(parsed, connect_args=args, poolclass=StaticPool)
        elif read_only:
            uri = _sqlite_read_only_uri(database)

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(
                    uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False
                )

            engine = create_engine(parsed, creator=connect, pool_size=2, max_overflow=8)
        else:
            engine = create_engine(parsed, connect_args=args, pool_size=2, max_overflow=8)
        event.listen(
            engine,
            "connect",
            _sqlite_connect_read_only if read_only and not memory else _sqlite_connect,
        )
        event.listen(engine, "begin", _sqlite_begin)
    elif backend == "postgresql":
        memory = False
        engine = create_engine(parsed, pool_size=2, max_overflow=8, pool_pre_ping=True)
    else:
        raise LogError(f"the log supports SQLite and PostgreSQL, not {backend!r}")
    _watch_forks()
    _ENGINES.add(engine)
    return engine, backend, memory


def _now() -> str:
    """The current time as RFC 3339 UTC text with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _as_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise LogError(f"{what} must be bytes, got {type(value).__name__}")
    return bytes(value)


# -- entries -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """One log entry: its index, RFC 9162 §2.1.1 leaf hash and leaf input (the manifest)."""

    index: int
    leaf_hash: bytes
    leaf_input: bytes
    key: str | None
    key_seq: int | None


_ENTRY_COLUMNS = (
    log_entries.c.idx,
    log_entries.c.leaf_hash,
    log_entries.c.leaf_input,
    log_entries.c.entry_key,
    log_entries.c.key_seq,
)


def _entry(row: Any, check: bool = True) -> LogEntry:
    index, stored_hash, data, key, seq = row
    data = bytes(data)
    stored_hash = bytes(stored_hash)
    if check and leaf_hash(data) != stored_hash:
        raise LogConsistencyError(f"entry {index}: stored leaf hash does not match its input")
    return LogEntry(int(index), stored_hash, data, key, None if seq is None else int(seq))


_ENTRY_FIELDS = ("idx", "leaf_hash", "leaf_input", "entry_key", "key_seq", "appended_at")
_NODE_FIELDS = ("level", "idx", "hash")


class _Append:
    """Hashes new leaves onto the right frontier and queues the rows to insert.

    The frontier holds, per level, the hash of the perfect node still waiting
    for its right sibling: exactly the perfect nodes of ``[0, size)``
    (RFC 9162 §2.1.1: a parent exists once both its children do).
    """

    def __init__(
        self, size: int, frontier: dict[int, bytes], appended_at: str, sqlite: bool
    ) -> None:
        self.size = size
        self.frontier = frontier
        self.appended_at = appended_at
        self.sqlite = sqlite
        self.entries: list[tuple[Any, ...]] = []
        self.nodes: list[tuple[int, int, bytes]] = []

    def add(self, data: bytes, key: str | None = None, key_seq: int | None = None) -> int:
        index = self.size
        h = leaf_hash(data)
        self.entries.append((index, h, data, key, key_seq, self.appended_at))
        nodes = self.nodes
        nodes.append((0, index, h))
        level, i = 0, index
        frontier = self.frontier
        while i & 1:  # (level, i) is a right child: its parent is now complete
            h = node_hash(frontier.pop(level), h)
            level += 1
            i >>= 1
            nodes.append((level, i, h))
        frontier[level] = h
        self.size = index + 1
        return index

    def flush(self, conn: Connection) -> None:
        # SQLAlchemy's per-row parameter processing would cost more than the
        # database itself, so rows of plain values go to the driver directly.
        try:
            _insert_rows(conn, self.sqlite, log_entries, _ENTRY_FIELDS, self.entries)
            _insert_rows(conn, self.sqlite, log_nodes, _NODE_FIELDS, self.nodes)
        except IntegrityError as exc:
            # Under the append lock nothing else writes, so a clash means the
            # head row and the tables disagree.
            raise LogConsistencyError(
                "the log already holds an entry or node beyond its recorded size "
                f"({type(exc.orig).__name__})"
            ) from None
        self.entries = []
        self.nodes = []


#: Rows per multi-row ``INSERT ... VALUES`` statement on PostgreSQL.
_PG_ROWS_PER_STATEMENT = 1000


def _insert_rows(
    conn: Connection,
    sqlite: bool,
    table: Table,
    fields: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert tuples of plain values: sqlite3 ``executemany`` (qmark), or
    multi-row ``VALUES`` statements for psycopg2 (pyformat)."""
    if not rows:
        return
    head = f"INSERT INTO {table.name} ({', '.join(fields)}) VALUES "
    if sqlite:
        conn.exec_driver_sql(head + f"({', '.join('?' * len(fields))})", list(rows))
        return
    one = f"({', '.join(['%s'] * len(fields))})"
    for start in range(0, len(rows), _PG_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _PG_ROWS_PER_STATEMENT]
        params = tuple(value for row in chunk for value in row)
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), params)


# -- the log ------------------------------------------------------------------------


class TransparencyLog:
    """An append-only RFC 9162 §2.1 Merkle tree of manifests, stored in SQL.

    ``TransparencyLog(url, origin)`` opens the log at ``url``, creating its
    tables if they are missing. Creation is idempotent and safe when several
    processes do it at once. A log remembers the origin it was created under;
    opening it under another origin raises :class:`LogError`.

    Precondition violations (an index or size out of range) raise
    :class:`LogError`; stored state that contradicts itself (a missing node,
    a leaf hash that does not match its input) raises
    :class:`LogConsistencyError`; a database that cannot be read raises
    :class:`LogDatabaseError`.

    ``read_only=True`` never writes: the tables must exist, appends are
    refused, and :meth:`sign_checkpoint` signs without storing.
    """

    def __init__(self, url: str, origin: str, *, read_only: bool = False) -> None:
        if not origin or "\n" in origin:
            raise LogError("log origin must be a non-empty single line")
        self.origin = origin
        self.read_only = read_only
        self._engine, self._backend, memory = _make_engine(url, read_only)
        self._postgres = self._backend == "postgresql"
        # An in-memory SQLite is a single shared connection: guard it with a lock.
        self._guard: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
        self._init_schema()

    # -- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled connections. The instance can no longer be used safely."""
        self._engine.dispose()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TransparencyLog({self._engine.url.render_as_string()!r}, {self.origin!r})"

    def _init_schema(self) -> None:
        if self.read_only:
            with self._read() as conn:
                stored = conn.execute(select(log_head.c.origin).where(log_head.c.id == 1)).first()
            if stored is None:
                raise LogDatabaseError("the log database has no log_head row")
            if stored[0] != self.origin:
                raise LogError(f"the log at this URL has origin {stored[0]!r}, not {self.origin!r}")
            return
        with self._write_conn() as conn:
            if self._postgres:
                conn.execute(select(func.pg_advisory_xact_lock(_PG_INIT_LOCK)))
            _metadata.create_all(conn, checkfirst=True)
            stored = conn.execute(select(log_head.c.origin).where(log_head.c.id == 1)).first()
            if stored is None:
                conn.execute(insert(log_head).values(id=1, size=0, origin=self.origin))
            elif stored[0] != self.origin:
                raise LogError(f"the log at this URL has origin {stored[0]!r}, not {self.origin!r}")

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def _write_conn(self) -> Iterator[Connection]:
        """A transaction that holds the SQLite write lock from its first statement."""
        if self.read_only:
            raise LogDatabaseError("the log is open read-only; this operation writes to it")
        with _database_errors(), self._guard, self._engine.connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextmanager
    def _locked(self) -> Iterator[tuple[Connection, int]]:
        """The serialized append transaction, with the size read under the lock."""
        with self._write_conn() as conn:
            query = select(log_head.c.size).where(log_head.c.id == 1)
            if self._postgres:
                query = query.with_for_update()
            size = conn.execute(query).scalar_one_or_none()
            if size is None:
                raise LogConsistencyError("the log_head row is missing")
            yield conn, int(size)

    @contextmanager
    def serialized(self) -> Iterator[tuple[Connection, int]]:
        """A write transaction serialized with appends, and the log size under it.

        For records kept beside the log (the local anchor ledger) that must be
        ordered with the log's own appends.
        """
        with self._locked() as (conn, size):
            yield conn, size

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction on the log's database."""
        with self._read() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with _database_errors(), self._guard, self._engine.connect() as conn, conn.begin():
            yield conn

    @staticmethod
    def _size(conn: Connection) -> int:
        size = conn.execute(select(log_head.c.size).where(log_head.c.id == 1)).scalar_one_or_none()
        if size is None:
            raise LogConsistencyError("the log_head row is missing")
        return int(size)

    @staticmethod
    def _nodes(conn: Connection, ids: Sequence[NodeId]) -> list[bytes]:
        """The hashes of perfect nodes ``ids``, in order, with one ``SELECT``."""
        if not ids:
            return []
        by_level: dict[int, list[int]] = {}
        for level, index in ids:
            by_level.setdefault(level, []).append(index)
        condition = or_(
            *(
                and_(log_nodes.c.level == level, log_nodes.c.idx.in_(sorted(set(indices))))
                for level, indices in by_level.items()
            )
        )
        rows = conn.execute(
            select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(condition)
        )
        found = {(int(level), int(index)): bytes(h) for level, index, h in rows}
        missing = [node for node in ids if node not in found]
        if missing:
            raise LogConsistencyError(
                f"the log is missing stored tree node(s) (level, index) {missing[:5]}"
            )
        return [found[node] for node in ids]

    def _range_hashes(self, conn: Connection, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """MTH of each leaf range (RFC 9162 §2.1.1), from stored perfect nodes."""
        split = [perfect_nodes(lo, hi) for lo, hi in ranges]
        hashes = self._nodes(conn, [node for nodes in split for node in nodes])
        out: list[bytes] = []
        at = 0
        for nodes in split:
            out.append(fold_perfect_nodes(hashes[at : at + len(nodes)]))
            at += len(nodes)
        return out

    def _frontier(self, conn: Connection, size: int) -> dict[int, bytes]:
        ids = perfect_nodes(0, size)
        return {level: h for (level, _), h in zip(ids, self._nodes(conn, ids), strict=True)}

    @staticmethod
    def _commit(conn: Connection, batch: _Append) -> None:
        batch.flush(conn)
        conn.execute(update(log_head).where(log_head.c.id == 1).values(size=batch.size))

    # -- reading ------------------------------------------------------------------

    def size(self) -> int:
        """The number of entries (the tree size of RFC 9162 §2.1)."""
        with self._read() as conn:
            return self._size(conn)

    def entry(self, index: int) -> LogEntry:
        """The entry at ``index`` (0-based). Raises :class:`LogError` beyond the size."""
        with self._read() as conn:
            size = self._size(conn)
            if not 0 <= index < size:
                raise LogError(f"no entry {index}: the log has {size} entries")
            row = conn.execute(select(*_ENTRY_COLUMNS).where(log_entries.c.idx == index)).first()
        if row is None:
            raise LogConsistencyError(f"entry {index} is missing from a log of size {size}")
        return _entry(row)

    def scan(self, batch: int = 10_000) -> Iterator[LogEntry]:
        """Every entry in index order, as stored, WITHOUT checking leaf hashes: for auditors,
        who compare ``leaf_hash`` with the hash of ``leaf_input`` themselves."""
        start = 0
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(*_ENTRY_COLUMNS)
                    .where(log_entries.c.idx >= start)
                    .order_by(log_entries.c.idx)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row, check=False)
            start = int(rows[-1][0]) + 1

    def entries_for_key(self, key: str) -> list[LogEntry]:
        """Every entry appended under ``key``, by ascending ``key_seq``."""
        with self._read() as conn:
            return self._entries_for_key(conn, key)

    @staticmethod
    def _entries_for_key(conn: Connection, key: str) -> list[LogEntry]:
        rows = conn.execute(
            select(*_ENTRY_COLUMNS)
            .where(log_entries.c.entry_key == key)
            .order_by(log_entries.c.key_seq)
        ).all()
        return [_entry(row) for row in rows]

    def latest_for_key(self, key: str) -> LogEntry | None:
        """The entry with the highest ``key_seq`` under ``key``, or None."""
        with self._read() as conn:
            return self._latest(conn, key)

    @staticmethod
    def _latest(conn: Connection, key: str) -> LogEntry | None:
        row = conn.execute(
            select(*_ENTRY_COLUMNS)
            .where(log_entries.c.entry_key == key)
            .order_by(log_entries.c.key_seq.desc())
            .limit(1)
        ).first()
        return None if row is None else _entry(row)

    def _checked_size(self, conn: Connection, size: int | None, what: str = "size") -> int:
        current = self._size(conn)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LogError(f"{what} {size} is out of range: the log has {current} entries")
        return size

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]) (RFC 9162 §2.1.1) for any size up to the current one."""
        with self._read() as conn:
            size = self._checked_size(conn, size)
            if size == 0:
                return EMPTY_ROOT
            return fold_perfect_nodes(self._nodes(conn, perfect_nodes(0, size)))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1).

        Precondition: 0 <= index < size <= the current size.
        """
        with self._read() as conn:
            size = self._checked_size(conn, size)
            if not 0 <= index < size:
                raise LogError(f"leaf index {index} is out of range for tree size {size}")
            return self._range_hashes(conn, inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1). Precondition: 0 < old <= new."""
        with self._read() as conn:
            new_size = self._checked_size(conn, new_size, "new size")
            if not 0 < old_size <= new_size:
                raise LogError(
                    f"no consistency proof from size {old_size} to size {new_size}: "
                    "need 0 < old <= new"
                )
            return self._range_hashes(conn, consistency_ranges(old_size, new_size))

    # -- appending -------------------------------------------------------------

    def append(self, leaf_input: bytes) -> LogEntry:
        """Append one leaf (RFC 9162 §2.1.1 leaf input) and return its entry."""
        data = _as_bytes(leaf_input, "leaf input")
        with self._locked() as (conn, size):
            batch = _Append(size, self._frontier(conn, size), _now(), not self._postgres)
            index = batch.add(data)
            self._commit(conn, batch)
        return LogEntry(index, leaf_hash(data), data, None, None)

    def append_keyed(
        self,
        key: str,
        build: Callable[[LogEntry | None], bytes],
        *,
        refuse: Callable[[LogEntry], bool] | None = None,
    ) -> LogEntry:
        """Append the next entry of the chain under ``key``, race-free.

        Inside the serialized append transaction, ``build`` receives the
        latest entry under ``key`` (or None) and returns the leaf input, so a
        manifest can carry ``version = previous.key_seq + 1`` and
        ``previous = previous.leaf_hash``. The new entry gets ``key_seq =
        previous.key_seq + 1`` (or 1). If ``build`` raises, nothing is written
        and the exception propagates. ``build`` runs while the log's write
        lock is held: keep it short, and do not touch the log from it.

        ``refuse``, if given, sees every earlier entry under ``key`` inside the
        same transaction; if it returns True for one, nothing is appended and
        :class:`DuplicateEntryError` carries that entry. Ingest uses it so
        that one delivery never becomes two versions, however many workers
        race to commit it.
        """
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise LogError(
                f"an entry key must be a non-empty string of at most {MAX_KEY_LENGTH} characters"
            )
        with self._locked() as (conn, size):
            if refuse is not None:
                for earlier in self._entries_for_key(conn, key):
                    if refuse(earlier):
                        raise DuplicateEntryError(earlier)
            previous = self._latest(conn, key)
            data = _as_bytes(build(previous), "leaf input returned by build")
            seq = 1 if previous is None or previous.key_seq is None else previous.key_seq + 1
            batch = _Append(size, self._frontier(conn, size), _now(), not self._postgres)
            index = batch.add(data, key, seq)
            self._commit(conn, batch)
        return LogEntry(index, leaf_hash(data), data, key, seq)

    def append_many(self, leaf_inputs: Sequence[bytes] | Iterable[bytes]) -> list[int]:
        """Append many leaves in one transaction and return their indices.

        For bulk loads: the right frontier stays in memory and rows go in with
        ``executemany`` in batches of :data:`BATCH_ROWS`.
        """
        with self._locked() as (conn, size):
            batch = _Append(size, self._frontier(conn, size), _now(), not self._postgres)
            first = size
            for data in leaf_inputs:
                batch.add(_as_bytes(data, "leaf input"))
                if len(batch.entries) >= BATCH_ROWS:
                    batch.flush(conn)
            self._commit(conn, batch)
        return list(range(first, batch.size))

    # -- checkpoints -------------------------------------------------------------

    def sign_checkpoint(self, signer: Signer) -> str:
        """Sign and store a C2SP tlog-checkpoint (DESIGN Formats 7) for the current size.

        The checkpoint commits to (origin, size, MTH) (RFC 9162 §2.1.1).
        If one is already stored for the current size, it is returned
        unchanged. Runs under the append lock, so the size cannot move.
        A read-only log signs without storing: Ed25519 signatures (RFC 8032)
        are deterministic, so storing it later yields the same note.
        """
        if self.read_only:
            with self._read() as conn:
                size = self._size(conn)
                note, _root, _new = self._stored_or_signed(conn, size, signer)
            return note
        with self._locked() as (conn, size):
            note, root, new = self._stored_or_signed(conn, size, signer)
            if new:
                conn.execute(
                    insert(log_checkpoints).values(
                        size=size, root=root, note=note, created_at=_now()
                    )
                )
            return note

    def _stored_or_signed(
        self, conn: Connection, size: int, signer: Signer
    ) -> tuple[str, bytes, bool]:
        """The checkpoint for ``size`` and its root: the stored one (checked), or a newly
        signed one (then True)."""
        root = EMPTY_ROOT
        if size:
            root = fold_perfect_nodes(self._nodes(conn, perfect_nodes(0, size)))
        stored = conn.execute(
            select(log_checkpoints.c.root, log_checkpoints.c.note).where(
                log_checkpoints.c.size == size
            )
        ).first()
        if stored is not None:
            note = str(stored[1])
            self._check_stored(size, root, bytes(stored[0]), note)
            return note, root, False
        return Checkpoint(self.origin, size, root).sign([signer]), root, True

    def _check_stored(self, size: int, root: bytes, stored_root: bytes, note: str) -> None:
        try:
            body = Checkpoint.from_body(parse_note(note).text)
        except NoteFormatError as exc:
            raise LogConsistencyError(
                f"stored checkpoint at size {size} is malformed: {exc}"
            ) from None
        if (stored_root, body.root, body.size, body.origin) != (root, root, size, self.origin):
            raise LogConsistencyError(
                f"stored checkpoint at size {size} does not match the log's tree"
            )

    def latest_checkpoint(self) -> str | None:
        """The stored checkpoint with the largest size, or None."""
        with self._read() as conn:
            note = conn.execute(
                select(log_checkpoints.c.note).order_by(log_checkpoints.c.size.desc()).limit(1)
            ).scalar_one_or_none()
        return None if note is None else str(note)

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored checkpoint as (size, note text), by ascending size."""
        with self._read() as conn:
            rows = conn.execute(
                select(log_checkpoints.c.size, log_checkpoints.c.note).order_by(
                    log_checkpoints.c.size
                )
            ).all()
        return [(int(size), str(note)) for size, note in rows]

    def checkpoint_at(self, size: int) -> str | None:
        """The stored checkpoint for ``size``, or None."""
        with self._read() as conn:
            note = conn.execute(
                select(log_checkpoints.c.note).where(log_checkpoints.c.size == size)
            ).scalar_one_or_none()
        return None if note is None else str(note)
