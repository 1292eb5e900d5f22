"""The bulk hashes of :mod:`pipeline.hashing` against hashlib/hmac, one message at a time,
and the trees its :class:`VectorizedHasher` builds against the default (hashlib) ones.

Sizes straddle ``VECTOR_THRESHOLD`` so that both the plain loop and the
DataFusion path run; messages are random bytes (not UTF-8), of varied lengths,
including empty ones and ones longer than a SHA-256 block.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from typing import Any

import pyarrow as pa
import pytest

from anchoring._internal.tree import MerkleTree, join_subtree_levels, node_levels
from anchoring.merkle.hasher import node_hash
from pipeline import hashing
from pipeline.hashing import VectorizedHasher

VECTORIZED = VectorizedHasher()


def rfc_leaf(leaf_input: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 || d), written out here."""
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def random_messages(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice((0, 1, 31, 55, 56, 63, 64, 65, 119, 200))) for _ in range(n)]


THRESHOLD = hashing.VECTOR_THRESHOLD
SIZES = [1, THRESHOLD - 1, THRESHOLD, 3 * THRESHOLD + 7]


@pytest.mark.parametrize("n", SIZES)
def test_sha256_many_is_a_prefixed_sha256_per_message(n: int) -> None:
    messages = random_messages(n, n)
    expected = b"".join(hashlib.sha256(b"\x07ab" + m).digest() for m in messages)
    assert hashing.sha256_many(b"\x07ab", messages) == expected
    assert hashing.sha256_many(b"\x07ab", pa.array(messages, pa.binary()), threads=1) == expected
    assert hashing.sha256_many(b"\x07ab", pa.array(messages, pa.large_binary())) == expected
    same_width = [m.ljust(200, b"\xff") for m in messages]
    fixed = pa.array(same_width, pa.binary(200))
    expected_fixed = b"".join(hashlib.sha256(m).digest() for m in same_width)
    assert hashing.sha256_many(b"", fixed) == expected_fixed


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("key_size", [0, 32, 64, 65, 100])
def test_hmac_sha256_many_is_rfc_2104_per_message(n: int, key_size: int) -> None:
    key = random.Random(key_size).randbytes(key_size)
    messages = random_messages(n + key_size, n)
    expected = b"".join(hmac.new(key, m, hashlib.sha256).digest() for m in messages)
    assert hashing.hmac_sha256_many(key, messages) == expected


@pytest.mark.parametrize("n", SIZES)
def test_salted_leaf_hashes_many(n: int) -> None:
    key = b"K" * 32
    messages, records = random_messages(1, n), random_messages(2, n)
    salts, leaves = hashing.salted_leaf_hashes_many(key, messages, pa.array(records, pa.binary()))
    expected_salts = [hmac.new(key, m, hashlib.sha256).digest() for m in messages]
    assert salts == b"".join(expected_salts)
    assert leaves == b"".join(
        rfc_leaf(s + r) for s, r in zip(expected_salts, records, strict=True)
    )


def test_salted_leaf_hashes_many_needs_one_message_per_record() -> None:
    with pytest.raises(ValueError, match="one salt message per record"):
        hashing.salted_leaf_hashes_many(b"k", [b"a", b"b"], [b"a"])


@pytest.mark.parametrize(
    ("run", "n"), [(1, 1), (1, 5), (2, 7), (4096, 4096 * 3 + 1), (8192, 8192 * 2), (8192, 20_001)]
)
def test_joined_subtree_levels_are_the_whole_trees(run: int, n: int) -> None:
    leaves = random_messages(n, n)
    hashes = b"".join(rfc_leaf(x) for x in leaves)
    one_thread = VectorizedHasher(threads=1)
    parts = [
        node_levels(hashes[lo * 32 : (lo + run) * 32], one_thread) for lo in range(0, n, run)
    ]
    assert join_subtree_levels(parts, VECTORIZED) == node_levels(hashes, VECTORIZED)
    assert node_levels(hashes, VECTORIZED) == node_levels(hashes)
    tree = MerkleTree.from_subtree_levels(parts, VECTORIZED)
    assert tree.size == n
    assert tree.root() == MerkleTree.from_leaf_inputs(leaves).root()


