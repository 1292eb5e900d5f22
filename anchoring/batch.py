"""Vectorized SHA-256 and HMAC-SHA256 over many messages, for producers of large trees.

Hashing a million leaves one ``hashlib`` call at a time is dominated by the
interpreter, not by SHA-256. Here a whole column of messages is hashed in one
Apache DataFusion expression (Rust, SHA-NI where the CPU has it), with binary
digests out, in chunks on a thread pool. DataFusion and pyarrow are imported
lazily so that verification never needs them; without them, and for levels
too small for the vectorized path to pay, the plain loop is used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from anchoring.canonical import SALT_SIZE
from anchoring.merkle.hasher import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX

__all__ = [
    "VECTOR_THRESHOLD",
    "build_levels",
    "hmac_sha256_many",
    "join_subtree_levels",
    "leaf_hashes_many",
    "node_levels",
    "salted_leaf_hashes_many",
    "sha256_many",
]

#: Below this many hashes in a level the plain loop beats the vectorized path.
VECTOR_THRESHOLD = 4096

#: An expression over the column ``m`` (a DataFusion ``Expr``), giving 32-byte digests.
_Expression = Callable[[Any], Any]


def _engine() -> Any | None:
    try:
        import datafusion
    except ImportError:  # pragma: no cover - datafusion is a declared dependency
        return None
    return datafusion


def _binary_column(messages: Sequence[bytes] | Any) -> Any:
    """Messages as one pyarrow ``binary``-like array (no copy for Arrow input), or as a
    list of bytes, which :func:`_digests` converts chunk by chunk."""
    import pyarrow as pa

    if isinstance(messages, pa.ChunkedArray):
        return messages.combine_chunks()
    if isinstance(messages, pa.Array):
        return messages
    if hasattr(messages, "to_arrow"):  # a polars Series
        return messages.to_arrow()
    return messages if isinstance(messages, list) else list(messages)


def _fixed_rows(data: bytes, width: int) -> Any:
    """``data`` cut into rows of ``width`` bytes, as a pyarrow array over the same buffer."""
    import pyarrow as pa

    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(data) // width, [None, pa.py_buffer(data)]
    )


def _concatenated_digests(digests: Any) -> bytes:
    """The values of a pyarrow array of 32-byte digests, concatenated in row order."""
    import pyarrow as pa

    digests = digests.combine_chunks() if isinstance(digests, pa.ChunkedArray) else digests
    rows = len(digests)
    if digests.null_count or digests.type != pa.binary():  # pragma: no cover - DataFusion's type
        raise ValueError(f"unexpected digest column from DataFusion: {digests.type}")
    offsets = memoryview(digests.buffers()[1]).cast("i")
    start, end = offsets[digests.offset], offsets[digests.offset + rows]
    if end - start != HASH_SIZE * rows:  # pragma: no cover - SHA-256 digests are 32 bytes
        raise ValueError("unexpected digest width from DataFusion")
    return bytes(memoryview(digests.buffers()[2])[start:end])


def _evaluate(engine: Any, expression: _Expression, columns: dict[str, Any]) -> bytes:
    """``expression`` over one chunk of rows, in the calling thread."""
    import pyarrow as pa

    rows = len(next(iter(columns.values())))
    config = engine.SessionConfig().with_target_partitions(1).with_batch_size(max(rows, 1))
    context = engine.SessionContext(config)
    arrays = {}
    for name, column in columns.items():
        if isinstance(column, list):
            arrays[name] = pa.array(column, pa.binary())
        elif pa.types.is_fixed_size_binary(column.type):
            arrays[name] = column.cast(pa.binary())
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


def _prefixed_sha256(engine: Any, prefix: bytes, message: Any) -> Any:
    functions = engine.functions
    return functions.sha256(functions.concat(engine.lit(prefix), message))


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """RFC 2104 §2: the key, hashed if longer than a block, padded to the 64-byte block,
    XORed with ipad and with opad."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def _hmac_sha256(engine: Any, key: bytes, message: Any) -> Any:
    # RFC 2104 §2: H((K ^ opad) || H((K ^ ipad) || text)); both passes are prefix hashes.
    inner_pad, outer_pad = _hmac_pads(key)
    return _prefixed_sha256(engine, outer_pad, _prefixed_sha256(engine, inner_pad, message))


def _as_bytes_list(messages: Sequence[bytes] | Any) -> list[bytes]:
    if hasattr(messages, "to_pylist"):  # an Arrow array or a polars Series
        return list(messages.to_pylist())
    return [bytes(m) for m in messages]


def sha256_many(
    prefix: bytes, messages: Sequence[bytes] | Any, *, threads: int | None = None
) -> bytes:
    """SHA-256(prefix || m) for every message, concatenated (32 bytes each).

    ``messages`` is a sequence of bytes, a polars Binary Series, or an Arrow array.
    ``threads`` caps the hashing threads (default: one per CPU).
    """
    engine = _engine()
    if engine is None or len(messages) < VECTOR_THRESHOLD:
        return b"".join(hashlib.sha256(prefix + m).digest() for m in _as_bytes_list(messages))
    return _digests(
        engine,
        lambda col: _prefixed_sha256(engine, prefix, col("m")),
        {"m": _binary_column(messages)},
        threads,
    )


