"""The transparency log: the Merkle frontier and the database, composed (docs/formats.md §6).

One RFC 9162 Merkle tree (RFC 9162 §2.1) over every manifest in the order it
was appended. :class:`TransparencyLog` validates, signs checkpoints and keeps
the chains of keyed entries; :mod:`anchoring._internal.log.frontier` does the
hashing and :mod:`anchoring._internal.log.database` the storing.
"""

from __future__ import annotations

__all__ = ["LogEntry", "TransparencyLog"]

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from anchoring._internal.log.database import LogConnection, LogDatabase
from anchoring._internal.log.frontier import (
    Frontier,
    consistency_hashes,
    inclusion_hashes,
    root_hash,
)
from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    DuplicateEntryError,
    LogConsistencyError,
    LogDatabaseError,
    LogError,
    NoteFormatError,
)
from anchoring.merkle.hasher import leaf_hash
from anchoring.merkle.shape import NodeId
from anchoring.note import Signer, parse_note

#: Rows per insert batch in :meth:`TransparencyLog.append_many`.
BATCH_ROWS = 50_000
#: The longest entry key, in characters.
MAX_KEY_LENGTH = 1024

_ENTRY_COLUMNS = "idx, leaf_hash, leaf_input, entry_key, key_seq"
_ENTRY_FIELDS = ("idx", "leaf_hash", "leaf_input", "entry_key", "key_seq", "appended_at")
_NODE_FIELDS = ("level", "idx", "hash")


