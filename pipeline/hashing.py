"""Bulk hashing: SHA-256 and HMAC-SHA256 over many messages at once, for large trees.

Hashing a million leaves one ``hashlib`` call at a time is dominated by the
interpreter, not by SHA-256. Here a whole column of messages is hashed in one
Apache DataFusion expression (Rust, SHA-NI where the CPU has it), with binary
digests out, in chunks on a thread pool. :class:`VectorizedHasher` hands this to
the tree builder (:class:`anchoring._internal.tree.MerkleTree`). DataFusion and
pyarrow are imported on first use, so that commands that hash nothing never load
them (DataFusion's native module loads pandas too); for levels too small for the
vectorized path to pay, the plain loop is used.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from anchoring._internal.tree import PLAIN_HASHER
from anchoring.canonical import SALT_SIZE
from anchoring.merkle.hasher import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX

__all__ = [
    "VECTOR_THRESHOLD",
    "RowPieces",
    "VectorizedHasher",
    "hmac_sha256_many",
    "salted_leaf_hashes_many",
    "sha256_many",
]

#: Below this many hashes in a level the plain loop beats the vectorized path.
VECTOR_THRESHOLD = 2048

#: Given DataFusion's ``col``, the expression (an ``Expr``) giving each row's digest.
_Expression = Callable[[Any], Any]


def _engine() -> Any:
    """DataFusion, loaded on first use."""
    return importlib.import_module("datafusion")


def _arrow() -> tuple[Any, Any, Any]:
    """pyarrow, pyarrow.compute and numpy, loaded on first use."""
    return (
        importlib.import_module("pyarrow"),
        importlib.import_module("pyarrow.compute"),
        importlib.import_module("numpy"),
    )


@dataclass(frozen=True)
class RowPieces:
    """Messages given in pieces: Arrow string or binary arrays of one length, and
    ``bytes`` that every row shares; message i is the concatenation of the pieces,
    taking row i of each array. The hash reads the pieces directly, so the
    messages themselves are never built. Precondition: at least one array."""

    pieces: tuple[Any, ...]

    def __len__(self) -> int:
        return len(next(p for p in self.pieces if not isinstance(p, bytes)))

    def joined(self) -> Any:
        """The messages themselves, as one Arrow binary array."""
        pa, pc, _ = _arrow()
        binary = [
            pa.scalar(p, pa.binary()) if isinstance(p, bytes) else p.cast(pa.binary())
            for p in self.pieces
        ]
        return pc.binary_join_element_wise(*binary, pa.scalar(b"", pa.binary()))


#: The pieces (DataFusion expressions) whose concatenation is a row's message.
_Pieces = Callable[[Any], list[Any]]


def _message_columns(
    engine: Any, name: str, messages: Sequence[bytes] | Any
) -> tuple[dict[str, Any], _Pieces]:
    """The input columns that hold ``messages``, and the pieces of each row's message."""
    if not isinstance(messages, RowPieces):
        return {name: _binary_column(messages)}, lambda col: [col(name)]
    columns = {f"{name}{i}": p for i, p in enumerate(messages.pieces) if not isinstance(p, bytes)}

    def pieces(col: Any) -> list[Any]:
        return [
            engine.lit(p) if isinstance(p, bytes) else col(f"{name}{i}")
            for i, p in enumerate(messages.pieces)
        ]

    return columns, pieces


def _binary_column(messages: Sequence[bytes] | Any) -> Any:
    """Messages as one pyarrow ``binary``-like array (no copy for Arrow input), or as a
    list of bytes, which :func:`_digests` converts chunk by chunk."""
    pa, _, _ = _arrow()
    if isinstance(messages, pa.ChunkedArray):
        return messages.combine_chunks()
    if isinstance(messages, pa.Array):
        return messages
    if hasattr(messages, "to_arrow"):  # a polars Series
        return messages.to_arrow()
    return messages if isinstance(messages, list) else list(messages)


def _arrow_from_list(messages: list[bytes]) -> Any:
    """A list of bytes as an Arrow binary array, its buffers laid out in one pass each.

    ``pa.array`` grows its buffers as it goes, which in a fresh process (every page
    new) was measured at several times the cost of joining the bytes once.
    """
    pa, _, np = _arrow()
    lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
    offsets = np.zeros(len(messages) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    large = offsets[-1] > 2**31 - 1
    if not large:
        offsets = offsets.astype(np.int32)
    kind = pa.large_binary() if large else pa.binary()
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(messages))]
    return pa.Array.from_buffers(kind, len(messages), buffers)


