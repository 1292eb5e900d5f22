"""Cross-checks with independent Merkle implementations on the same inputs.

* pymerkle 7 (RFC 9162 mode, i.e. with the 0x00/0x01 prefixes): roots, inclusion
  and consistency proofs must agree with ours, each verified by the other side.
* merkletools 1.0.3 (no domain separation): same tree *shape* once the prefixes
  are removed, and a demonstration of the second-preimage forgery it accepts and
  our verifier rejects.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import rfc9162_reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from anchoring._internal.tree import MerkleTree
from anchoring.errors import ProofShapeError, RootMismatchError
from anchoring.merkle import (
    consistency_ranges,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

try:
    import pymerkle
except ImportError:  # pragma: no cover - a pinned dev dependency
    pymerkle = None

with warnings.catch_warnings():
    # merkletools tries `import sha3` (pysha3) at import time and warns without it.
    warnings.simplefilter("ignore")
    try:
        import merkletools
    except ImportError:  # pragma: no cover - installed by the Makefile
        merkletools = None

needs_pymerkle = pytest.mark.skipif(
    pymerkle is None, reason="pymerkle 7 (a pinned dev dependency) is not installed"
)
needs_merkletools = pytest.mark.skipif(
    merkletools is None,
    reason="merkletools 1.0.3 is not installed (uv pip install --no-deps merkletools==1.0.3)",
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def plain_node(left: bytes, right: bytes) -> bytes:
    """An interior node *without* the RFC 9162 0x01 prefix, as merkletools hashes it."""
    return sha256(left + right)


def make_leaves(seed: int, n: int) -> list[bytes]:
    return [
        sha256(seed.to_bytes(8, "big") + i.to_bytes(8, "big"))[: i % 29] + bytes([i % 251])
        for i in range(n)
    ]


# -- pymerkle ---------------------------------------------------------------------------


def pymerkle_tree(leaves: list[bytes]) -> Any:
    """A pymerkle in-memory tree in its default (RFC 9162, prefixed) mode."""
    tree = pymerkle.InmemoryTree.init_from_entries(leaves, algorithm="sha256")
    assert tree.security, "pymerkle must run with domain separation to be comparable"
    return tree


def pymerkle_consistency_as_ours(proof: Any, old_size: int, new_size: int) -> list[bytes]:
    """Convert a pymerkle ConsistencyProof into an RFC 9162 PROOF(old, D[new]) hash list.

    pymerkle's path is not PROOF-shaped: it always starts with a base hash and,
    where the old size equals the RFC split point, it descends into the right
    subtree leaf by leaf. Its hashes still partition [0, new) into subtrees of
    the same tree, at least as finely as RFC 9162's, so every RFC range can be
    rebuilt from them with the RFC split.
    """
    from pymerkle.core import _consistency_path_layout  # pinned: pymerkle==7.0.0

    _, _, ranges = _consistency_path_layout(old_size, new_size)
    by_range: dict[tuple[int, int], bytes] = dict(zip(ranges, proof.path, strict=True))

    def range_hash(lo: int, hi: int) -> bytes:
        if (lo, hi) in by_range:
            return by_range[(lo, hi)]
        k = ref.split(hi - lo)
        return ref.rfc_node(range_hash(lo, lo + k), range_hash(lo + k, hi))

    return [range_hash(lo, hi) for lo, hi in consistency_ranges(old_size, new_size)]


@needs_pymerkle
@settings(max_examples=25)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 300), data=st.data())
def test_pymerkle_roots_and_proofs_agree(seed: int, n: int, data: st.DataObject) -> None:
    """Same leaves, same roots for every size; pymerkle's proofs verify with our verifier
    (after conversion) and ours verify with pymerkle's verifier."""
    leaves = make_leaves(seed, n)
    ours = MerkleTree.from_leaf_inputs(leaves)
    theirs = pymerkle_tree(leaves)
    assert [theirs.get_root(s) for s in range(n + 1)] == [ours.root(s) for s in range(n + 1)]

    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), max_size=8))
    for a, s in [*pairs, (n - 1, n), (0, n)]:
        # Inclusion: pymerkle counts leaves from 1; its path is [leaf, siblings...].
        i = a % s
        their_inc = theirs.prove_inclusion(i + 1, s)
        assert their_inc.path[0] == ours.leaf_hash(i)
        assert their_inc.path[1:] == ours.inclusion_proof(i, s)
        verify_inclusion(i, s, their_inc.path[0], their_inc.path[1:], theirs.get_root(s))
        mine = pymerkle.InclusionProof(
            "sha256",
            True,
            s,
            i + 1,
            their_inc.rule,
            [ours.leaf_hash(i), *ours.inclusion_proof(i, s)],
        )
        pymerkle.verify_inclusion(ours.leaf_hash(i), ours.root(s), mine, index=i + 1, size=s)

        # Consistency: verify theirs with pymerkle against our roots, convert, and
        # verify the converted proof (and ours) with our verifier against their roots.
        m = a % s + 1
        their_con = theirs.prove_consistency(m, s)
        pymerkle.verify_consistency(
            ours.root(m), ours.root(s), their_con, prior_size=m, later_size=s
        )
        converted = pymerkle_consistency_as_ours(their_con, m, s)
        assert converted == ours.consistency_proof(m, s)
        verify_consistency(m, s, theirs.get_root(m), theirs.get_root(s), converted)