def hmac_sha256_many(
    key: bytes, messages: Sequence[bytes] | Any, *, threads: int | None = None
) -> bytes:
    """HMAC-SHA256(key, m) (RFC 2104) for every message, concatenated (32 bytes each)."""
    engine = _engine()
    if engine is None or len(messages) < VECTOR_THRESHOLD:
        return b"".join(hmac.new(key, m, hashlib.sha256).digest() for m in _as_bytes_list(messages))
    return _digests(
        engine,
        lambda col: _hmac_sha256(engine, key, col("m")),
        {"m": _binary_column(messages)},
        threads,
    )


def salted_leaf_hashes_many(
    salt_key: bytes,
    salt_messages: Sequence[bytes] | Any,
    records: Sequence[bytes] | Any,
    *,
    threads: int | None = None,
) -> tuple[bytes, bytes]:
    """Salts and leaf hashes of salted records (DESIGN Formats 3; RFC 9162 §2.1.1).

    For each row i: ``salt = HMAC-SHA256(salt_key, salt_messages[i])`` and
    ``leaf hash = SHA-256(0x00 || salt || records[i])``. Returns all salts and all
    leaf hashes, each concatenated (32 bytes per row). Precondition: both
    sequences have the same length.
    """
    if len(salt_messages) != len(records):
        raise ValueError("one salt message per record is needed")
    engine = _engine()
    if engine is None or len(records) < VECTOR_THRESHOLD:
        each_salt = [
            hmac.new(salt_key, m, hashlib.sha256).digest() for m in _as_bytes_list(salt_messages)
        ]
        leaves = (
            hashlib.sha256(LEAF_PREFIX + s + r).digest()
            for s, r in zip(each_salt, _as_bytes_list(records), strict=True)
        )
        return b"".join(each_salt), b"".join(leaves)
    salts = hmac_sha256_many(salt_key, salt_messages, threads=threads)
    columns = {"s": _fixed_rows(salts, SALT_SIZE), "r": _binary_column(records)}

    def leaf(col: Any) -> Any:
        functions = engine.functions
        return functions.sha256(functions.concat(engine.lit(LEAF_PREFIX), col("s"), col("r")))

    return salts, _digests(engine, leaf, columns, threads)


def leaf_hashes_many(leaf_inputs: Sequence[bytes] | Any, *, threads: int | None = None) -> bytes:
    """The RFC 9162 §2.1.1 leaf hash SHA-256(0x00 || d) of every leaf input, concatenated."""
    return sha256_many(LEAF_PREFIX, leaf_inputs, threads=threads)


def _plain_level(children: bytes) -> bytes:
    return b"".join(
        hashlib.sha256(NODE_PREFIX + children[i : i + 2 * HASH_SIZE]).digest()
        for i in range(0, len(children) // (2 * HASH_SIZE) * 2 * HASH_SIZE, 2 * HASH_SIZE)
    )


def node_levels(leaf_hashes: bytes, *, threads: int | None = None) -> list[bytes]:
    """All perfect-node levels of the RFC 9162 §2.1.1 tree over ``leaf_hashes``.

    Precondition: ``leaf_hashes`` is a multiple of 32 bytes. ``levels[0]`` is
    ``leaf_hashes``; ``levels[l][i]`` is the hash of the perfect subtree of
    2**l leaves starting at leaf ``i << l``, each 32 bytes, concatenated. An odd
    node at the end of a level has no parent at the next level: it is carried
    up by the RFC 9162 split instead.
    """
    engine = _engine()
    levels = [bytes(leaf_hashes)]
    while engine is not None and len(levels[-1]) // (2 * HASH_SIZE) >= VECTOR_THRESHOLD:
        pairs = _fixed_rows(levels[-1], 2 * HASH_SIZE)
        levels.append(
            _digests(
                engine,
                lambda col: _prefixed_sha256(engine, NODE_PREFIX, col("m")),
                {"m": pairs},
                threads,
            )
        )
    while len(levels[-1]) >= 2 * HASH_SIZE:
        levels.append(_plain_level(levels[-1]))
    return levels


def join_subtree_levels(parts: Sequence[Sequence[bytes]]) -> list[bytes]:
    """The levels (see :func:`node_levels`) of the tree over consecutive runs of leaves,
    given each run's own :func:`node_levels`.

    Precondition: every run but the last holds the same power-of-two number of
    leaves, 2**k. A run then starts at a multiple of 2**k, so its perfect nodes up
    to level k are the whole tree's (RFC 9162 §2.1.1 splits at powers of two);
    only the levels above k are hashed here.
    """
    if not parts:
        return []
    if len(parts) == 1:
        return [bytes(level) for level in parts[0]]
    run = len(parts[0][0]) // HASH_SIZE
    if run & (run - 1) or any(len(part[0]) != run * HASH_SIZE for part in parts[:-1]):
        raise ValueError("every run of leaves but the last must hold the same power of two")
    top = run.bit_length() - 1
    levels = [b"".join(part[level] for part in parts if level < len(part)) for level in range(top)]
    return levels + node_levels(b"".join(part[top] for part in parts if top < len(part)))


def build_levels(leaf_inputs: Sequence[bytes] | Any) -> list[bytes]:
    """All perfect-node levels of the RFC 9162 tree over ``leaf_inputs`` (see
    :func:`node_levels`); ``leaf_inputs`` is a sequence of bytes, a polars Binary
    Series or an Arrow array."""
    return node_levels(leaf_hashes_many(leaf_inputs))