def _fixed_rows(data: bytes, width: int) -> Any:
    """``data`` cut into rows of ``width`` bytes, as an Arrow binary array over the same
    buffer (only the offsets are new)."""
    pa, _, np = _arrow()
    rows = len(data) // width
    large = rows * width > 2**31 - 1
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64 if large else np.int32)
    kind = pa.large_binary() if large else pa.binary()
    return pa.Array.from_buffers(kind, rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _concatenated_digests(column: Any) -> bytes:
    """The values of a pyarrow column of 32-byte digests, concatenated in row order."""
    pa, _, _ = _arrow()
    digests = column.combine_chunks()
    # The buffers are read as binary's (32-bit offsets, then values): refuse any other layout
    # a DataFusion upgrade might bring rather than misread it.
    if digests.type != pa.binary():  # pragma: no cover - DataFusion's sha256 returns binary
        raise ValueError(f"unexpected digest column from DataFusion: {digests.type}")
    offsets = memoryview(digests.buffers()[1]).cast("i")
    start, end = offsets[digests.offset], offsets[digests.offset + len(digests)]
    return bytes(memoryview(digests.buffers()[2])[start:end])


def _evaluate(engine: Any, expression: _Expression, columns: dict[str, Any]) -> bytes:
    """``expression`` over one chunk of rows, in the calling thread."""
    pa, _, _ = _arrow()
    rows = len(next(iter(columns.values())))
    config = engine.SessionConfig().with_target_partitions(1).with_batch_size(max(rows, 1))
    context = engine.SessionContext(config)
    arrays = {}
    for name, column in columns.items():
        if not isinstance(column, list) and column.null_count:
            # DataFusion's concat would read a null as empty: refuse, as the plain loop does.
            raise ValueError(f"cannot hash null messages ({column.null_count} in the input)")
        if isinstance(column, list):
            arrays[name] = _arrow_from_list(column)
        elif pa.types.is_fixed_size_binary(column.type) or pa.types.is_string(column.type):
            arrays[name] = column.cast(pa.binary())  # a string's buffers are reused as they are
        elif pa.types.is_large_string(column.type):
            arrays[name] = column.cast(pa.large_binary())
        else:
            arrays[name] = column
    frame = context.from_arrow(pa.table(arrays))
    result = frame.select(expression(engine.col).alias("digest")).to_arrow_table()
    return _concatenated_digests(result.column("digest"))


def _digests(
    engine: Any, expression: _Expression, columns: dict[str, Any], threads: int | None = None
) -> bytes:
    """``expression`` evaluated row by row over ``columns``, its 32-byte digests concatenated.

    With more than one thread, chunks run on a thread pool: DataFusion releases
    the GIL, so they hash in parallel. ``threads=1`` hashes in the calling thread,
    for callers that already spread their own work over threads. A column may be
    a list of bytes: each chunk converts its own part, so that one chunk's
    conversion (which holds the GIL) overlaps another's hashing.
    """
    rows = len(next(iter(columns.values())))
    workers = threads or os.cpu_count() or 1
    if workers == 1 or rows < 2 * VECTOR_THRESHOLD:
        return _evaluate(engine, expression, columns)
    step = max(VECTOR_THRESHOLD, -(-rows // (workers * 2)))

    def run(lo: int) -> bytes:
        chunk = {
            name: array[lo : lo + step] if isinstance(array, list) else array.slice(lo, step)
            for name, array in columns.items()
        }
        return _evaluate(engine, expression, chunk)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return b"".join(pool.map(run, range(0, rows, step)))


def _prefixed_sha256(engine: Any, prefix: bytes, *pieces: Any) -> Any:
    functions = engine.functions
    return functions.sha256(functions.concat(engine.lit(prefix), *pieces))


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """RFC 2104 §2: the key, hashed if longer than a block, padded to the 64-byte block,
    XORed with ipad and with opad."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def _hmac_sha256(engine: Any, key: bytes, *pieces: Any) -> Any:
    # RFC 2104 §2: H((K ^ opad) || H((K ^ ipad) || text)); both passes are prefix hashes.
    inner_pad, outer_pad = _hmac_pads(key)
    return _prefixed_sha256(engine, outer_pad, _prefixed_sha256(engine, inner_pad, *pieces))


def _as_bytes_list(messages: Sequence[bytes] | Any) -> list[bytes]:
    if isinstance(messages, RowPieces):
        messages = messages.joined()
    if hasattr(messages, "to_pylist"):  # an Arrow array or a polars Series
        return list(messages.to_pylist())
    return [bytes(m) for m in messages]


def sha256_many(
    prefix: bytes, messages: Sequence[bytes] | Any, *, threads: int | None = None
) -> bytes:
    """SHA-256(prefix || m) for every message, concatenated (32 bytes each).

    ``messages`` is a sequence of bytes, a polars Binary Series, an Arrow array or
    :class:`RowPieces`. ``threads`` caps the hashing threads (default: one per CPU).
    """
    if len(messages) < VECTOR_THRESHOLD:
        return b"".join(hashlib.sha256(prefix + m).digest() for m in _as_bytes_list(messages))
    engine = _engine()
    columns, pieces = _message_columns(engine, "m", messages)
    return _digests(
        engine, lambda col: _prefixed_sha256(engine, prefix, *pieces(col)), columns, threads
    )


def hmac_sha256_many(
    key: bytes, messages: Sequence[bytes] | Any, *, threads: int | None = None
) -> bytes:
    """HMAC-SHA256(key, m) (RFC 2104) for every message, concatenated (32 bytes each)."""
    if len(messages) < VECTOR_THRESHOLD:
        return b"".join(hmac.new(key, m, hashlib.sha256).digest() for m in _as_bytes_list(messages))
    engine = _engine()
    columns, pieces = _message_columns(engine, "m", messages)
    return _digests(engine, lambda col: _hmac_sha256(engine, key, *pieces(col)), columns, threads)


def salted_leaf_hashes_many(
    salt_key: bytes,
    salt_messages: Sequence[bytes] | Any,
    records: Sequence[bytes] | Any,
    *,
    threads: int | None = None,
) -> tuple[bytes, bytes]:
    """Salts and leaf hashes of salted records (docs/formats.md §3; RFC 9162 §2.1.1).

    For each row i: ``salt = HMAC-SHA256(salt_key, salt_messages[i])`` and
    ``leaf hash = SHA-256(0x00 || salt || records[i])``. Returns all salts and all
    leaf hashes, each concatenated (32 bytes per row). Either input may be
    :class:`RowPieces`. Precondition: both have the same length.
    """
    if len(salt_messages) != len(records):
        raise ValueError("one salt message per record is needed")
    if len(records) < VECTOR_THRESHOLD:
        each_salt = [
            hmac.new(salt_key, m, hashlib.sha256).digest() for m in _as_bytes_list(salt_messages)
        ]
        leaves = (
            hashlib.sha256(LEAF_PREFIX + s + r).digest()
            for s, r in zip(each_salt, _as_bytes_list(records), strict=True)
        )
        return b"".join(each_salt), b"".join(leaves)
    salts = hmac_sha256_many(salt_key, salt_messages, threads=threads)
    engine = _engine()
    columns, pieces = _message_columns(engine, "r", records)
    columns["s"] = _fixed_rows(salts, SALT_SIZE)

    def leaf(col: Any) -> Any:
        return _prefixed_sha256(engine, LEAF_PREFIX, col("s"), *pieces(col))

    return salts, _digests(engine, leaf, columns, threads)


@dataclass(frozen=True)
class VectorizedHasher:
    """The RFC 9162 §2.1.1 level hashes of :class:`anchoring._internal.tree.LevelHasher`,
    through DataFusion for levels of at least :data:`VECTOR_THRESHOLD` hashes.

    ``threads`` caps the hashing threads (default: one per CPU); ``threads=1`` hashes in
    the calling thread, for callers that already spread their own work over threads.
    """

    threads: int | None = None

    def leaf_hashes(self, leaf_inputs: Sequence[bytes] | Any) -> bytes:
        """SHA-256(0x00 || d) of every leaf input, concatenated: ``leaf_inputs`` is a
        sequence of bytes, a polars Binary Series, an Arrow array or :class:`RowPieces`."""
        return sha256_many(LEAF_PREFIX, leaf_inputs, threads=self.threads)

    def parent_level(self, children: bytes) -> bytes:
        """SHA-256(0x01 || left || right) of each consecutive pair, concatenated."""
        if len(children) // (2 * HASH_SIZE) < VECTOR_THRESHOLD:
            return PLAIN_HASHER.parent_level(children)
        engine = _engine()
        pairs = _fixed_rows(children, 2 * HASH_SIZE)
        return _digests(
            engine,
            lambda col: _prefixed_sha256(engine, NODE_PREFIX, col("m")),
            {"m": pairs},
            self.threads,
        )
