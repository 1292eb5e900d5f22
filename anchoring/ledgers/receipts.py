"""Offline checks of anchor receipts: does a receipt commit to a given checkpoint?

Standard library only, so :mod:`anchoring.verify` can use it anywhere. Each
receipt type the verifier knows has one entry in :data:`OFFLINE_CHECKS`: how to
check its fields, how to check what it commits to, and whether it is an
independent anchor. Receipts of other types are reported as not checked
(docs/formats.md §8, step 4).
"""

from __future__ import annotations

__all__ = [
    "LOCAL_RECEIPT_TYPE",
    "OFFLINE_CHECKS",
    "ReceiptCheck",
    "ReceiptKind",
    "check_local_receipt",
    "check_local_receipt_format",
    "is_rfc3339",
    "local_entry_hash",
]

import datetime as dt
import hashlib
import hmac
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anchoring.canonical import canonical_json
from anchoring.checkpoint import Checkpoint
from anchoring.errors import ReceiptFormatError, VerificationError
from anchoring.ledgers.ethereum import (
    ETHEREUM_RECEIPT_TYPE,
    check_ethereum_receipt,
    check_ethereum_receipt_format,
)
from anchoring.ledgers.tsa import (
    RFC3161_RECEIPT_TYPE,
    check_rfc3161_receipt,
    check_rfc3161_receipt_format,
)
from anchoring.merkle.hasher import is_hex_hash
from anchoring.note import parse_note

LOCAL_RECEIPT_TYPE = "trialproof/local-ledger/v1"
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))"
)
_MAX_INDEX = (1 << 63) - 1

#: Checks one receipt against the checkpoint it anchors and that checkpoint's signed note
#: text; raises :class:`VerificationError` when the receipt does not commit to it.
ReceiptCheck = Callable[[Mapping[str, Any], Checkpoint, str], None]


@dataclass(frozen=True)
class ReceiptKind:
    """How the offline verifier treats one receipt ``type``.

    ``check`` raises :class:`VerificationError` when the receipt does not commit
    to the checkpoint (or :class:`ReceiptFormatError` on a malformed field).
    ``independent`` is true only for a ledger outside the log operator's control
    whose receipts ``check`` verifies cryptographically against that ledger; a receipt counts as an
    independent anchor only through this flag, never through what its own fields
    claim. ``proves`` says in a few words what a receipt that passes shows.
    ``check_format``, when given, raises :class:`ReceiptFormatError` on a missing
    or malformed field, and runs before any verification step, so that such a
    proof is reported malformed whatever else is wrong with it.
    """

    check: ReceiptCheck
    independent: bool
    proves: str | Callable[[Mapping[str, Any]], str]
    check_format: Callable[[Mapping[str, Any]], None] | None = None

    def describe(self, receipt: Mapping[str, Any]) -> str:
        """What this receipt, once checked, shows."""
        return self.proves(receipt) if callable(self.proves) else self.proves


