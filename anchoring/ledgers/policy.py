"""What a verifier may demand of a proof's anchors beyond the offline receipt checks.

- a witness quorum: K of the given witness keys cosigned the checkpoint (C2SP
  tlog-cosignature), else the step ``witness`` fails;
- chain receipts confirmed on the chain itself, over raw JSON-RPC;
- time-stamp receipts (RFC 3161) chaining to a trusted CA.

Standard library and ``cryptography`` only (RFC 3161 checks also need rfc3161-client).
"""

from __future__ import annotations

__all__ = ["check_anchor_policies"]

from collections.abc import Sequence
from pathlib import Path

from anchoring.bundle import RecordProof
from anchoring.note import Verifier


def check_anchor_policies(
    proof: RecordProof,
    witnesses: Sequence[Verifier] = (),
    witness_threshold: int | None = None,
    rpc_urls: Sequence[str] = (),
    tsa_ca: Path | None = None,
) -> None:
    """Raise :class:`~anchoring.errors.BundleVerificationError` naming the step that fails."""
    if witness_threshold is not None:
        from anchoring.ledgers.witness import check_witness_policy

        check_witness_policy(proof.checkpoint, witnesses, witness_threshold)
    if rpc_urls:
        from anchoring.ledgers.ethereum import verify_receipts_online

        verify_receipts_online(proof.anchors, rpc_urls)
    if tsa_ca is not None:
        from anchoring.ledgers.tsa import verify_tsa_receipts

        verify_tsa_receipts(proof.anchors, proof.checkpoint, tsa_ca)
