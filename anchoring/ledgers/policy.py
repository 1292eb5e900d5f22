"""What a verifier may demand of a proof's anchors beyond the offline receipt checks.

- a witness quorum: K of the given witness keys cosigned the checkpoint (C2SP
  tlog-cosignature), else the step ``witness`` fails;
- chain receipts confirmed on the chain itself, over raw JSON-RPC;
- time-stamp receipts (RFC 3161) chaining to a trusted CA.

Standard library and ``cryptography`` only (RFC 3161 checks also need rfc3161-client).
"""

from __future__ import annotations

__all__ = ["check_anchor_policies", "describe_anchors"]

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def describe_anchors(anchors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One line per receipt for a verifier's report: what it is and whether it is an
    anchor independent of the log's operator (the local ledger is not)."""
    from anchoring.ledgers.ethereum import ETHEREUM_RECEIPT_TYPE
    from anchoring.ledgers.receipts import LOCAL_RECEIPT_TYPE, OFFLINE_CHECKS
    from anchoring.ledgers.tsa import RFC3161_RECEIPT_TYPE

    described = []
    for receipt in anchors:
        kind = receipt.get("type")
        if kind == LOCAL_RECEIPT_TYPE:
            label, independent = "local (not independent)", False
        elif kind == ETHEREUM_RECEIPT_TYPE:
            label = (f"ethereum chain {receipt.get('chain_id')}, block "
                     f"{receipt.get('block_number')}, transaction {receipt.get('tx_hash')}")
            independent = True
        elif kind == RFC3161_RECEIPT_TYPE:
            label, independent = f"RFC 3161 time-stamp at {receipt.get('gen_time')}", True
        else:
            label, independent = f"{kind} (not checked)", False
        described.append({"type": kind, "label": label, "independent": independent,
                          "checked": kind in OFFLINE_CHECKS})
    return described
