"""trialproof's cryptographic core: RFC 9162 Merkle trees, RFC 8785 canonical records,
C2SP signed notes and checkpoints, the transparency log, record proofs and their verifier.

Verification (:mod:`anchoring.verify`) needs only the standard library and
``cryptography``; the log (:mod:`anchoring._internal.log`) loads only when used. The
producer side (the tree builder, the log database, the ledger clients) is in
:mod:`anchoring._internal`, which is not public API.
"""

import typing

from anchoring.canonical import canonical_json, canonical_value, leaf_input, record_salt
from anchoring.checkpoint import Checkpoint, TlogProof, open_checkpoint, parse_tlog_proof
from anchoring.errors import (
    AnchoringError,
    CanonicalizationError,
    InvalidHashError,
    KeyFormatError,
    LogConsistencyError,
    LogError,
    MalformedError,
    NoteFormatError,
    ProofFormatError,
    ProofShapeError,
    ProofVerificationError,
    RootMismatchError,
    SignatureError,
    VerificationError,
    VerificationStep,
)
from anchoring.manifest import MANIFEST_TYPE, check_manifest, manifest_leaf_input
from anchoring.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from anchoring.note import Signer, Verifier, open_note, parse_note, sign_note
from anchoring.record_proof import RECORD_PROOF_TYPE, RecordProof, parse_record_proof

if typing.TYPE_CHECKING:
    from anchoring.verify import verify_record_proof

__all__ = [
    "EMPTY_ROOT",
    "MANIFEST_TYPE",
    "RECORD_PROOF_TYPE",
    "AnchoringError",
    "CanonicalizationError",
    "Checkpoint",
    "InvalidHashError",
    "KeyFormatError",
    "LogConsistencyError",
    "LogError",
    "MalformedError",
    "NoteFormatError",
    "ProofFormatError",
    "ProofShapeError",
    "ProofVerificationError",
    "RecordProof",
    "RootMismatchError",
    "SignatureError",
    "Signer",
    "TlogProof",
    "TransparencyLog",
    "VerificationError",
    "VerificationStep",
    "Verifier",
    "canonical_json",
    "canonical_value",
    "check_manifest",
    "leaf_hash",
    "leaf_input",
    "manifest_leaf_input",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "parse_record_proof",
    "parse_tlog_proof",
    "record_salt",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
    "verify_record_proof",
]


def __getattr__(name: str) -> object:
    # Heavy parts load on first use, so `import anchoring.verify` stays light; the
    # verifier too, so that `python -m anchoring.verify` runs it once, as __main__.
    if name == "verify_record_proof":
        from anchoring.verify import verify_record_proof

        return verify_record_proof
    if name == "TransparencyLog":
        from anchoring._internal.log import TransparencyLog

        return TransparencyLog
    raise AttributeError(f"module 'anchoring' has no attribute {name!r}")
