"""The vectorized hashes of :mod:`anchoring.batch` against hashlib/hmac, one message at a time.

Sizes straddle ``VECTOR_THRESHOLD`` so that both the plain loop and the
DataFusion path run; messages are random bytes (not UTF-8), of varied lengths,
including empty ones and ones longer than a SHA-256 block.
"""

from __future__ import annotations

import hashlib
import hmac
import random

import pyarrow as pa
import pytest
import rfc9162_reference as ref

from anchoring import batch
from anchoring.merkle.tree import MerkleTree


def random_messages(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice((0, 1, 31, 55, 56, 63, 64, 65, 119, 200))) for _ in range(n)]


SIZES = [1, batch.VECTOR_THRESHOLD - 1, batch.VECTOR_THRESHOLD, 3 * batch.VECTOR_THRESHOLD + 7]


@pytest.mark.parametrize("n", SIZES)
def test_sha256_many_is_a_prefixed_sha256_per_message(n: int) -> None:
    messages = random_messages(n, n)
    expected = b"".join(hashlib.sha256(b"\x07ab" + m).digest() for m in messages)
    assert batch.sha256_many(b"\x07ab", messages) == expected
    assert batch.sha256_many(b"\x07ab", pa.array(messages, pa.binary()), threads=1) == expected
    assert batch.sha256_many(b"\x07ab", pa.array(messages, pa.large_binary())) == expected
    same_width = [m.ljust(200, b"\xff") for m in messages]
    fixed = pa.array(same_width, pa.binary(200))
    assert batch.sha256_many(b"", fixed) == b"".join(hashlib.sha256(m).digest() for m in same_width)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("key_size", [0, 32, 64, 65, 100])
def test_hmac_sha256_many_is_rfc_2104_per_message(n: int, key_size: int) -> None:
    key = random.Random(key_size).randbytes(key_size)
    messages = random_messages(n + key_size, n)
    expected = b"".join(hmac.new(key, m, hashlib.sha256).digest() for m in messages)
    assert batch.hmac_sha256_many(key, messages) == expected


@pytest.mark.parametrize("n", SIZES)
def test_salted_leaf_hashes_many(n: int) -> None:
    key = b"K" * 32
    messages, records = random_messages(1, n), random_messages(2, n)
    salts, leaves = batch.salted_leaf_hashes_many(key, messages, pa.array(records, pa.binary()))
    expected_salts = [hmac.new(key, m, hashlib.sha256).digest() for m in messages]
    assert salts == b"".join(expected_salts)
    assert leaves == b"".join(
        ref.rfc_leaf(s + r) for s, r in zip(expected_salts, records, strict=True)
    )


def test_salted_leaf_hashes_many_needs_one_message_per_record() -> None:
    with pytest.raises(ValueError, match="one salt message per record"):
        batch.salted_leaf_hashes_many(b"k", [b"a", b"b"], [b"a"])


@pytest.mark.parametrize(
    ("run", "n"), [(1, 1), (1, 5), (2, 7), (4096, 4096 * 3 + 1), (8192, 8192 * 2), (8192, 20_001)]
)
def test_joined_subtree_levels_are_the_whole_trees(run: int, n: int) -> None:
    leaves = random_messages(n, n)
    hashes = b"".join(ref.rfc_leaf(x) for x in leaves)
    parts = [
        batch.node_levels(hashes[lo * 32 : (lo + run) * 32], threads=1) for lo in range(0, n, run)
    ]
    assert batch.join_subtree_levels(parts) == batch.node_levels(hashes)
    tree = MerkleTree.from_subtree_levels(parts)
    assert tree.size == n
    assert tree.root() == ref.mth(leaves)


def test_joined_subtree_levels_need_equal_power_of_two_runs() -> None:
    hashes = b"".join(ref.rfc_leaf(bytes([i])) for i in range(10))
    uneven = [batch.node_levels(hashes[: 3 * 32]), batch.node_levels(hashes[3 * 32 :])]
    with pytest.raises(ValueError, match="power of two"):
        batch.join_subtree_levels(uneven)
    unequal = [
        batch.node_levels(hashes[: 2 * 32]),
        batch.node_levels(hashes[2 * 32 : 6 * 32]),
        batch.node_levels(hashes[6 * 32 :]),
    ]
    with pytest.raises(ValueError, match="power of two"):
        batch.join_subtree_levels(unequal)
    assert batch.join_subtree_levels([]) == []


@pytest.mark.parametrize("n", SIZES)
def test_messages_in_pieces_hash_as_the_joined_messages(n: int) -> None:
    """RowPieces (arrays and shared bytes) hash exactly as the messages they join into."""
    firsts, seconds = random_messages(3, n), random_messages(4, n)
    words = [f'é{i}"' for i in range(n)]  # a string array among the binary ones
    pieces = batch.RowPieces(
        (b"[", pa.array(firsts, pa.binary()), b"\x00", pa.array(words), pa.array(seconds), b"]")
    )
    joined = [
        b"[" + a + b"\x00" + w.encode() + b + b"]"
        for a, w, b in zip(firsts, words, seconds, strict=True)
    ]
    assert len(pieces) == n
    assert pieces.joined().to_pylist() == joined
    assert batch.sha256_many(b"\x01", pieces) == batch.sha256_many(b"\x01", joined)
    assert batch.hmac_sha256_many(b"k", pieces) == batch.hmac_sha256_many(b"k", joined)
    salts, leaves = batch.salted_leaf_hashes_many(b"k", pieces, pieces)
    assert (salts, leaves) == batch.salted_leaf_hashes_many(b"k", joined, joined)
    assert leaves == b"".join(
        ref.rfc_leaf(salts[32 * i : 32 * i + 32] + joined[i]) for i in range(n)
    )


def test_null_messages_are_refused_on_both_paths() -> None:
    for n in (3, batch.VECTOR_THRESHOLD):
        messages = pa.array([b"a"] * (n - 1) + [None], pa.binary())
        with pytest.raises((ValueError, TypeError)):
            batch.sha256_many(b"", messages)