@needs_pymerkle
def test_pymerkle_detects_our_bad_roots() -> None:
    """The pymerkle verifier is not vacuous here: it rejects our proof against a wrong root."""
    leaves = make_leaves(1, 11)
    ours = MerkleTree.from_leaf_inputs(leaves)
    theirs = pymerkle_tree(leaves)
    proof = theirs.prove_consistency(4, 11)
    with pytest.raises(pymerkle.InvalidProof):
        pymerkle.verify_consistency(ours.root(4), ours.root(10), proof)


@needs_pymerkle
def test_pymerkle_large_tree_roots_agree() -> None:
    """A deterministic larger tree (past pymerkle's subroot-cache threshold of 128)."""
    leaves = make_leaves(2, 2500)
    ours = MerkleTree.from_leaf_inputs(leaves)
    theirs = pymerkle_tree(leaves)
    for s in (1, 127, 128, 129, 1024, 1025, 2047, 2048, 2049, 2500):
        assert theirs.get_root(s) == ours.root(s)
    for m in (1, 128, 1000, 2048, 2499):
        converted = pymerkle_consistency_as_ours(theirs.prove_consistency(m, 2500), m, 2500)
        assert converted == ours.consistency_proof(m)


# -- merkletools ------------------------------------------------------------------------


def merkletools_tree(leaf_hashes: list[bytes]) -> Any:
    """merkletools over already-hashed leaves (it takes hex, and hashes nodes as H(l || r))."""
    tree = merkletools.MerkleTools(hash_type="sha256")
    tree.add_leaf([h.hex() for h in leaf_hashes])
    tree.make_tree()
    return tree


def unprefixed(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a reference function with SHA-256 and no domain separation (merkletools' hashing)."""
    return fn(*args, leaf=sha256, node=plain_node)


@needs_merkletools
@pytest.mark.parametrize("n", [*range(1, 70), 127, 128, 129, 255, 256, 257, 1000])
def test_merkletools_same_shape_without_prefixes(n: int) -> None:
    """With the prefixes removed, merkletools builds exactly the RFC 9162 tree at every size.

    merkletools pairs nodes bottom-up and promotes a lone last node unchanged to
    the next level; the RFC splits at the largest power of two below n. Both put
    the same aligned perfect subtrees together, so roots and audit paths agree
    for every n, not only for powers of two. Proof lengths agree with our shape
    module, i.e. with the tree our MerkleTree builds with the prefixes.
    """
    leaves = make_leaves(n, n)
    tree = merkletools_tree([sha256(x) for x in leaves])
    assert tree.get_merkle_root() == unprefixed(ref.mth, leaves).hex()
    for i in sorted({0, 1, n // 2, n - 2, n - 1} & set(range(n))):
        steps = tree.get_proof(i)
        hashes = [bytes.fromhex(next(iter(step.values()))) for step in steps]
        assert hashes == unprefixed(ref.path, i, leaves)
        assert len(steps) == inclusion_proof_length(i, n)
        assert tree.validate_proof(steps, sha256(leaves[i]).hex(), tree.get_merkle_root())


@needs_merkletools
def test_merkletools_differs_from_rfc9162_with_prefixes() -> None:
    """Sanity: the shapes agree, the hashes do not; merkletools is not RFC 9162 itself."""
    leaves = make_leaves(3, 5)
    tree = merkletools_tree([sha256(x) for x in leaves])
    assert bytes.fromhex(tree.get_merkle_root()) != MerkleTree.from_leaf_inputs(leaves).root()


@needs_merkletools
def test_second_preimage_forgery_merkletools_accepts_we_reject() -> None:
    """A 64-byte "record" made of two child hashes passes as a leaf in merkletools.

    Without domain separation, the interior node over leaves 0 and 1 is
    H(L0 || L1), which is also the leaf hash of the record L0 || L1. So that
    record, which was never logged, "proves" inclusion as leaf 0 of a 2-leaf
    tree with the real root. RFC 9162 hashes leaves as H(0x00 || d) and nodes as
    H(0x01 || l || r), so our verifier rejects the same forgery.
    """
    records = [
        b"patient-001,arm A",
        b"patient-002,arm B",
        b"patient-003,arm A",
        b"patient-004,arm B",
    ]

    # merkletools: leaves are H(record), nodes H(l || r).
    plain = [sha256(r) for r in records]
    mt = merkletools_tree(plain)
    mt_root = mt.get_merkle_root()
    forged = plain[0] + plain[1]
    assert forged not in records and len(forged) == 64
    forged_proof = [{"right": plain_node(plain[2], plain[3]).hex()}]
    assert mt.validate_proof(forged_proof, sha256(forged).hex(), mt_root)  # accepted!

    # Ours: the same construction over our tree.
    tree = MerkleTree.from_leaf_inputs(records)
    left, right = tree.node(0, 0), tree.node(0, 1)
    forged = left + right
    assert node_hash(left, right) == tree.node(1, 0)  # it is the interior node's preimage...
    assert leaf_hash(forged) != tree.node(1, 0)  # ...but hashed as a leaf it is not the node
    with pytest.raises(RootMismatchError):
        verify_inclusion(0, 2, leaf_hash(forged), [tree.node(1, 1)], tree.root())
    # Claiming the real size instead needs a proof of the right length, and fails too.
    with pytest.raises(ProofShapeError):
        verify_inclusion(0, 4, leaf_hash(forged), [tree.node(1, 1)], tree.root())
    with pytest.raises(RootMismatchError):
        verify_inclusion(0, 4, leaf_hash(forged), [right, tree.node(1, 1)], tree.root())
    # Even with the node prefix smuggled into the record, the leaf prefix keeps it apart.
    with pytest.raises(RootMismatchError):
        verify_inclusion(0, 2, leaf_hash(b"\x01" + forged), [tree.node(1, 1)], tree.root())