@pytest.mark.parametrize("n", SIZES)
def test_messages_in_pieces_hash_as_the_joined_messages(n: int) -> None:
    """RowPieces (arrays and shared bytes) hash exactly as the messages they join into."""
    firsts, seconds = random_messages(3, n), random_messages(4, n)
    words = [f'é{i}"' for i in range(n)]  # a string array among the binary ones
    pieces = hashing.RowPieces(
        (b"[", pa.array(firsts, pa.binary()), b"\x00", pa.array(words), pa.array(seconds), b"]")
    )
    joined = [
        b"[" + a + b"\x00" + w.encode() + b + b"]"
        for a, w, b in zip(firsts, words, seconds, strict=True)
    ]
    assert len(pieces) == n
    assert pieces.joined().to_pylist() == joined
    assert hashing.sha256_many(b"\x01", pieces) == hashing.sha256_many(b"\x01", joined)
    assert hashing.hmac_sha256_many(b"k", pieces) == hashing.hmac_sha256_many(b"k", joined)
    salts, leaves = hashing.salted_leaf_hashes_many(b"k", pieces, pieces)
    assert (salts, leaves) == hashing.salted_leaf_hashes_many(b"k", joined, joined)
    assert leaves == b"".join(
        rfc_leaf(salts[32 * i : 32 * i + 32] + joined[i]) for i in range(n)
    )


def test_null_messages_are_refused_on_both_paths() -> None:
    for n in (3, hashing.VECTOR_THRESHOLD):
        messages = pa.array([b"a"] * (n - 1) + [None], pa.binary())
        with pytest.raises((ValueError, TypeError)):
            hashing.sha256_many(b"", messages)


# -- trees built with the vectorized hasher ---------------------------------------------------


def seeded_leaves(seed: int, n: int) -> list[bytes]:
    """n distinct leaf inputs of varied length (0..40 bytes), cheap to make for big n."""
    out = []
    for i in range(n):
        digest = hashlib.sha256(seed.to_bytes(8, "big") + i.to_bytes(8, "big")).digest()
        out.append(i.to_bytes(4, "big") + digest[: i % 37])
    return out


@pytest.mark.parametrize("n", [2048, 2049, 4097, 8191, 10000, 16385])
def test_vectorized_build_matches_the_plain_one(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Trees of >= VECTOR_THRESHOLD leaves hash through DataFusion; the result must equal
    the default hashlib build and the per-hash loop, level by level."""
    assert n >= hashing.VECTOR_THRESHOLD
    calls: list[int] = []
    real_digests = hashing._digests

    def spy(
        engine: Any, expression: Any, columns: dict[str, Any], threads: int | None = None
    ) -> bytes:
        calls.append(len(columns["m"]))
        digests: bytes = real_digests(engine, expression, columns, threads)
        return digests

    monkeypatch.setattr(hashing, "_digests", spy)
    leaves = seeded_leaves(n, n)
    tree = MerkleTree.from_leaf_inputs(leaves, VECTORIZED)
    assert calls and calls[0] == n, "the vectorized path was not taken"

    plain_tree = MerkleTree.from_leaf_inputs(leaves)
    assert tree.leaf_hashes() == b"".join(rfc_leaf(x) for x in leaves)
    plain = [tree.leaf_hashes()[i : i + 32] for i in range(0, 32 * n, 32)]
    for level in range(1, n.bit_length()):  # each level against pairs hashed one by one
        plain = [node_hash(plain[i], plain[i + 1]) for i in range(0, len(plain) - 1, 2)]
        assert tree.nodes([(level, i) for i in range(len(plain))]) == plain
    assert MerkleTree.from_leaf_hashes(tree.leaf_hashes(), VECTORIZED).root() == tree.root()
    assert tree.root() == plain_tree.root()
    for i in (0, 1, n // 2, n - 2, n - 1):
        assert tree.inclusion_proof(i) == plain_tree.inclusion_proof(i)
    for m in (1, 2047, 2048, n - 1):
        assert tree.consistency_proof(m) == plain_tree.consistency_proof(m)


def test_vectorized_build_accepts_a_polars_series() -> None:
    """A polars Binary Series (how the pipeline hands leaves over) builds the same tree."""
    import polars as pl

    leaves = seeded_leaves(5, 5000)
    series = pl.Series("leaf", leaves, dtype=pl.Binary)
    plain = MerkleTree.from_leaf_inputs(leaves)
    assert MerkleTree.from_leaf_inputs(series, VECTORIZED).root() == plain.root()
    assert (MerkleTree.from_leaf_inputs(series[:100], VECTORIZED).root()
            == MerkleTree.from_leaf_inputs(leaves[:100]).root())
