"""What a verifier may demand of a proof's anchors beyond the offline receipt checks.

- chain receipts checked on the chain itself, over raw JSON-RPC: they then count as
  independent anchors;
- time-stamp receipts (RFC 3161) chaining to a trusted CA: they then count as
  independent anchors, and their genTime as a proven time;
- a witness quorum: K of the given witness keys cosigned the checkpoint (C2SP
  tlog-cosignature), else the step ``witness`` fails.

Standard library and ``cryptography`` only (RFC 3161 checks also need rfc3161-client).
"""

from __future__ import annotations

__all__ = ["AnchorDemands", "check_demands", "receipt_kinds"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchoring.checkpoint import Checkpoint
from anchoring.errors import ProofVerificationError, VerificationError, VerificationStep
from anchoring.ledgers.ethereum import (
    ETHEREUM_RECEIPT_TYPE,
    JsonRpc,
    check_ethereum_receipt,
    check_ethereum_receipt_format,
    check_receipt_online,
)
from anchoring.ledgers.receipts import OFFLINE_CHECKS, ReceiptKind
from anchoring.ledgers.tsa import (
    RFC3161_RECEIPT_TYPE,
    check_rfc3161_receipt,
    check_rfc3161_receipt_format,
    load_ca_file,
)
from anchoring.note import Verifier


@dataclass(frozen=True)
class AnchorDemands:
    """A verifier's policy on anchors: ``rpc_urls`` to check chain receipts on their
    chains, ``tsa_ca`` to trust time-stamps, ``witness_threshold`` of ``witnesses``."""

    rpc_urls: Sequence[str] = ()
    tsa_ca: Path | None = None
    witnesses: Sequence[Verifier] = field(default_factory=tuple)
    witness_threshold: int | None = None


def _online_kind(rpc_urls: Sequence[str]) -> ReceiptKind:
    chains: dict[int, JsonRpc] = {}

    def rpc_for(chain_id: int) -> JsonRpc:
        if not chains:
            for url in rpc_urls:
                rpc = JsonRpc(url)
                answer = rpc.call("eth_chainId")
                try:
                    chains[int(str(answer), 16)] = rpc
                except ValueError:
                    raise VerificationError(f"{url} answered eth_chainId with "
                                            "something that is not a chain ID") from None
        if chain_id not in chains:
            raise VerificationError(f"no --rpc serves chain {chain_id}")
        return chains[chain_id]

    def check(receipt: Mapping[str, Any], checkpoint: Checkpoint, note: str) -> None:
        check_ethereum_receipt(receipt, checkpoint, note)
        check_receipt_online(receipt, rpc_for(int(receipt["chain_id"])))

    return ReceiptKind(
        check=check,
        independent=True,
        proves=lambda r: (
            f"ethereum chain {r.get('chain_id')}, block {r.get('block_number')}, transaction "
            f"{r.get('tx_hash')}: on the chain, canonical and confirmed (checked online)"
        ),
        check_format=check_ethereum_receipt_format,
    )


def _trusted_tsa_kind(ca_file: Path) -> ReceiptKind:
    roots = load_ca_file(ca_file)

    def check(receipt: Mapping[str, Any], checkpoint: Checkpoint, note: str) -> None:
        check_rfc3161_receipt(receipt, checkpoint, note, roots)

    return ReceiptKind(
        check=check,
        independent=True,
        proves=lambda r: (
            f"RFC 3161 time-stamp at {r.get('gen_time')} by a TSA that chains to the trusted CA"
        ),
        check_format=check_rfc3161_receipt_format,
    )


def receipt_kinds(demands: AnchorDemands) -> dict[str, ReceiptKind]:
    """The receipt checks for a verification under ``demands``: the offline ones, with
    chain receipts checked online and time-stamps against the CA where asked."""
    kinds = dict(OFFLINE_CHECKS)
    if demands.rpc_urls:
        kinds[ETHEREUM_RECEIPT_TYPE] = _online_kind(demands.rpc_urls)
    if demands.tsa_ca is not None:
        kinds[RFC3161_RECEIPT_TYPE] = _trusted_tsa_kind(demands.tsa_ca)
    return kinds


def check_demands(
    demands: AnchorDemands, checkpoint_note: str, anchors: Sequence[Mapping[str, Any]]
) -> None:
    """After the receipts were checked: a proof asked to be checked online or against a
    TSA's CA must carry such a receipt, and the witness quorum must have cosigned.
    Raises :class:`ProofVerificationError` naming the step (``anchor`` or ``witness``)."""
    types = {str(a.get("type")) for a in anchors}
    if demands.rpc_urls and ETHEREUM_RECEIPT_TYPE not in types:
        raise ProofVerificationError(
            VerificationStep.ANCHOR, "the proof carries no ethereum receipt to check online")
    if demands.tsa_ca is not None and RFC3161_RECEIPT_TYPE not in types:
        raise ProofVerificationError(
            VerificationStep.ANCHOR, "the proof carries no RFC 3161 time-stamp receipt")
    if demands.witness_threshold is not None:
        from anchoring.ledgers.witness import check_witness_policy

        check_witness_policy(checkpoint_note, demands.witnesses, demands.witness_threshold)