def is_rfc3339(value: Any) -> bool:
    """Whether ``value`` is an RFC 3339 date-time string (§5.6) naming a real instant."""
    if not isinstance(value, str):
        return False
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        # A leap second (:60) is valid RFC 3339; datetime cannot hold it.
        dt.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    offset_hours, offset_minutes = match.group(9), match.group(10)
    return second <= 60 and (
        offset_hours is None or (int(offset_hours) <= 23 and int(offset_minutes) <= 59)
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INDEX


def local_entry_hash(receipt: Mapping[str, Any]) -> str:
    """SHA-256 of the receipt's RFC 8785 bytes without ``entry_hash`` (and without the
    optional later-checkpoint fields a record proof may attach)."""
    body = {
        k: v
        for k, v in receipt.items()
        if k not in ("entry_hash", "checkpoint", "consistency_proof")
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def check_local_receipt_format(receipt: Mapping[str, Any]) -> None:
    """Raise :class:`ReceiptFormatError` unless every field of a local-ledger receipt has
    its form (schemas/formats/local-receipt.schema.json)."""
    problems = [
        name
        for name, ok in (
            ("ledger", isinstance(receipt.get("ledger"), str) and bool(receipt["ledger"])),
            ("origin", isinstance(receipt.get("origin"), str) and bool(receipt["origin"])),
            ("index", _is_count(receipt.get("index"))),
            ("size", _is_count(receipt.get("size"))),
            ("root", is_hex_hash(receipt.get("root"))),
            ("checkpoint_sha256", is_hex_hash(receipt.get("checkpoint_sha256"))),
            ("previous",
             receipt.get("previous", 0) is None or is_hex_hash(receipt.get("previous"))),
            ("anchored_at", is_rfc3339(receipt.get("anchored_at"))),
            ("entry_hash", is_hex_hash(receipt.get("entry_hash"))),
        )
        if not ok
    ]
    if problems:
        raise ReceiptFormatError(
            f"local receipt has a missing or malformed {', '.join(problems)} (sizes and "
            "indices are non-negative integers, hashes 64 lowercase hex digits, "
            "anchored_at an RFC 3339 time)"
        )
    later = receipt.get("checkpoint")
    if later is not None and not isinstance(later, str):
        raise ReceiptFormatError("local receipt checkpoint must be signed note text")
    hashes = receipt.get("consistency_proof")
    if hashes is not None and (
        not isinstance(hashes, list) or len(hashes) > 63 or not all(is_hex_hash(h) for h in hashes)
    ):
        raise ReceiptFormatError("local receipt consistency_proof must be a list of hex hashes")


def check_local_receipt(receipt: Mapping[str, Any], checkpoint: Checkpoint, note: str) -> None:
    """Raise unless a local-ledger receipt commits to ``checkpoint``.

    Offline this shows the receipt is intact and names this checkpoint; that the
    ledger really holds it, chained to its predecessors, needs the ledger
    (:meth:`anchoring._internal.ledgers.local.LocalLedger.verify`). Either way the ledger
    is the log operator's own: the receipt is self-asserted.
    """
    check_local_receipt_format(receipt)
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


#: The receipt types the offline verifier knows, by ``type``. A new ledger registers
#: its receipts here with one entry. Offline, a chain receipt or a time-stamp only shows
#: that it commits to the checkpoint: whether the transaction is on the chain, or the
#: TSA is one to trust, needs the chain or a CA (:func:`anchoring.ledgers.policy.receipt_kinds`),
#: so neither counts as independent here.
OFFLINE_CHECKS: dict[str, ReceiptKind] = {
    LOCAL_RECEIPT_TYPE: ReceiptKind(
        check=check_local_receipt,
        independent=False,
        proves="self-asserted (local ledger, not independent)",
        check_format=check_local_receipt_format,
    ),
    ETHEREUM_RECEIPT_TYPE: ReceiptKind(
        check=check_ethereum_receipt,
        independent=False,
        proves=lambda r: (
            f"ethereum chain {r.get('chain_id')}, block {r.get('block_number')}, transaction "
            f"{r.get('tx_hash')}: its payload commits to the checkpoint; not checked on the "
            "chain (give --online --rpc URL)"
        ),
        check_format=check_ethereum_receipt_format,
    ),
}
# Checking a time-stamp token needs rfc3161-client, which the verifier-only install lacks:
# there such receipts are reported as not checked, as receipts of unknown types are.
if importlib.util.find_spec("rfc3161_client") is not None:
    OFFLINE_CHECKS[RFC3161_RECEIPT_TYPE] = ReceiptKind(
        check=check_rfc3161_receipt,
        independent=False,
        proves=lambda r: (
            f"RFC 3161 time-stamp at {r.get('gen_time')}: the token covers the checkpoint; "
            "the TSA is not trusted (give --tsa-ca FILE)"
        ),
        check_format=check_rfc3161_receipt_format,
    )

