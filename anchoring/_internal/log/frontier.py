"""The log's Merkle side: the right frontier that appends grow, and proofs from stored nodes.

The log stores every *perfect* subtree (see :mod:`anchoring.merkle.shape`) as
``(level, index) -> hash``: level 0 holds the leaf hashes, and ``(l + 1, i)``
exists as soon as its children ``(l, 2i)`` and ``(l, 2i + 1)`` both do
(RFC 9162 §2.1.1). The nodes of a size-n tree never change when the log grows,
so any root or proof for any size up to the current one is read from at most
about 2·log2(n) stored nodes.

Nothing here touches a database: the nodes are read through a
:data:`NodeReader` and the rows to store are handed back as plain tuples.
"""

from __future__ import annotations

__all__ = [
    "EntryRow",
    "Frontier",
    "NodeReader",
    "NodeRow",
    "consistency_hashes",
    "inclusion_hashes",
    "root_hash",
]

from collections.abc import Callable, Sequence

from anchoring.merkle.hasher import leaf_hash, node_hash
from anchoring.merkle.shape import (
    NodeId,
    consistency_ranges,
    inclusion_ranges,
    perfect_nodes,
    range_hashes,
    root_from_nodes,
)

#: Reads the hashes of stored perfect nodes, in the order asked for.
NodeReader = Callable[[Sequence[NodeId]], list[bytes]]
#: (index, leaf hash, leaf input, key, key_seq) of an entry; (level, index, hash) of a node.
EntryRow = tuple[int, bytes, bytes, str | None, int | None]
NodeRow = tuple[int, int, bytes]


class Frontier:
    """Hashes new leaves onto the right frontier of a size-``size`` tree.

    The frontier holds, per level, the hash of the perfect node still waiting
    for its right sibling: exactly the perfect nodes of ``[0, size)``
    (RFC 9162 §2.1.1: a parent exists once both its children do). Each leaf
    added queues one entry row and the node rows it completes.
    """

    def __init__(self, size: int, read_nodes: NodeReader) -> None:
        ids = perfect_nodes(0, size)
        self.size = size
        self.levels: dict[int, bytes] = {
            level: h for (level, _), h in zip(ids, read_nodes(ids), strict=True)
        }
        #: A row for each leaf added, and for each perfect node completed.
        self.entries: list[EntryRow] = []
        self.nodes: list[NodeRow] = []

    def add(self, data: bytes, key: str | None = None, key_seq: int | None = None) -> int:
        """Add leaf input ``data`` (RFC 9162 §2.1.1) as the next leaf; returns its index."""
        index = self.size
        h = leaf_hash(data)
        self.entries.append((index, h, data, key, key_seq))
        nodes = self.nodes
        nodes.append((0, index, h))
        level, i = 0, index
        levels = self.levels
        while i & 1:  # (level, i) is a right child: its parent is now complete
            h = node_hash(levels.pop(level), h)
            level += 1
            i >>= 1
            nodes.append((level, i, h))
        levels[level] = h
        self.size = index + 1
        return index

    def take_rows(self) -> tuple[list[EntryRow], list[NodeRow]]:
        """The entry and node rows queued since the last call."""
        entries, nodes = self.entries, self.nodes
        self.entries, self.nodes = [], []
        return entries, nodes


def root_hash(size: int, read_nodes: NodeReader) -> bytes:
    """MTH(D[0:size]) (RFC 9162 §2.1.1)."""
    return root_from_nodes(size, read_nodes)


def inclusion_hashes(index: int, size: int, read_nodes: NodeReader) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1). Precondition: 0 <= index < size."""
    return range_hashes(inclusion_ranges(index, size), read_nodes)


def consistency_hashes(old_size: int, new_size: int, read_nodes: NodeReader) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1). Precondition: 0 < old <= new."""
    return range_hashes(consistency_ranges(old_size, new_size), read_nodes)
