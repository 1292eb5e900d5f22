"""Vectorized SHA-256 and HMAC-SHA256 over many messages, for producers of large trees.

Hashing a million leaves one ``hashlib`` call at a time is dominated by the
interpreter, not by SHA-256. Here each level goes through polars-hash (Rust,
SHA-NI where the CPU has it) in chunks on a thread pool. polars is imported
lazily so that verification never needs it; without it, and for small
levels where the vectorized path does not pay, the plain loop is used.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from anchoring.merkle.hasher import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX

__all__ = [
    "VECTOR_THRESHOLD",
    "build_levels",
    "hmac_sha256_many",
    "leaf_hashes_many",
    "node_levels",
    "sha256_many",
]

#: Below this many hashes in a level the plain loop beats the vectorized path.
VECTOR_THRESHOLD = 4096


def _polars() -> Any | None:
    try:
        import polars as pl
        import polars_hash  # noqa: F401  (registers the chash namespace)
    except ImportError:  # pragma: no cover - polars is a declared dependency
        return None
    return pl


def _digests(pl: Any, prefix: bytes, messages: Any, threads: int | None = None) -> bytes:
    """SHA-256 of ``prefix || messages[i]`` for each row i, concatenated.

    With more than one thread, chunks hash and convert on a thread pool: polars
    releases the GIL, so chunks run in parallel. ``threads=1`` hashes in the
    calling thread, for callers that already spread their own work over threads.
    """
    rows = len(messages)
    workers = threads or os.cpu_count() or 1
    # Several chunks per worker, so that one chunk's hex-to-bytes conversion (which holds
    # the GIL) overlaps with another chunk's hashing (which does not).
    step = rows if workers == 1 else max(VECTOR_THRESHOLD, -(-rows // (workers * 8)))

    def run(lo: int) -> bytes:
        if isinstance(messages, pl.Series):
            chunk = messages.slice(lo, step)
        else:  # a list: convert per chunk, so conversion overlaps another chunk's hashing
            chunk = pl.Series("m", messages[lo : lo + step], dtype=pl.Binary)
        frame = pl.DataFrame({"m": chunk})
        message = pl.lit(prefix, dtype=pl.Binary) + pl.col("m")
        hexes = frame.select(message.chash.sha2_256()).to_series()
        return _unhex_rows(hexes, len(chunk))

    if workers == 1:
        return run(0)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return b"".join(pool.map(run, range(0, rows, step)))


def _unhex_rows(hexes: Any, rows: int) -> bytes:
    """The digests behind a polars String Series of 64-character hex digests, concatenated.

    The Arrow ``large_string`` form keeps the characters in one buffer, so they are
    decoded in a single ``a2b_hex`` call, with no per-row Python objects.
    """
    import polars as pl

    array = hexes.to_arrow(compat_level=pl.CompatLevel.oldest())
    offsets = memoryview(array.buffers()[1]).cast("q")
    start = offsets[array.offset]
    end = offsets[array.offset + rows]
    if end - start != 2 * HASH_SIZE * rows:  # pragma: no cover - polars-hash returns full digests
        raise ValueError("unexpected digest width from polars-hash")
    return binascii.a2b_hex(memoryview(array.buffers()[2])[start:end])


def _fixed_rows(pl: Any, data: bytes, width: int) -> Any:
    """``data`` cut into rows of ``width`` bytes, as a polars Binary Series.

    nanoarrow lays the rows over the buffer without a copy, for polars to import
    through the Arrow C data interface.
    """
    import nanoarrow

    rows = len(data) // width
    view = nanoarrow.c_array_from_buffers(nanoarrow.fixed_size_binary(width), rows, [None, data])
    return pl.Series("m", view)


def _as_series(pl: Any, messages: Sequence[bytes] | Any) -> Any:
    """A polars Binary Series for Arrow or polars input; a list for Python sequences
    (converted chunk by chunk in :func:`_digests`)."""
    if isinstance(messages, pl.Series):
        return messages.cast(pl.Binary)
    if hasattr(messages, "__arrow_c_array__") or hasattr(messages, "__arrow_c_stream__"):
        return pl.Series("m", messages).cast(pl.Binary)
    return messages if isinstance(messages, list) else list(messages)


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
    pl = _polars()
    if pl is None or len(messages) < VECTOR_THRESHOLD:
        return b"".join(hashlib.sha256(prefix + m).digest() for m in _as_bytes_list(messages))
    return _digests(pl, prefix, _as_series(pl, messages), threads)


def hmac_sha256_many(
    key: bytes, messages: Sequence[bytes] | Any, *, threads: int | None = None
) -> bytes:
    """HMAC-SHA256(key, m) (RFC 2104) for every message, concatenated (32 bytes each).

    With a key of at most one block, HMAC is SHA-256((K ^ opad) || SHA-256((K ^ ipad) || m)),
    so both passes are prefix hashes and vectorize.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\x00")
    inner_pad = bytes(b ^ 0x36 for b in block)
    outer_pad = bytes(b ^ 0x5C for b in block)
    pl = _polars()
    if pl is None or len(messages) < VECTOR_THRESHOLD:
        return b"".join(
            hmac.new(key, m, hashlib.sha256).digest() for m in _as_bytes_list(messages)
        )
    inner = _digests(pl, inner_pad, _as_series(pl, messages), threads)
    return _digests(pl, outer_pad, _fixed_rows(pl, inner, HASH_SIZE), threads)


def leaf_hashes_many(leaf_inputs: Sequence[bytes] | Any, *, threads: int | None = None) -> bytes:
    """The RFC 9162 §2.1.1 leaf hash SHA-256(0x00 || d) of every leaf input, concatenated."""
    return sha256_many(LEAF_PREFIX, leaf_inputs, threads=threads)


def _plain_level(children: bytes) -> bytes:
    return b"".join(
        hashlib.sha256(NODE_PREFIX + children[i : i + 2 * HASH_SIZE]).digest()
        for i in range(0, len(children) // (2 * HASH_SIZE) * 2 * HASH_SIZE, 2 * HASH_SIZE)
    )


def node_levels(leaf_hashes: bytes) -> list[bytes]:
    """All perfect-node levels of the RFC 9162 §2.1.1 tree over ``leaf_hashes``.

    Precondition: ``leaf_hashes`` is a multiple of 32 bytes. ``levels[0]`` is
    ``leaf_hashes``; ``levels[l][i]`` is the hash of the perfect subtree of
    2**l leaves starting at leaf ``i << l``, each 32 bytes, concatenated. An odd
    node at the end of a level has no parent at the next level: it is carried
    up by the RFC 9162 split instead.
    """
    pl = _polars()
    levels = [bytes(leaf_hashes)]
    while pl is not None and len(levels[-1]) // (2 * HASH_SIZE) >= VECTOR_THRESHOLD:
        levels.append(_digests(pl, NODE_PREFIX, _fixed_rows(pl, levels[-1], 2 * HASH_SIZE)))
    while len(levels[-1]) >= 2 * HASH_SIZE:
        levels.append(_plain_level(levels[-1]))
    return levels


def build_levels(leaf_inputs: Sequence[bytes] | Any) -> list[bytes]:
    """All perfect-node levels of the RFC 9162 tree over ``leaf_inputs`` (see
    :func:`node_levels`); ``leaf_inputs`` is a sequence of bytes, a polars Binary
    Series or an Arrow array."""
    return node_levels(leaf_hashes_many(leaf_inputs))
