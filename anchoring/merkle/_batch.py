"""Vectorized SHA-256 over whole tree levels, for building large trees.

Hashing a million leaves one ``hashlib`` call at a time is dominated by the
interpreter, not by SHA-256. Here each level goes through polars-hash (Rust,
SHA-NI where the CPU has it) in chunks on a thread pool. polars is imported
lazily so that verification never needs it; without it, and for small
levels where the vectorized path does not pay, the plain loop is used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from anchoring.merkle.hasher import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX

__all__ = ["build_levels"]

#: Below this many hashes in a level the plain loop beats the vectorized path.
VECTOR_THRESHOLD = 4096


def _polars() -> Any | None:
    try:
        import polars as pl
        import polars_hash  # noqa: F401  (registers the chash namespace)
    except ImportError:  # pragma: no cover - polars is a declared dependency
        return None
    return pl


def _digests(pl: Any, prefix: bytes, messages: Any) -> bytes:
    """SHA-256 of ``prefix || messages[i]`` for each row i, concatenated.

    Each chunk hashes and converts on the thread pool: polars releases the
    GIL, so chunks run in parallel.
    """
    rows = len(messages)
    workers = os.cpu_count() or 1
    step = max(VECTOR_THRESHOLD, -(-rows // (workers * 2)))

    def run(lo: int) -> bytes:
        frame = pl.DataFrame({"m": messages.slice(lo, step)})
        message = pl.lit(prefix, dtype=pl.Binary) + pl.col("m")
        hexes = frame.select(message.chash.sha2_256()).to_series()
        return bytes.fromhex(hexes.str.join("").item())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return b"".join(pool.map(run, range(0, rows, step)))


def _pairs(pl: Any, level: bytes) -> Any:
    """The full pairs of a level as a Binary Series of 64-byte ``left || right`` values."""
    import pyarrow as pa  # only to view the buffer as fixed-width rows without a copy

    pairs = len(level) // (2 * HASH_SIZE)
    view = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2 * HASH_SIZE), pairs, [None, pa.py_buffer(level)]
    )
    return pl.from_arrow(view)


def _plain_level(children: bytes) -> bytes:
    return b"".join(
        hashlib.sha256(NODE_PREFIX + children[i : i + 2 * HASH_SIZE]).digest()
        for i in range(0, len(children) // (2 * HASH_SIZE) * 2 * HASH_SIZE, 2 * HASH_SIZE)
    )


def _plain_leaves(leaf_inputs: Sequence[bytes] | Any) -> bytes:
    return b"".join(hashlib.sha256(LEAF_PREFIX + bytes(d)).digest() for d in leaf_inputs)


def build_levels(leaf_inputs: Sequence[bytes] | Any) -> list[bytes]:
    """All perfect-node levels of the RFC 9162 tree over ``leaf_inputs``.

    ``levels[0]`` holds the leaf hashes SHA-256(0x00 || d); ``levels[l][i]``
    is the hash of the perfect subtree of 2**l leaves starting at leaf
    ``i << l``, each 32 bytes, concatenated. An odd node at the end of a level
    has no parent at the next level: it is carried up by the RFC 9162 split
    instead. ``leaf_inputs`` is a sequence of bytes or a polars Binary Series.
    """
    pl = _polars()
    n = len(leaf_inputs)
    if pl is None or n < VECTOR_THRESHOLD:
        levels = [_plain_leaves(leaf_inputs)]
    else:
        if not isinstance(leaf_inputs, pl.Series):
            leaf_inputs = pl.Series("leaf", leaf_inputs, dtype=pl.Binary)
        levels = [_digests(pl, LEAF_PREFIX, leaf_inputs.cast(pl.Binary))]
        while len(levels[-1]) // (2 * HASH_SIZE) >= VECTOR_THRESHOLD:
            levels.append(_digests(pl, NODE_PREFIX, _pairs(pl, levels[-1])))
    while len(levels[-1]) >= 2 * HASH_SIZE:
        levels.append(_plain_level(levels[-1]))
    return levels
