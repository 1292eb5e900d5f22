"""Checking a document in hand against an entry proof of its registration.

The entry proof (docs/formats.md §8, ``trialproof/entry-proof/v1``) is verified
by :mod:`anchoring.verify`; this adds what a reviewer asks next: is it this
document, and since when has it provably existed?
"""

from __future__ import annotations

__all__ = ["first_anchored", "verify_document_proof"]

from collections.abc import Mapping, Sequence
from typing import Any

from anchoring.errors import VerificationError
from anchoring.note import Verifier

#: Receipt types whose time someone other than the log operator attests, and its field.
INDEPENDENT_TIME_FIELDS = {
    "trialproof/rfc3161/v1": "gen_time",
    "trialproof/ethereum/v1": "block_time",
}
LOCAL_RECEIPT_TYPE = "trialproof/local-ledger/v1"


def first_anchored(receipts: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The proven time among receipts already checked: the earliest independent time (a TSA's
    genTime, a block time), else the local ledger's time marked not independent."""
    independent = []
    for receipt in receipts:
        field = INDEPENDENT_TIME_FIELDS.get(str(receipt.get("type")))
        value = receipt.get(field) if field else None
        if isinstance(value, str):
            independent.append({"time": value, "ledger": receipt["type"], "independent": True})
    if independent:
        return min(independent, key=lambda t: t["time"])
    for receipt in receipts:
        value = receipt.get("anchored_at")
        if receipt.get("type") == LOCAL_RECEIPT_TYPE and isinstance(value, str):
            return {"time": value, "ledger": "local", "independent": False}
    return None


def verify_document_proof(
    data: bytes, sha256: str, trusted: Sequence[Verifier]
) -> dict[str, Any]:
    """Verify an entry proof and that its entry registers the document hashing to
    ``sha256``. Raises :class:`~anchoring.errors.VerificationError` otherwise."""
    from anchoring.record_proof import parse_entry_proof
    from anchoring.verify import verify_entry_proof

    proof = parse_entry_proof(data)
    verified = verify_entry_proof(proof, trusted)
    checked = [proof.anchors[r.index] for r in verified.log.receipts if r.checked]
    entry = proof.entry
    if entry.get("type") != "trialproof/document/v1":
        raise VerificationError(f"the proof is for a {entry.get('type')!r} entry, not a document")
    if entry.get("sha256") != sha256:
        raise VerificationError("the proof registers another document (its sha256 differs)")
    return {
        "verified": True,
        "entry": entry,
        "log_index": proof.log_index,
        "log_size": proof.log_size,
        "first_anchored": first_anchored(checked),
    }
