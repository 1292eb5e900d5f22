"""RFC 9162 §2.1 Merkle trees: hashing, proof shapes, a level-keeping tree, and verification."""

from anchoring.merkle.hasher import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from anchoring.merkle.shape import (
    consistency_proof_length,
    consistency_ranges,
    inclusion_proof_length,
    inclusion_ranges,
)
from anchoring.merkle.verify import (
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof_length",
    "consistency_ranges",
    "inclusion_proof_length",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]


def __getattr__(name: str) -> object:
    # The tree builder pulls in DataFusion lazily; verification must not need it.
    if name == "MerkleTree":
        from anchoring.merkle.tree import MerkleTree

        return MerkleTree
    raise AttributeError(name)
