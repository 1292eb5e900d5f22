"""Property tests: MerkleTree and the verifiers against the naive RFC 9162 reference.

The reference (``rfc9162_reference``) is the RFC's recursion written out on
lists; nothing here trusts :mod:`anchoring.merkle.shape` to say what a proof
should look like.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import rfc9162_reference as ref
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from anchoring._internal.tree import MerkleTree, join_subtree_levels, node_levels
from anchoring.errors import (
    AnchoringError,
    MalformedError,
    ProofShapeError,
    RootMismatchError,
)
from anchoring.merkle import (
    EMPTY_ROOT,
    consistency_proof_length,
    inclusion_proof_length,
    verify_consistency,
    verify_inclusion,
)
from anchoring.merkle.hasher import node_hash

# -- inputs ------------------------------------------------------------------------


def seeded_leaves(seed: int, n: int) -> list[bytes]:
    """n distinct leaf inputs of varied length (0..40 bytes), cheap to make for big n.

    Distinct leaves matter for the mutation tests: with two equal leaves, "x is
    at index j" can be true for two indices and a moved index would rightly verify.
    """
    out = []
    for i in range(n):
        digest = hashlib.sha256(seed.to_bytes(8, "big") + i.to_bytes(8, "big")).digest()
        out.append(b"" if i == 0 and seed % 3 == 0 else i.to_bytes(4, "big") + digest[: i % 37])
    return out


@st.composite
def small_trees(draw: st.DrawFn, max_size: int = 200) -> list[bytes]:
    """Up to ``max_size`` distinct leaves: a few Hypothesis-chosen ones (empty, long, odd
    bytes) placed at a random offset, the rest seeded. Plain ``st.lists`` would mostly
    give trees of 1-5 leaves."""
    n = draw(st.integers(1, max_size))
    leaves = seeded_leaves(draw(st.integers(0, 2**32)), n)
    chosen = draw(st.lists(st.binary(max_size=70), max_size=min(n, 6), unique=True))
    at = draw(st.integers(0, n - len(chosen)))
    leaves[at : at + len(chosen)] = chosen
    assume(len(set(leaves)) == n)
    return leaves


small_leaves = small_trees()
#: Seeded content for trees up to ~3000 leaves: a handful of large examples.
large_trees = st.builds(
    seeded_leaves, st.integers(0, 2**32), st.integers(min_value=49, max_value=3000)
)


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# -- the formal shape of a proof, straight from the RFC recursions --------------------
#
# A verifier sees only (index, size, leaf, proof, root). Which expression over
# the leaf and the proof hashes it evaluates is fixed by (index, size) alone.
# Two (index, size) pairs that give the same expression are indistinguishable
# to *any* RFC 9162 verifier: the root does not commit to the tree size (the
# signed checkpoint does). The mutation tests use these terms to tell such
# inherent cases from real verifier bugs.

Term = Any


def inclusion_term(m: int, n: int) -> tuple[int, Term]:
    """PATH(m, D[n]) as (proof length, root expression): leaf "X", proof hash j as int j."""
    if n == 1:
        return 0, "X"
    k = ref.split(n)
    if m < k:
        count, term = inclusion_term(m, k)
        return count + 1, ("N", term, count)
    count, term = inclusion_term(m - k, n - k)
    return count + 1, ("N", count, term)


def _subproof_terms(m: int, n: int, b: bool) -> tuple[int, Term, Term]:
    """SUBPROOF(m, D[n], b) as (length, old-root expression, new-root expression)."""
    if m == n:
        return (0, "OLD", "OLD") if b else (1, 0, 0)
    k = ref.split(n)
    if m <= k:
        count, old, new = _subproof_terms(m, k, b)
        return count + 1, old, ("N", new, count)
    count, old, new = _subproof_terms(m - k, n - k, False)
    return count + 1, ("N", count, old), ("N", count, new)


def _subst_old(term: Term, old: Term) -> Term:
    if term == "OLD":
        return old
    if isinstance(term, tuple):
        return ("N", _subst_old(term[1], old), _subst_old(term[2], old))
    return term


def inclusion_indistinguishable(i: int, n: int, i2: int, n2: int) -> bool:
    """Would the inclusion proof for (i, n) also verify, unchanged, for (i2, n2)?"""
    return 0 <= i2 < n2 and inclusion_term(i, n) == inclusion_term(i2, n2)


def consistency_indistinguishable(m: int, n: int, m2: int, n2: int) -> bool:
    """Would the consistency proof for (m, n) also verify, unchanged, for (m2, n2)?

    "OLD" is the old root handed to the verifier; its true value is the old
    expression of (m, n) (an opaque atom when that proof omits it).
    """
    if not 0 < m2 <= n2:
        return False
    count, old, new = _subproof_terms(m, n, True)
    count2, old2, new2 = _subproof_terms(m2, n2, True)
    return count == count2 and _subst_old(old2, old) == old and _subst_old(new2, old) == new


def raises_anchoring_error(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
    except AnchoringError:
        return True
    return False


# -- agreement with the reference ----------------------------------------------------


def check_against_reference(
    leaves: list[bytes], tree: MerkleTree, sizes: list[int], pairs: list[tuple[int, int]]
) -> None:
    """Roots at ``sizes``; inclusion (i, s) and consistency (m, s) proofs for ``pairs``."""
    for s in sizes:
        assert tree.root(s) == ref.mth(leaves[:s])
    for a, s in pairs:
        prefix = leaves[:s]
        root = ref.mth(prefix)
        i = a % s
        proof = tree.inclusion_proof(i, s)
        assert proof == ref.path(i, prefix)
        assert len(proof) == inclusion_proof_length(i, s)
        verify_inclusion(i, s, ref.rfc_leaf(leaves[i]), proof, root)
        m = a % s + 1
        cproof = tree.consistency_proof(m, s)
        assert cproof == ref.proof(m, prefix)
        assert len(cproof) == consistency_proof_length(m, s)
        verify_consistency(m, s, ref.mth(leaves[:m]), root, cproof)


@given(leaves=small_leaves, data=st.data())
def test_small_trees_match_reference(leaves: list[bytes], data: st.DataObject) -> None:
    """Every prefix root, and random inclusion/consistency proofs, equal the RFC recursion;
    each proof verifies against the reference roots."""
    n = len(leaves)
    tree = MerkleTree.from_leaf_inputs(leaves)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), max_size=6))
    check_against_reference(leaves, tree, list(range(n + 1)), [*pairs, (n - 1, n)])


@settings(max_examples=8)
@given(leaves=large_trees, data=st.data())
def test_large_trees_match_reference(leaves: list[bytes], data: st.DataObject) -> None:
    """The same agreement for trees of up to ~3000 leaves (a handful of examples)."""
    n = len(leaves)
    tree = MerkleTree.from_leaf_inputs(leaves)
    sizes = data.draw(st.lists(st.integers(0, n), max_size=4))
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), max_size=3))
    check_against_reference(leaves, tree, [*sizes, n], [*pairs, (0, n), (n - 1, n)])


def test_all_proofs_of_small_trees_match_reference() -> None:
    """Exhaustive: every (index, size) and (old, new) pair for trees of up to 33 leaves."""
    leaves = seeded_leaves(7, 33)
    tree = MerkleTree.from_leaf_inputs(leaves)
    assert tree.root(0) == EMPTY_ROOT == ref.mth([])
    for s in range(1, 34):
        prefix = leaves[:s]
        assert tree.root(s) == ref.mth(prefix)
        for i in range(s):
            assert tree.inclusion_proof(i, s) == ref.path(i, prefix)
        for m in range(1, s + 1):
            assert tree.consistency_proof(m, s) == ref.proof(m, prefix)


# -- every single-bit mutation is caught ------------------------------------------------


def check_inclusion_mutations(leaves: list[bytes], i: int, s: int) -> None:
    tree = MerkleTree.from_leaf_inputs(leaves[:s])
    proof = tree.inclusion_proof(i, s)
    leaf = ref.rfc_leaf(leaves[i])
    root = ref.mth(leaves[:s])
    verify_inclusion(i, s, leaf, proof, root)
    for j in range(len(proof)):
        for bit in range(256):
            bad = [*proof[:j], flip(proof[j], bit), *proof[j + 1 :]]
            with pytest.raises(RootMismatchError):
                verify_inclusion(i, s, leaf, bad, root)
    for bit in range(256):
        with pytest.raises(RootMismatchError):
            verify_inclusion(i, s, flip(leaf, bit), proof, root)
        with pytest.raises(RootMismatchError):
            verify_inclusion(i, s, leaf, proof, flip(root, bit))
    for bit in range(64):
        # Out of range, or a proof of the wrong length -> ProofShapeError; else a
        # different path -> RootMismatchError. Distinct leaves: never accepted.
        with pytest.raises(AnchoringError):
            verify_inclusion(i ^ (1 << bit), s, leaf, proof, root)
        # The root does not commit to the size: a changed size verifies exactly
        # when the RFC gives it the same proof expression (see inclusion_term).
        s2 = s ^ (1 << bit)
        rejected = raises_anchoring_error(verify_inclusion, i, s2, leaf, proof, root)
        assert rejected != inclusion_indistinguishable(i, s, i, s2), (i, s, s2)


def check_consistency_mutations(leaves: list[bytes], m: int, s: int) -> None:
    tree = MerkleTree.from_leaf_inputs(leaves[:s])
    proof = tree.consistency_proof(m, s)
    old, new = ref.mth(leaves[:m]), ref.mth(leaves[:s])
    verify_consistency(m, s, old, new, proof)
    for j in range(len(proof)):
        for bit in range(256):
            bad = [*proof[:j], flip(proof[j], bit), *proof[j + 1 :]]
            with pytest.raises(RootMismatchError):
                verify_consistency(m, s, old, new, bad)
    for bit in range(256):
        with pytest.raises(RootMismatchError):
            verify_consistency(m, s, flip(old, bit), new, proof)
        with pytest.raises(RootMismatchError):
            verify_consistency(m, s, old, flip(new, bit), proof)
    for bit in range(64):
        for m2, s2 in ((m ^ (1 << bit), s), (m, s ^ (1 << bit))):
            rejected = raises_anchoring_error(verify_consistency, m2, s2, old, new, proof)
            assert rejected != consistency_indistinguishable(m, s, m2, s2), (m, s, m2, s2)


@settings(max_examples=30)
@given(leaves=small_leaves, data=st.data())
def test_inclusion_bit_flips_small(leaves: list[bytes], data: st.DataObject) -> None:
    """Flipping any bit of a proof hash, the leaf hash, the root or the index breaks an
    inclusion proof; a flipped size breaks it unless the RFC makes it indistinguishable."""
    s = data.draw(st.integers(1, len(leaves)))
    check_inclusion_mutations(leaves, data.draw(st.integers(0, s - 1)), s)


@settings(max_examples=30)
@given(leaves=small_leaves, data=st.data())
def test_consistency_bit_flips_small(leaves: list[bytes], data: st.DataObject) -> None:
    """Flipping any bit of a proof hash or either root breaks a consistency proof; a flipped
    size breaks it unless the RFC makes it indistinguishable."""
    s = data.draw(st.integers(1, len(leaves)))
    check_consistency_mutations(leaves, data.draw(st.integers(1, s)), s)


@settings(max_examples=5)
@given(leaves=large_trees, data=st.data())
def test_bit_flips_large(leaves: list[bytes], data: st.DataObject) -> None:
    """The same mutation checks on trees of up to ~3000 leaves (longer proofs)."""
    s = data.draw(st.integers(1, len(leaves)))
    check_inclusion_mutations(leaves, data.draw(st.integers(0, s - 1)), s)
    check_consistency_mutations(leaves, data.draw(st.integers(1, s)), s)


def test_index_and_old_size_flips_never_verify_exhaustively() -> None:
    """Exhaustive over trees of up to 40 leaves: a moved index or old size never verifies,
    and a moved (new) size verifies exactly when the formal model predicts it."""
    leaves = seeded_leaves(11, 40)
    roots = [ref.mth(leaves[:s]) for s in range(41)]
    for s in range(1, 41):
        for i in range(s):
            proof, leaf = ref.path(i, leaves[:s]), ref.rfc_leaf(leaves[i])
            for bit in range(7):
                assert raises_anchoring_error(
                    verify_inclusion, i ^ (1 << bit), s, leaf, proof, roots[s]
                )
                s2 = s ^ (1 << bit)
                assert raises_anchoring_error(
                    verify_inclusion, i, s2, leaf, proof, roots[s]
                ) != inclusion_indistinguishable(i, s, i, s2)
        for m in range(1, s + 1):
            proof = ref.proof(m, leaves[:s])
            for bit in range(7):
                assert raises_anchoring_error(
                    verify_consistency, m ^ (1 << bit), s, roots[m], roots[s], proof
                )
                s2 = s ^ (1 << bit)
                assert raises_anchoring_error(
                    verify_consistency, m, s2, roots[m], roots[s], proof
                ) != consistency_indistinguishable(m, s, m, s2)


def test_tree_size_is_not_committed_by_the_root() -> None:
    """Documents an RFC 9162 property the mutation tests rely on: leaf 0 of a 5-leaf tree
    has the same proof expression in a 7-leaf tree, so (0, 7) verifies against the
    5-leaf root. Only the signed checkpoint binds a size to a root."""
    leaves = seeded_leaves(3, 5)
    proof = ref.path(0, leaves)
    assert inclusion_indistinguishable(0, 5, 0, 7)
    verify_inclusion(0, 7, ref.rfc_leaf(leaves[0]), proof, ref.mth(leaves))
    assert not inclusion_indistinguishable(0, 5, 0, 4)
    with pytest.raises(ProofShapeError):
        verify_inclusion(0, 4, ref.rfc_leaf(leaves[0]), proof, ref.mth(leaves))


# -- storage -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 100, 1023, 4097])
def test_write_open_roundtrip(tmp_path: Path, n: int) -> None:
    """A tree written and mmap-opened again gives identical roots, leaves and proofs."""
    leaves = seeded_leaves(n, n)
    tree = MerkleTree.from_leaf_inputs(leaves)
    path = tmp_path / "tree.bin"
    tree.write(path)
    opened = MerkleTree.open(path)
    assert opened.size == n
    assert opened.leaf_hashes() == tree.leaf_hashes()
    assert opened.root() == tree.root() == ref.mth(leaves)
    probes = sorted({0, 1, n // 3, n // 2, n - 1} & set(range(n)))
    for s in sorted({1, 2, n // 2 + 1, n} & set(range(1, n + 1))):
        assert opened.root(s) == tree.root(s)
        for i in (p for p in probes if p < s):
            assert opened.inclusion_proof(i, s) == tree.inclusion_proof(i, s)
            assert opened.consistency_proof(i + 1, s) == tree.consistency_proof(i + 1, s)
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file was left behind"


def test_open_rejects_damaged_files(tmp_path: Path) -> None:
    """A truncated file, trailing bytes or a wrong magic are MalformedError, not garbage proofs."""
    good = tmp_path / "good.bin"
    MerkleTree.from_leaf_inputs(seeded_leaves(1, 10)).write(good)
    raw = good.read_bytes()
    for name, content in {
        "short-header": raw[:10],
        "truncated": raw[:-1],
        "trailing": raw + b"\x00",
        "magic": b"X" + raw[1:],
    }.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(MalformedError):
            MerkleTree.open(bad)


# -- large trees, built with the default (hashlib) hasher ---------------------------------------


@pytest.mark.parametrize("n", [2048, 2049, 4097, 8191])
def test_large_build_matches_reference(n: int) -> None:
    """A tree of thousands of leaves equals the reference and the per-hash loop, level by
    level (the vectorized hasher is checked against this one in tests/pipeline)."""
    leaves = seeded_leaves(n, n)
    tree = MerkleTree.from_leaf_inputs(leaves)
    assert tree.leaf_hashes() == b"".join(ref.rfc_leaf(x) for x in leaves)
    plain = [tree.leaf_hashes()[i : i + 32] for i in range(0, 32 * n, 32)]
    for level in range(1, n.bit_length()):  # each level against pairs hashed one by one
        plain = [node_hash(plain[i], plain[i + 1]) for i in range(0, len(plain) - 1, 2)]
        assert tree.nodes([(level, i) for i in range(len(plain))]) == plain
    assert MerkleTree.from_leaf_hashes(tree.leaf_hashes()).root() == tree.root()
    assert tree.root() == ref.mth(leaves)
    for i in (0, 1, n // 2, n - 2, n - 1):
        assert tree.inclusion_proof(i) == ref.path(i, leaves)
    for m in (1, 2047, 2048, n - 1):
        assert tree.consistency_proof(m) == ref.proof(m, leaves)


def test_joined_subtree_levels_need_equal_power_of_two_runs() -> None:
    hashes = b"".join(ref.rfc_leaf(bytes([i])) for i in range(10))
    uneven = [node_levels(hashes[: 3 * 32]), node_levels(hashes[3 * 32 :])]
    with pytest.raises(ValueError, match="power of two"):
        join_subtree_levels(uneven)
    unequal = [
        node_levels(hashes[: 2 * 32]),
        node_levels(hashes[2 * 32 : 6 * 32]),
        node_levels(hashes[6 * 32 :]),
    ]
    with pytest.raises(ValueError, match="power of two"):
        join_subtree_levels(unequal)
    assert join_subtree_levels([]) == []
