"""The transparency log's database plumbing: connections, schema, locking, plain SQL.

Stored through plain DB-API: the standard library's :mod:`sqlite3` for SQLite
(the default, a URL such as ``sqlite:////abs/path/log.db``; ``sqlite://`` is an
in-memory database) and ``psycopg2`` for PostgreSQL
(``postgresql+psycopg2://...`` or ``postgresql://...``, a libpq URI).

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
    :mod:`anchoring.merkle.shape` and :mod:`anchoring._internal.log.frontier`).
``log_checkpoints``
    ``size`` (primary key), ``root``, ``note`` (the signed C2SP
    tlog-checkpoint text) and ``created_at``.

Concurrency
-----------
Appends are serialized by the database, so several processes never both get an
index, and an append that fails leaves no trace (it is one transaction):

* SQLite runs in WAL mode with a 30 s busy timeout and ``synchronous = FULL``;
  the driver's own transaction handling is off, every write transaction starts
  with ``BEGIN IMMEDIATE`` (the write lock up front), reads with a plain
  deferred ``BEGIN`` that writers do not block.
* PostgreSQL write transactions start with ``SELECT ... FROM log_head WHERE
  id = 1 FOR UPDATE``; table creation takes a transaction-scoped advisory lock.

Damage and read-only databases
------------------------------
Any driver error (a truncated or garbled file, missing tables, an unreachable
server) is raised as :class:`LogDatabaseError`, one line naming the damage.
A read-only SQLite file is opened with ``mode=ro`` (and ``immutable=1`` when
its folder is not writable and it has no write-ahead log, since SQLite could
not create its shared-memory file there).

Connections are pooled per :class:`LogDatabase`. A process forked while it
held pooled connections never uses or closes them in the child (they belong to
the parent's sessions); the child opens its own.

This module imports only the standard library (and ``psycopg2`` when a
PostgreSQL URL is opened).
"""

from __future__ import annotations

__all__ = ["BACKENDS", "LogConnection", "LogDatabase"]

import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from functools import cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from anchoring.errors import LogConsistencyError, LogDatabaseError, LogError

#: The supported URL schemes and the backend each one names.
BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgresql+psycopg2": "postgresql"}
#: Seconds a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT = 30.0
#: Idle connections a :class:`LogDatabase` keeps open for the next transaction.
POOL_IDLE = 2
#: Rows per multi-row ``INSERT ... VALUES`` statement on PostgreSQL.
PG_ROWS_PER_STATEMENT = 1000
#: Key of the PostgreSQL advisory lock that serializes table creation.
_PG_INIT_LOCK = 0x74_70_6C_6F_67  # "tplog"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

#: The log's tables. The column types are those earlier releases created, so existing
#: databases keep working: SQLite makes ``INTEGER PRIMARY KEY`` a rowid alias, and
#: keeps the node table without rowids.
_SCHEMA: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS log_head (id INTEGER NOT NULL, size INTEGER NOT NULL, "
        "origin TEXT NOT NULL, PRIMARY KEY (id))",
        "CREATE TABLE IF NOT EXISTS log_entries (idx INTEGER NOT NULL, "
        "leaf_hash BLOB NOT NULL, leaf_input BLOB NOT NULL, entry_key VARCHAR(1024), "
        "key_seq INTEGER, appended_at VARCHAR(40) NOT NULL, PRIMARY KEY (idx), "
        "CONSTRAINT uq_log_entries_key_seq UNIQUE (entry_key, key_seq))",
        "CREATE TABLE IF NOT EXISTS log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
        "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS log_checkpoints (size INTEGER NOT NULL, "
        "root BLOB NOT NULL, note TEXT NOT NULL, created_at VARCHAR(40) NOT NULL, "
        "PRIMARY KEY (size))",
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS log_head (id INTEGER NOT NULL, size BIGINT NOT NULL, "
        "origin TEXT NOT NULL, PRIMARY KEY (id))",
        "CREATE TABLE IF NOT EXISTS log_entries (idx BIGINT NOT NULL, "
        "leaf_hash BYTEA NOT NULL, leaf_input BYTEA NOT NULL, entry_key VARCHAR(1024), "
        "key_seq INTEGER, appended_at VARCHAR(40) NOT NULL, PRIMARY KEY (idx), "
        "CONSTRAINT uq_log_entries_key_seq UNIQUE (entry_key, key_seq))",
        "CREATE TABLE IF NOT EXISTS log_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
        "hash BYTEA NOT NULL, PRIMARY KEY (level, idx))",
        "CREATE TABLE IF NOT EXISTS log_checkpoints (size BIGINT NOT NULL, "
        "root BYTEA NOT NULL, note TEXT NOT NULL, created_at VARCHAR(40) NOT NULL, "
        "PRIMARY KEY (size))",
    ),
}

