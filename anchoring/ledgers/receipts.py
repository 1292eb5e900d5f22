"""Offline checks of anchor receipts: does a receipt commit to a given checkpoint?

Standard library only, so :mod:`anchoring.verify` can use it anywhere. Each
receipt type has one check, registered in :data:`OFFLINE_CHECKS`.
"""

from __future__ import annotations

__all__ = ["LOCAL_RECEIPT_TYPE", "OFFLINE_CHECKS", "check_local_receipt", "local_entry_hash"]

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

from anchoring.canonical import canonical_json
from anchoring.checkpoint import Checkpoint
from anchoring.errors import VerificationError
from anchoring.ledgers.ethereum import ETHEREUM_RECEIPT_TYPE, check_ethereum_receipt
from anchoring.ledgers.tsa import RFC3161_RECEIPT_TYPE, check_rfc3161_receipt
from anchoring.note import parse_note

LOCAL_RECEIPT_TYPE = "trialproof/local-ledger/v1"
_HEX32 = re.compile(r"[0-9a-f]{64}")


def local_entry_hash(receipt: Mapping[str, Any]) -> str:
    """SHA-256 of the receipt's RFC 8785 bytes without ``entry_hash`` (and without the
    optional later-checkpoint fields a record proof may attach)."""
    body = {
        k: v
        for k, v in receipt.items()
        if k not in ("entry_hash", "checkpoint", "consistency_proof")
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def check_local_receipt(receipt: Mapping[str, Any], checkpoint: Checkpoint, note: str) -> None:
    """Raise :class:`VerificationError` unless a local-ledger receipt commits to ``checkpoint``.

    Offline this shows the receipt is intact and names this checkpoint; that the
    ledger really holds it, chained to its predecessors, needs the ledger
    (:meth:`anchoring.ledgers.local.LocalLedger.verify`).
    """
    for name in ("origin", "root", "checkpoint_sha256", "entry_hash", "anchored_at"):
        if not isinstance(receipt.get(name), str):
            raise VerificationError(f"local receipt has no {name}")
    for name in ("index", "size"):
        value = receipt.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise VerificationError(f"local receipt has no valid {name}")
    if not hmac.compare_digest(local_entry_hash(receipt), receipt["entry_hash"]):
        raise VerificationError("local receipt was altered: its entry hash does not match")
    if (receipt["origin"], receipt["size"], receipt["root"]) != (
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root.hex(),
    ):
        raise VerificationError(
            f"local receipt anchors {receipt['origin']} size {receipt['size']}, "
            f"not this checkpoint (size {checkpoint.size})"
        )
    body = parse_note(note).text.encode()
    if receipt["checkpoint_sha256"] != hashlib.sha256(body).hexdigest():
        raise VerificationError("local receipt anchors a different checkpoint text")


#: Offline check per receipt ``type``: (receipt, checkpoint, signed note text) -> None or raise.
OFFLINE_CHECKS: dict[str, Callable[[Mapping[str, Any], Checkpoint, str], None]] = {
    LOCAL_RECEIPT_TYPE: check_local_receipt,
    ETHEREUM_RECEIPT_TYPE: check_ethereum_receipt,
    RFC3161_RECEIPT_TYPE: check_rfc3161_receipt,
}
