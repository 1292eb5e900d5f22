"""Which subtrees an RFC 9162 proof is made of.

Every hash in a proof is the Merkle tree hash of a contiguous range of leaves
``[lo, hi)``. This module works those ranges out from (index, size) alone, and
splits each range into *perfect* nodes: aligned subtrees of 2**level leaves,
addressed as ``(level, index)``. A store that keeps perfect nodes can then
answer any proof with O(log n) lookups and no rescan.
"""

from __future__ import annotations

__all__ = [
    "NodeId",
    "NodeLookup",
    "consistency_proof_length",
    "consistency_ranges",
    "fold_perfect_nodes",
    "inclusion_proof_length",
    "inclusion_ranges",
    "largest_power_of_two_below",
    "perfect_nodes",
    "range_hashes",
    "root_from_nodes",
]

from collections.abc import Callable, Sequence

from anchoring.errors import ProofShapeError
from anchoring.merkle.hasher import EMPTY_ROOT, node_hash

#: A perfect subtree: (level, index) covers leaves [index << level, (index + 1) << level).
NodeId = tuple[int, int]
#: The hashes of stored perfect nodes, in the order asked for, looked up in one go.
NodeLookup = Callable[[Sequence[NodeId]], Sequence[bytes]]


def largest_power_of_two_below(n: int) -> int:
    """The split point k of RFC 9162 §2.1.1: the largest power of two smaller than n.

    Precondition: n > 1.
    """
    if n < 2:
        raise ValueError(f"no power of two is below {n} in a split")
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(lo: int, hi: int) -> list[NodeId]:
    """Split ``[lo, hi)`` into perfect subtrees, left to right.

    Precondition: ``lo`` is a multiple of the largest power of two not above
    ``hi - lo``, which holds for every range RFC 9162 recursion produces.
    """
    nodes: list[NodeId] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise ValueError(f"range [{lo}, {hi}) is not an RFC 9162 subtree")
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def fold_perfect_nodes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect nodes (left to right).

    The RFC 9162 split puts the largest power of two on the left, so the range
    hash folds from the right.
    """
    if not hashes:
        raise ValueError("a range has at least one node")
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def range_hashes(ranges: Sequence[tuple[int, int]], nodes: NodeLookup) -> list[bytes]:
    """MTH(D[lo:hi]) of each leaf range (RFC 9162 §2.1.1) from stored perfect nodes,
    asking ``nodes`` once for all of them (a proof's hashes from one database query).

    Precondition: each range is one RFC 9162 recursion produces (see :func:`perfect_nodes`).
    """
    split = [perfect_nodes(lo, hi) for lo, hi in ranges]
    hashes = nodes([node for range_nodes in split for node in range_nodes])
    out: list[bytes] = []
    at = 0
    for range_nodes in split:
        out.append(fold_perfect_nodes(hashes[at : at + len(range_nodes)]))
        at += len(range_nodes)
    return out


def root_from_nodes(size: int, nodes: NodeLookup) -> bytes:
    """MTH(D[0:size]) (RFC 9162 §2.1.1) from stored perfect nodes: the root of a tree
    of ``size`` leaves, the empty-tree hash for 0. Precondition: ``size >= 0``."""
    return EMPTY_ROOT if size == 0 else range_hashes([(0, size)], nodes)[0]


def _check_index(index: int, size: int) -> None:
    if size < 1 or not 0 <= index < size:
        raise ProofShapeError(f"leaf index {index} is out of range for tree size {size}")


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf sibling first.

    Precondition: 0 <= index < size.
    """
    _check_index(index, size)
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges of PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1).

    Precondition: 0 < old_size <= new_size. Equal sizes give an empty proof.
    """
    if not 0 < old_size <= new_size:
        raise ProofShapeError(
            f"no consistency proof from size {old_size} to size {new_size}: need 0 < old <= new"
        )
    ranges: list[tuple[int, int]] = []
    m, lo, hi, whole = old_size, 0, new_size, True
    while m != hi - lo:
        k = largest_power_of_two_below(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo = lo + k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes PATH(index, D[0:size]) holds. Precondition: 0 <= index < size."""
    _check_index(index, size)
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes PROOF(old_size, D[0:new_size]) holds. Precondition: 0 < old <= new."""
    if not 0 < old_size <= new_size:
        raise ProofShapeError(
            f"no consistency proof from size {old_size} to size {new_size}: need 0 < old <= new"
        )
    if old_size == new_size:
        return 0
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> level
    last = (new_size - 1) >> level
    inner = (index ^ last).bit_length()
    border = (index >> inner).bit_count()
    seed = 1 if index else 0
    return seed + inner + border