def _now() -> str:
    """The current time as RFC 3339 UTC text with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _as_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise LogError(f"{what} must be bytes, got {type(value).__name__}")
    return bytes(value)


@dataclass(frozen=True)
class LogEntry:
    """One log entry: its index, RFC 9162 §2.1.1 leaf hash and leaf input (the manifest)."""

    index: int
    leaf_hash: bytes
    leaf_input: bytes
    key: str | None
    key_seq: int | None


def _entry(row: Sequence[Any], check: bool = True) -> LogEntry:
    index, stored_hash, data, key, seq = row
    data = bytes(data)
    stored_hash = bytes(stored_hash)
    if check and leaf_hash(data) != stored_hash:
        raise LogConsistencyError(f"entry {index}: stored leaf hash does not match its input")
    return LogEntry(int(index), stored_hash, data, key, None if seq is None else int(seq))


def _size(conn: LogConnection) -> int:
    row = conn.one("SELECT size FROM log_head WHERE id = 1")
    if row is None:
        raise LogConsistencyError("the log_head row is missing")
    return int(row[0])


def _node_reader(conn: LogConnection) -> Callable[[Sequence[NodeId]], list[bytes]]:
    def read_nodes(ids: Sequence[NodeId]) -> list[bytes]:
        """The hashes of perfect nodes ``ids``, in order, with one ``SELECT``."""
        if not ids:
            return []
        by_level: dict[int, list[int]] = {}
        for level, index in ids:
            by_level.setdefault(level, []).append(index)
        conditions: list[str] = []
        params: list[int] = []
        for level, indices in by_level.items():
            unique = sorted(set(indices))
            conditions.append(f"(level = ? AND idx IN ({', '.join('?' * len(unique))}))")
            params += [level, *unique]
        rows = conn.all(
            f"SELECT level, idx, hash FROM log_nodes WHERE {' OR '.join(conditions)}", params
        )
        found = {(int(level), int(index)): bytes(h) for level, index, h in rows}
        missing = [node for node in ids if node not in found]
        if missing:
            raise LogConsistencyError(
                f"the log is missing stored tree node(s) (level, index) {missing[:5]}"
            )
        return [found[node] for node in ids]

    return read_nodes


def _entries_for_key(conn: LogConnection, key: str) -> list[LogEntry]:
    rows = conn.all(
        f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE entry_key = ? ORDER BY key_seq", (key,)
    )
    return [_entry(row) for row in rows]


def _latest(conn: LogConnection, key: str) -> LogEntry | None:
    row = conn.one(
        f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE entry_key = ? "
        "ORDER BY key_seq DESC LIMIT 1",
        (key,),
    )
    return None if row is None else _entry(row)


class TransparencyLog:
    """An append-only RFC 9162 §2.1 Merkle tree of manifests, stored in SQL.

    ``TransparencyLog(url, origin)`` opens the log at ``url`` (``sqlite:///path``,
    ``sqlite://`` in memory, or ``postgresql://...``), creating its tables if
    they are missing. Creation is idempotent and safe when several processes
    do it at once. A log remembers the origin it was created under; opening it
    under another origin raises :class:`LogError`.

    Precondition violations (an index or size out of range) raise
    :class:`LogError`; stored state that contradicts itself (a missing node,
    a leaf hash that does not match its input) raises
    :class:`LogConsistencyError`; a database that cannot be read raises
    :class:`LogDatabaseError`.

    ``read_only=True`` never writes: the tables must exist, appends are
    refused, and :meth:`sign_checkpoint` signs without storing.

    Several processes, each with its own instance on the same URL, and several
    threads sharing one instance, may append at once. A process forked from
    one that used the log should open its own instance.
    """

    def __init__(self, url: str, origin: str, *, read_only: bool = False) -> None:
        if not origin or "\n" in origin:
            raise LogError("log origin must be a non-empty single line")
        self.origin = origin
        self.read_only = read_only
        self._db = LogDatabase(url, read_only=read_only)
        self._init_schema()

    # -- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled connections."""
        self._db.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TransparencyLog({self._db.display_url!r}, {self.origin!r})"

    def _init_schema(self) -> None:
        if self.read_only:
            with self._db.transaction() as conn:
                stored = conn.one("SELECT origin FROM log_head WHERE id = 1")
            if stored is None:
                raise LogDatabaseError("the log database has no log_head row")
        else:
            with self._db.transaction(write=True) as conn:
                self._db.create_schema(conn)
                stored = conn.one("SELECT origin FROM log_head WHERE id = 1")
                if stored is None:
                    conn.execute("INSERT INTO log_head (id, size, origin) VALUES (1, 0, ?)",
                                 (self.origin,))
        if stored is not None and stored[0] != self.origin:
            raise LogError(f"the log at this URL has origin {stored[0]!r}, not {self.origin!r}")

    # -- transactions for records kept beside the log -------------------------------

    @contextmanager
    def serialized(self) -> Iterator[tuple[LogConnection, int]]:
        """A write transaction serialized with appends, and the log size under it.

        For records kept beside the log (the local anchor ledger) that must be
        ordered with the log's own appends.
        """
        with self._db.locked() as (conn, size):
            yield conn, size

    @contextmanager
    def reading(self) -> Iterator[LogConnection]:
        """A read transaction on the log's database."""
        with self._db.transaction() as conn:
            yield conn

    # -- reading ------------------------------------------------------------------

    def size(self) -> int:
        """The number of entries (the tree size of RFC 9162 §2.1)."""
        with self._db.transaction() as conn:
            return _size(conn)

    def entry(self, index: int) -> LogEntry:
        """The entry at ``index`` (0-based). Raises :class:`LogError` beyond the size."""
        with self._db.transaction() as conn:
            size = _size(conn)
            if not 0 <= index < size:
                raise LogError(f"no entry {index}: the log has {size} entries")
            row = conn.one(f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE idx = ?", (index,))
        if row is None:
            raise LogConsistencyError(f"entry {index} is missing from a log of size {size}")
        return _entry(row)

    def scan(self, batch: int = 10_000) -> Iterator[LogEntry]:
        """Every entry in index order, as stored, WITHOUT checking leaf hashes: for auditors,
        who compare ``leaf_hash`` with the hash of ``leaf_input`` themselves."""
        start = 0
        while True:
            with self._db.transaction() as conn:
                rows = conn.all(
                    f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE idx >= ? "
                    "ORDER BY idx LIMIT ?",
                    (start, batch),
                )
            if not rows:
                return
            for row in rows:
                yield _entry(row, check=False)
            start = int(rows[-1][0]) + 1

    def entry_keys(self) -> list[str]:
        """Every entry key in use, in the order of its first entry: one query over the
        key index, not a scan of the entries."""
        with self._db.transaction() as conn:
            rows = conn.all(
                "SELECT entry_key FROM log_entries WHERE entry_key IS NOT NULL "
                "GROUP BY entry_key ORDER BY MIN(idx)"
            )
        return [str(row[0]) for row in rows]

    def entries_for_key(self, key: str) -> list[LogEntry]:
        """Every entry appended under ``key``, by ascending ``key_seq``."""
        with self._db.transaction() as conn:
            return _entries_for_key(conn, key)

    def latest_for_key(self, key: str) -> LogEntry | None:
        """The entry with the highest ``key_seq`` under ``key``, or None."""
        with self._db.transaction() as conn:
            return _latest(conn, key)

    @staticmethod
    def _checked_size(conn: LogConnection, size: int | None, what: str = "size") -> int:
        current = _size(conn)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LogError(f"{what} {size} is out of range: the log has {current} entries")
        return size

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]) (RFC 9162 §2.1.1) for any size up to the current one."""
        with self._db.transaction() as conn:
            return root_hash(self._checked_size(conn, size), _node_reader(conn))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1).

        Precondition: 0 <= index < size <= the current size.
        """
        with self._db.transaction() as conn:
            size = self._checked_size(conn, size)
            if not 0 <= index < size:
                raise LogError(f"leaf index {index} is out of range for tree size {size}")
            return inclusion_hashes(index, size, _node_reader(conn))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1). Precondition: 0 < old <= new."""
        with self._db.transaction() as conn:
            new_size = self._checked_size(conn, new_size, "new size")
            if not 0 < old_size <= new_size:
                raise LogError(
                    f"no consistency proof from size {old_size} to size {new_size}: "
                    "need 0 < old <= new"
                )
            return consistency_hashes(old_size, new_size, _node_reader(conn))

    # -- appending -------------------------------------------------------------

    def _store(self, conn: LogConnection, frontier: Frontier, appended_at: str) -> None:
        """Insert the rows the frontier queued."""
        entries, nodes = frontier.take_rows()
        # Under the append lock nothing else writes, so a clash means the head row
        # and the tables disagree.
        with self._db.integrity_errors(
            "the log already holds an entry or node beyond its recorded size"
        ):
            conn.insert_rows("log_entries", _ENTRY_FIELDS,
                             [(*entry, appended_at) for entry in entries])
            conn.insert_rows("log_nodes", _NODE_FIELDS, nodes)

    def _commit(self, conn: LogConnection, frontier: Frontier, appended_at: str) -> None:
        self._store(conn, frontier, appended_at)
        conn.execute("UPDATE log_head SET size = ? WHERE id = 1", (frontier.size,))

    def append(self, leaf_input: bytes) -> LogEntry:
        """Append one leaf (RFC 9162 §2.1.1 leaf input) and return its entry."""
        data = _as_bytes(leaf_input, "leaf input")
        with self._db.locked() as (conn, size):
            frontier = Frontier(size, _node_reader(conn))
            index = frontier.add(data)
            self._commit(conn, frontier, _now())
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
        with self._db.locked() as (conn, size):
            if refuse is not None:
                for earlier in _entries_for_key(conn, key):
                    if refuse(earlier):
                        raise DuplicateEntryError(earlier)
            previous = _latest(conn, key)
            data = _as_bytes(build(previous), "leaf input returned by build")
            seq = 1 if previous is None or previous.key_seq is None else previous.key_seq + 1
            frontier = Frontier(size, _node_reader(conn))
            index = frontier.add(data, key, seq)
            self._commit(conn, frontier, _now())
        return LogEntry(index, leaf_hash(data), data, key, seq)

    def append_many(self, leaf_inputs: Sequence[bytes] | Iterable[bytes]) -> list[int]:
        """Append many leaves in one transaction and return their indices.

        For bulk loads: the right frontier stays in memory and rows go in
        batches of :data:`BATCH_ROWS`.
        """
        appended_at = _now()
        with self._db.locked() as (conn, size):
            frontier = Frontier(size, _node_reader(conn))
            for data in leaf_inputs:
                frontier.add(_as_bytes(data, "leaf input"))
                if len(frontier.entries) >= BATCH_ROWS:
                    self._store(conn, frontier, appended_at)
            self._commit(conn, frontier, appended_at)
        return list(range(size, frontier.size))

    # -- checkpoints -------------------------------------------------------------

    def sign_checkpoint(self, signer: Signer) -> str:
        """Sign and store a C2SP tlog-checkpoint (docs/formats.md §7) for the current size.

        The checkpoint commits to (origin, size, MTH) (RFC 9162 §2.1.1).
        If one is already stored for the current size, it is returned
        unchanged. Runs under the append lock, so the size cannot move.
        A read-only log signs without storing: Ed25519 signatures (RFC 8032)
        are deterministic, so storing it later yields the same note.
        """
        if self.read_only:
            with self._db.transaction() as conn:
                note, _root, _new = self._stored_or_signed(conn, _size(conn), signer)
            return note
        with self._db.locked() as (conn, size):
            note, root, new = self._stored_or_signed(conn, size, signer)
            if new:
                conn.execute(
                    "INSERT INTO log_checkpoints (size, root, note, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (size, root, note, _now()),
                )
            return note

    def _stored_or_signed(
        self, conn: LogConnection, size: int, signer: Signer
    ) -> tuple[str, bytes, bool]:
        """The checkpoint for ``size`` and its root: the stored one (checked), or a newly
        signed one (then True)."""
        root = root_hash(size, _node_reader(conn))
        stored = conn.one("SELECT root, note FROM log_checkpoints WHERE size = ?", (size,))
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
        with self._db.transaction() as conn:
            row = conn.one("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
        return None if row is None else str(row[0])

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored checkpoint as (size, note text), by ascending size."""
        with self._db.transaction() as conn:
            rows = conn.all("SELECT size, note FROM log_checkpoints ORDER BY size")
        return [(int(size), str(note)) for size, note in rows]

    def checkpoint_at(self, size: int) -> str | None:
        """The stored checkpoint for ``size``, or None."""
        with self._db.transaction() as conn:
            row = conn.one("SELECT note FROM log_checkpoints WHERE size = ?", (size,))
        return None if row is None else str(row[0])
