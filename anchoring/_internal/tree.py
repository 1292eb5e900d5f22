"""A Merkle tree over a batch of leaves that keeps every level, for O(log n) proofs.

The levels hold only perfect nodes (see :mod:`anchoring.merkle.shape`), so a
tree of n leaves stores fewer than 2n hashes. A tree can be written to a file
and opened again with ``mmap``, so proofs from a stored million-leaf tree read
a few dozen hashes and nothing else.

The hashing of whole levels is a parameter (:class:`LevelHasher`): by default one
``hashlib`` call per hash (:data:`PLAIN_HASHER`); a producer of large trees passes a
vectorized one.
"""

from __future__ import annotations

__all__ = [
    "PLAIN_HASHER",
    "LevelHasher",
    "MerkleTree",
    "PlainHasher",
    "join_subtree_levels",
    "node_levels",
]

import hashlib
import mmap
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from anchoring.errors import MalformedError
from anchoring.merkle.hasher import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX
from anchoring.merkle.shape import (
    NodeId,
    consistency_ranges,
    inclusion_ranges,
    range_hashes,
    root_from_nodes,
)


class LevelHasher(Protocol):
    """The RFC 9162 §2.1.1 hashes of a whole level at once."""

    def leaf_hashes(self, leaf_inputs: Sequence[bytes] | Any) -> bytes:
        """SHA-256(0x00 || d) of every leaf input, concatenated (32 bytes each)."""
        ...

    def parent_level(self, children: bytes) -> bytes:
        """SHA-256(0x01 || left || right) of each consecutive pair of 32-byte hashes in
        ``children``, concatenated; an odd last child has no parent here."""
        ...


class PlainHasher:
    """:class:`LevelHasher` with one ``hashlib`` call per hash: the standard library only."""

    def leaf_hashes(self, leaf_inputs: Sequence[bytes] | Any) -> bytes:
        """SHA-256(0x00 || d) of every leaf input (a sequence of bytes), concatenated."""
        return b"".join(hashlib.sha256(LEAF_PREFIX + d).digest() for d in leaf_inputs)

    def parent_level(self, children: bytes) -> bytes:
        """SHA-256(0x01 || left || right) of each consecutive pair, concatenated."""
        pair = 2 * HASH_SIZE
        return b"".join(
            hashlib.sha256(NODE_PREFIX + children[i : i + pair]).digest()
            for i in range(0, len(children) // pair * pair, pair)
        )


#: The default hasher of :class:`MerkleTree`.
PLAIN_HASHER = PlainHasher()


def node_levels(leaf_hashes: bytes, hasher: LevelHasher = PLAIN_HASHER) -> list[bytes]:
    """All perfect-node levels of the RFC 9162 §2.1.1 tree over ``leaf_hashes``.

    Precondition: ``leaf_hashes`` is a multiple of 32 bytes. ``levels[0]`` is
    ``leaf_hashes``; ``levels[l][i]`` is the hash of the perfect subtree of
    2**l leaves starting at leaf ``i << l``, each 32 bytes, concatenated. An odd
    node at the end of a level has no parent at the next level: it is carried
    up by the RFC 9162 split instead.
    """
    levels = [bytes(leaf_hashes)]
    while len(levels[-1]) >= 2 * HASH_SIZE:
        levels.append(hasher.parent_level(levels[-1]))
    return levels


def join_subtree_levels(
    parts: Sequence[Sequence[bytes]], hasher: LevelHasher = PLAIN_HASHER
) -> list[bytes]:
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
    return levels + node_levels(b"".join(part[top] for part in parts if top < len(part)), hasher)


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
    def from_leaf_inputs(
        cls, leaf_inputs: Sequence[bytes] | Any, hasher: LevelHasher = PLAIN_HASHER
    ) -> MerkleTree:
        """Build the tree over ``leaf_inputs``: a sequence of bytes, or whatever else
        ``hasher`` takes."""
        size = len(leaf_inputs)
        if size == 0:
            return cls(0, [])
        return cls(size, node_levels(hasher.leaf_hashes(leaf_inputs), hasher))

    @classmethod
    def from_leaf_hashes(
        cls, leaf_hashes: bytes, hasher: LevelHasher = PLAIN_HASHER
    ) -> MerkleTree:
        """Build the tree over already-hashed leaves (32 bytes each, concatenated)."""
        if len(leaf_hashes) % HASH_SIZE:
            raise MalformedError("leaf hashes must be a multiple of 32 bytes")
        if not leaf_hashes:
            return cls(0, [])
        return cls(len(leaf_hashes) // HASH_SIZE, node_levels(leaf_hashes, hasher))

    @classmethod
    def from_subtree_levels(
        cls, parts: Sequence[Sequence[bytes]], hasher: LevelHasher = PLAIN_HASHER
    ) -> MerkleTree:
        """Join the levels of consecutive runs of leaves, each from :func:`node_levels`,
        into one tree.

        Precondition: every run but the last holds the same power-of-two number of leaves.
        """
        levels = join_subtree_levels(parts, hasher)
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

    # -- RFC 9162 §2.1 ---------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]) for any size up to the tree's (RFC 9162 §2.1.1)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise IndexError(f"size {size} is beyond the tree's {self.size} leaves")
        return root_from_nodes(size, self.nodes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1). Precondition: index < size <= self.size."""
        size = self.size if size is None else size
        if size > self.size:
            raise IndexError(f"size {size} is beyond the tree's {self.size} leaves")
        return range_hashes(inclusion_ranges(index, size), self.nodes)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1). Precondition: 0 < old <= new."""
        new_size = self.size if new_size is None else new_size
        if new_size > self.size:
            raise IndexError(f"size {new_size} is beyond the tree's {self.size} leaves")
        return range_hashes(consistency_ranges(old_size, new_size), self.nodes)

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
