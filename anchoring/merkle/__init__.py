"""RFC 9162 §2.1 Merkle trees: hashing, proof shapes and verification.

The tree builder is producer side: :mod:`anchoring._internal.tree`.
"""

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
