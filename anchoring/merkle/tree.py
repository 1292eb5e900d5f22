"""A Merkle tree over a batch of leaves that keeps every level, for O(log n) proofs.

The levels hold only perfect nodes (see :mod:`anchoring.merkle.shape`), so a
tree of n leaves stores fewer than 2n hashes. A tree can be written to a file
and opened again with ``mmap``, so proofs from a stored million-leaf tree read
a few dozen hashes and nothing else.
"""

from __future__ import annotations

__all__ = ["MerkleTree"]

import mmap
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anchoring.batch import build_levels, join_subtree_levels, node_levels
from anchoring.errors import MalformedError
from anchoring.merkle.hasher import EMPTY_ROOT, HASH_SIZE
from anchoring.merkle.shape import (
    NodeId,
    consistency_ranges,
    fold_perfect_nodes,
    inclusion_ranges,
    perfect_nodes,
)

_MAGIC = b"TPTREE1\n"
_HEADER = struct.Struct(">8sQ")


class MerkleTree:
    """An RFC 9162 §2.1 tree over ``size`` leaves, with all perfect-node levels kept."""

    def __init__(self, size: int, levels: Sequence[bytes | memoryview | mmap.mmap]) -> None:
        """Wrap precomputed levels. Prefer :meth:`from_leaf_inputs` or :meth:`open`."""
        self.size = size
        self._levels = list(levels)
        for level, data in enumerate(self._levels):
            if len(data) != (size >> level) * HASH_SIZE:
                raise MalformedError(f"tree level {level} has the wrong length for {size} leaves")

    @classmethod
    def from_leaf_inputs(cls, leaf_inputs: Sequence[bytes] | Any) -> MerkleTree:
        """Build the tree over ``leaf_inputs`` (bytes, a polars Binary Series or an Arrow array)."""
        size = len(leaf_inputs)
        if size == 0:
            return cls(0, [])
        return cls(size, build_levels(leaf_inputs))

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: bytes) -> MerkleTree:
        """Build the tree over already-hashed leaves (32 bytes each, concatenated)."""
        if len(leaf_hashes) % HASH_SIZE:
            raise MalformedError("leaf hashes must be a multiple of 32 bytes")
        if not leaf_hashes:
            return cls(0, [])
        return cls(len(leaf_hashes) // HASH_SIZE, node_levels(leaf_hashes))

    @classmethod
    def from_subtree_levels(cls, parts: Sequence[Sequence[bytes]]) -> MerkleTree:
        """Join the levels of consecutive runs of leaves, each from
        :func:`anchoring.batch.node_levels`, into one tree.

        Precondition: every run but the last holds the same power-of-two number of leaves.
        """
        levels = join_subtree_levels(parts)
        return cls(len(levels[0]) // HASH_SIZE if levels else 0, levels)

    # -- nodes -------------------------------------------------------------

    def node(self, level: int, index: int) -> bytes:
        """The hash of perfect node (level, index). Precondition: it lies inside the tree."""
        data = self._levels[level]
        start = index * HASH_SIZE
        if start + HASH_SIZE > len(data) or index < 0:
            raise IndexError(f"no perfect node ({level}, {index}) in a tree of {self.size}")
        return bytes(data[start : start + HASH_SIZE])

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self.node(0, index)

    def leaf_hashes(self) -> bytes:
        """All leaf hashes, concatenated in leaf order."""
        return bytes(self._levels[0]) if self._levels else b""

    def _range_hash(self, lo: int, hi: int) -> bytes:
        return fold_perfect_nodes([self.node(level, i) for level, i in perfect_nodes(lo, hi)])

    # -- RFC 9162 §2.1 ---------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]) for any size up to the tree's (RFC 9162 §2.1.1)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise IndexError(f"size {size} is beyond the tree's {self.size} leaves")
        return EMPTY_ROOT if size == 0 else self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1). Precondition: index < size <= self.size."""
        size = self.size if size is None else size
        if size > self.size:
            raise IndexError(f"size {size} is beyond the tree's {self.size} leaves")
        return [self._range_hash(lo, hi) for lo, hi in inclusion_ranges(index, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1). Precondition: 0 < old <= new."""
        new_size = self.size if new_size is None else new_size
        if new_size > self.size:
            raise IndexError(f"size {new_size} is beyond the tree's {self.size} leaves")
        return [self._range_hash(lo, hi) for lo, hi in consistency_ranges(old_size, new_size)]

    def nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """Several perfect nodes at once."""
        return [self.node(level, i) for level, i in ids]

    # -- storage -----------------------------------------------------------

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the tree to ``path`` durably: temporary file, fsync, rename."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as out:
            out.write(_HEADER.pack(_MAGIC, self.size))
            for data in self._levels:
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> MerkleTree:
        """Map a tree written by :meth:`write` without reading it into memory."""
        with open(path, "rb") as f:
            header = f.read(_HEADER.size)
            if len(header) != _HEADER.size:
                raise MalformedError(f"{path}: not a tree file (too short)")
            magic, size = _HEADER.unpack(header)
            if magic != _MAGIC:
                raise MalformedError(f"{path}: not a tree file (bad magic)")
            if size == 0:
                return cls(0, [])
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(mapped)
        levels: list[memoryview] = []
        offset = _HEADER.size
        level = 0
        while size >> level:
            length = (size >> level) * HASH_SIZE
            levels.append(view[offset : offset + length])
            offset += length
            level += 1
        if offset != len(mapped):
            raise MalformedError(f"{path}: tree file has the wrong length for {size} leaves")
        return cls(size, levels)