# Connections a forked child inherited: never used there, and never closed either,
# since closing would end the parent's PostgreSQL session.
_INHERITED: list[Any] = []
# Every open database, for the fork hook.
_DATABASES: weakref.WeakSet[LogDatabase] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for database in list(_DATABASES):
        database._forget_inherited()


@cache
def _watch_forks() -> None:
    """Register the fork hook once, with the first database: importing changes nothing."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forget_connections_after_fork)


@cache
def _qmark_to_pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LogConnection:
    """The connection of one transaction on the log's database.

    SQL is written once for both backends with ``?`` placeholders (sqlite3's
    qmark style; rewritten to ``%s`` for psycopg2). Binary columns may come
    back as ``memoryview`` from PostgreSQL: read them with ``bytes(...)``.
    """

    def __init__(self, raw: Any, backend: str) -> None:
        self.raw = raw
        self.backend = backend
        self._cursor = raw.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the DB-API cursor (for ``fetchone``/``fetchall``)."""
        if self.backend == "postgresql":
            sql = _qmark_to_pyformat(sql)
        self._cursor.execute(sql, tuple(params))
        return self._cursor

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def has_table(self, name: str) -> bool:
        """Whether the table ``name`` exists (in the current schema search path)."""
        if self.backend == "sqlite":
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            query = "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = ? " \
                    "AND schemaname = ANY (current_schemas(false))"
        return self.one(query, (name,)) is not None

    def insert_rows(self, table: str, fields: Sequence[str],
                    rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert tuples of plain values: ``executemany`` on SQLite, multi-row ``VALUES``
        statements on PostgreSQL (one round trip per :data:`PG_ROWS_PER_STATEMENT` rows)."""
        if not rows:
            return
        head = f"INSERT INTO {table} ({', '.join(fields)}) VALUES "
        if self.backend == "sqlite":
            self._cursor.executemany(head + f"({', '.join('?' * len(fields))})", rows)
            return
        one = f"({', '.join(['%s'] * len(fields))})"
        for start in range(0, len(rows), PG_ROWS_PER_STATEMENT):
            chunk = rows[start : start + PG_ROWS_PER_STATEMENT]
            params = tuple(value for row in chunk for value in row)
            self._cursor.execute(head + ", ".join([one] * len(chunk)), params)

    def close(self) -> None:
        with suppress(Exception):  # a cursor of a broken connection: nothing to release
            self._cursor.close()


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


def _parse(url: str) -> tuple[str, str]:
    """The backend of ``url`` and what its driver connects to (a path, or a libpq URI)."""
    if not isinstance(url, str):
        raise LogError("the log database URL is not a valid database URL")
    match = _SCHEME.match(url)
    if match is None:
        raise LogError("the log database URL is not a valid database URL")
    scheme = match.group(1).lower()
    backend = BACKENDS.get(scheme)
    if backend is None:
        name = scheme.split("+")[0]
        if name in ("sqlite", "postgresql"):
            raise LogError(f"the log connects to {name} through its standard driver, "
                           f"not {scheme.split('+', 1)[1]!r}")
        raise LogError(f"the log supports SQLite and PostgreSQL, not {name!r}")
    rest = url[match.end():]
    if backend == "postgresql":
        return backend, "postgresql://" + rest
    path, _, query = rest.partition("?")
    if query:
        raise LogError("an SQLite log URL takes no query parameters")
    if path and not path.startswith("/"):
        raise LogError("an SQLite log URL is sqlite:///relative/path or sqlite:////absolute/path")
    return backend, unquote(path[1:])


class LogDatabase:
    """The log's database: pooled connections and serialized transactions."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.backend, self._target = _parse(url)
        self._url = url
        self.read_only = read_only
        self.memory = self.backend == "sqlite" and self._target in ("", ":memory:")
        if self.backend == "postgresql":
            import psycopg2  # type: ignore[import-untyped]  # a missing driver names its extra

            self._driver_error: type[BaseException] = psycopg2.Error
            self._integrity_error: type[BaseException] = psycopg2.IntegrityError
        else:
            self._driver_error = sqlite3.Error
            self._integrity_error = sqlite3.IntegrityError
        self._idle: list[Any] = []
        self._pool_lock = threading.Lock()
        # An in-memory SQLite is one shared connection: one transaction at a time.
        self._memory_lock = threading.RLock()
        self._shared: Any = None
        _watch_forks()
        _DATABASES.add(self)

    @property
    def display_url(self) -> str:
        """The URL with its password, if any, replaced by ``***``."""
        parts = urlsplit(self._url)
        if parts.password is None:
            return self._url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()

    def __repr__(self) -> str:
        return f"LogDatabase({self.display_url!r})"

    # -- connections ---------------------------------------------------------------

    def _connect(self) -> Any:
        if self.backend == "postgresql":
            import psycopg2

            return psycopg2.connect(self._target)
        if self.read_only and not self.memory:
            raw = sqlite3.connect(_sqlite_read_only_uri(self._target), uri=True,
                                  timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False,
                                  isolation_level=None)
            raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            return raw
        raw = sqlite3.connect(self._target or ":memory:", timeout=SQLITE_BUSY_TIMEOUT,
                              check_same_thread=False, isolation_level=None)
        try:
            raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            raw.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed append survives power loss, so a checkpoint signed
            # over it can never refer to entries the log has forgotten.
            raw.execute("PRAGMA synchronous = FULL")
        except BaseException:
            raw.close()
            raise
        return raw

    def _alive(self, raw: Any) -> bool:
        """Whether a pooled PostgreSQL connection still answers (the server may have
        closed it); SQLite connections are local files and always are."""
        if self.backend != "postgresql":
            return True
        if raw.closed:
            return False
        try:
            with raw.cursor() as cursor:
                cursor.execute("SELECT 1")
            raw.rollback()
        except self._driver_error:
            self._discard(raw)
            return False
        return True

    def _forget_inherited(self) -> None:
        """In a forked child: set the parent's pooled connections aside, unused."""
        _INHERITED.extend(self._idle)
        self._idle = []
        self._pool_lock = threading.Lock()

    def _acquire(self) -> Any:
        if self.memory:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        while True:
            with self._pool_lock:
                raw = self._idle.pop() if self._idle else None
            if raw is None:
                return self._connect()
            if self._alive(raw):
                return raw

    def _release(self, raw: Any, owner: int, reusable: bool) -> None:
        if self.memory:
            return
        if owner != os.getpid():  # checked out before a fork
            _INHERITED.append(raw)
            return
        if reusable:
            with self._pool_lock:
                if len(self._idle) < POOL_IDLE:
                    self._idle.append(raw)
                    return
        self._discard(raw)

    @staticmethod
    def _discard(raw: Any) -> None:
        with suppress(Exception):  # already broken: nothing more to release
            raw.close()

    def close(self) -> None:
        """Close the pooled connections (a later transaction opens new ones)."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for raw in idle:
            self._discard(raw)
        if self._shared is not None:
            self._discard(self._shared)
            self._shared = None

    # -- transactions --------------------------------------------------------------

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Driver errors become :class:`LogDatabaseError`: one line naming the damage."""
        try:
            yield
        except self._driver_error as exc:
            raise LogDatabaseError(
                f"the log database is damaged or unreadable: {_first_line(exc)}"
            ) from None

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[LogConnection]:
        """One transaction, committed when the block ends and rolled back if it raises.

        ``write=True`` holds the SQLite write lock from the first statement
        (``BEGIN IMMEDIATE``) and refuses a read-only database.
        """
        if write and self.read_only:
            raise LogDatabaseError("the log is open read-only; this operation writes to it")
        guard: AbstractContextManager[Any] = self._memory_lock if self.memory else nullcontext()
        with self.errors(), guard:
            raw = self._acquire()
            owner = os.getpid()
            reusable = False
            conn: LogConnection | None = None
            try:
                conn = LogConnection(raw, self.backend)
                if self.backend == "sqlite":
                    raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
                if self.backend == "sqlite":
                    raw.execute("COMMIT")
                else:
                    raw.commit()
                reusable = True
            except BaseException:
                reusable = self._rollback(raw)
                raise
            finally:
                if conn is not None:
                    conn.close()
                self._release(raw, owner, reusable)

    def _rollback(self, raw: Any) -> bool:
        """Roll back after a failure; whether the connection can be used again."""
        try:
            if self.backend == "sqlite":
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
            else:
                raw.rollback()
        except Exception:  # a broken connection: drop it
            return False
        return True

    @contextmanager
    def locked(self) -> Iterator[tuple[LogConnection, int]]:
        """A write transaction serialized with every append, and the log size under it."""
        with self.transaction(write=True) as conn:
            query = "SELECT size FROM log_head WHERE id = 1"
            if self.backend == "postgresql":
                query += " FOR UPDATE"
            row = conn.one(query)
            if row is None:
                raise LogConsistencyError("the log_head row is missing")
            yield conn, int(row[0])

    @contextmanager
    def integrity_errors(self, message: str) -> Iterator[None]:
        """A constraint violation becomes :class:`LogConsistencyError` naming ``message``."""
        try:
            yield
        except self._integrity_error as exc:
            raise LogConsistencyError(f"{message} ({type(exc).__name__})") from None

    # -- schema --------------------------------------------------------------------

    def create_schema(self, conn: LogConnection) -> None:
        """Create the log's tables if they are missing; safe when processes race."""
        if self.backend == "postgresql":
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_INIT_LOCK,))
        for statement in _SCHEMA[self.backend]:
            conn.execute(statement)
