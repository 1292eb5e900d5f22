"""Root and range hashes from stored perfect nodes, and the hex form of a hash, against the
naive RFC 9162 reference: the one helper the tree file and the log database both use."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import rfc9162_reference as ref

from anchoring.merkle.hasher import EMPTY_ROOT, is_hex_hash
from anchoring.merkle.shape import (
    NodeId,
    consistency_ranges,
    inclusion_ranges,
    range_hashes,
    root_from_nodes,
)

LEAVES = [f"leaf {i}".encode() for i in range(40)]


class CountingStore:
    """Perfect nodes hashed by the reference, counting how often they are looked up."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self.lookups = 0

    def __call__(self, ids: Sequence[NodeId]) -> list[bytes]:
        self.lookups += 1
        return [ref.mth(self.leaves[i << level : (i + 1) << level]) for level, i in ids]


@pytest.mark.parametrize("size", range(len(LEAVES) + 1))
def test_root_from_nodes_is_the_tree_hash(size: int) -> None:
    store = CountingStore(LEAVES[:size])
    assert root_from_nodes(size, store) == ref.mth(LEAVES[:size])
    assert store.lookups == (1 if size else 0)


def test_the_empty_tree_root_needs_no_node() -> None:
    def no_nodes(ids: Sequence[NodeId]) -> list[bytes]:
        raise AssertionError(f"looked up {ids}")

    assert root_from_nodes(0, no_nodes) == EMPTY_ROOT


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 13, 32, 40])
def test_range_hashes_make_inclusion_and_consistency_proofs(size: int) -> None:
    leaves = LEAVES[:size]
    for index in range(size):
        store = CountingStore(leaves)
        assert range_hashes(inclusion_ranges(index, size), store) == ref.path(index, leaves)
        assert store.lookups == 1  # one query for the whole proof
    for old in range(1, size + 1):
        assert range_hashes(consistency_ranges(old, size), CountingStore(leaves)) == \
            ref.proof(old, leaves)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ab" * 32, True),
        ("0" * 64, True),
        ("AB" * 32, False),  # JSON carries lowercase hex only
        ("ab" * 31, False),
        ("ab" * 33, False),
        ("ab" * 32 + "\n", False),
        (" " + "ab" * 32, False),
        ("g" * 64, False),
        (b"ab" * 32, False),
        (None, False),
    ],
)
def test_is_hex_hash(value: object, ok: bool) -> None:
    assert is_hex_hash(value) is ok
