"""Verification of RFC 9162 inclusion and consistency proofs.

The path through the tree is worked out from (index, size) alone; nothing in
the proof says which side a hash goes on. Preconditions are checked before any
hashing: the index is in range, every hash is 32 bytes, and the proof has
exactly the length its (index, size) requires.
"""

from __future__ import annotations

__all__ = [
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

import hmac
from collections.abc import Sequence

from anchoring.errors import ProofShapeError, RootMismatchError
from anchoring.merkle.hasher import check_hash, node_hash
from anchoring.merkle.shape import consistency_proof_length, inclusion_proof_length


def _check_proof(proof: Sequence[bytes], expected_length: int, what: str) -> list[bytes]:
    if len(proof) != expected_length:
        raise ProofShapeError(
            f"{what} has {len(proof)} hashes, but its index and size need {expected_length}"
        )
    return [check_hash(h, f"{what} hash {i}") for i, h in enumerate(proof)]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2).

    ``leaf`` is the leaf *hash*. Raises :class:`ProofShapeError` when
    ``index >= size`` or the proof has the wrong length.
    """
    hashes = _check_proof(proof, inclusion_proof_length(index, size), "inclusion proof")
    computed = check_hash(leaf, "leaf hash")
    fn, sn = index, size - 1
    for sibling in hashes:
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable once the length matched; kept as a guard on the algorithm
        raise ProofShapeError("inclusion proof ended before reaching the root")
    return computed


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise unless ``proof`` puts leaf hash ``leaf`` at ``index`` of the tree ``(size, root)``."""
    expected = check_hash(root, "root")
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if not hmac.compare_digest(computed, expected):
        raise RootMismatchError(expected, computed)


def root_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> bytes:
    """Check ``proof`` against ``old_root`` and return the new root it implies (RFC 9162 §2.1.4.2).

    Preconditions: 0 < old_size <= new_size (a proof from the empty tree is
    refused: it would prove nothing). Raises :class:`RootMismatchError` when
    the proof does not reproduce ``old_root``.
    """
    hashes = _check_proof(proof, consistency_proof_length(old_size, new_size), "consistency proof")
    old = check_hash(old_root, "old root")
    if old_size == new_size:
        return old
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the seed
        hashes.insert(0, old)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = hashes[0]
    for c in hashes[1:]:
        if fn & 1 or fn == sn:
            old_computed = node_hash(c, old_computed)
            new_computed = node_hash(c, new_computed)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofShapeError("consistency proof ended before reaching the root")
    if not hmac.compare_digest(old_computed, old):
        raise RootMismatchError(old, old_computed, "old root")
    return new_computed


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise unless ``proof`` shows the tree ``new_root`` extends the tree ``old_root``."""
    expected = check_hash(new_root, "new root")
    computed = root_from_consistency_proof(old_size, new_size, old_root, proof)
    if not hmac.compare_digest(computed, expected):
        raise RootMismatchError(expected, computed, "new root")
