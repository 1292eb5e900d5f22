"""The audit's checks of external anchors: each stored receipt offline (and chain receipts
online on request), each witness cosignature on the stored note, and anchorings that
stayed pending too long.

The limit is the home config's ``anchor_pending_max_seconds`` (default one day).
"""

from __future__ import annotations

__all__ = ["DEFAULT_PENDING_MAX_SECONDS", "check_external_anchors"]

from datetime import UTC, datetime
from typing import Any

from anchoring.checkpoint import Checkpoint
from anchoring.errors import AnchoringError, VerificationError
from anchoring.ledgers.ethereum import ETHEREUM_RECEIPT_TYPE, JsonRpc, check_receipt_online
from anchoring.ledgers.receipts import OFFLINE_CHECKS
from anchoring.ledgers.tsa import RFC3161_RECEIPT_TYPE, check_rfc3161_receipt, load_ca_file
from anchoring.ledgers.witness import valid_cosigners
from anchoring.note import Verifier, parse_note
from pipeline.anchor_ledgers import anchoring_folder, pending_since, read_states
from pipeline.home import Home
from pipeline.ledger_config import ledger_specs

DEFAULT_PENDING_MAX_SECONDS = 86_400


def _check_receipt(receipt: dict[str, Any], spec: dict[str, Any] | None, note: str,
                   online: bool) -> None:
    kind = receipt.get("type")
    checkpoint = Checkpoint.from_body(parse_note(note).text)
    if kind == RFC3161_RECEIPT_TYPE and spec is not None and spec.get("ca_file"):
        check_rfc3161_receipt(receipt, checkpoint, note, load_ca_file(spec["ca_file"]))
        return
    known = OFFLINE_CHECKS.get(kind) if isinstance(kind, str) else None
    if known is None:
        raise VerificationError(f"receipt of unknown type {kind!r}")
    known.check(receipt, checkpoint, note)
    if online and kind == ETHEREUM_RECEIPT_TYPE:
        if spec is None or spec.get("type") != "ethereum":
            raise VerificationError("no ethereum ledger is configured to check it online")
        check_receipt_online(receipt, JsonRpc(spec["rpc"]))


def check_external_anchors(home: Home, size: int, note: str, receipts: dict[str, Any],
                           online: bool, now: datetime | None = None) -> list[tuple[str, str]]:
    """Problems of one anchoring, as (check, detail) pairs."""
    specs = {s["name"]: s for s in ledger_specs(home)}
    problems: list[tuple[str, str]] = []
    for name, receipt in receipts.items():
        if receipt.get("type") == "trialproof/local-ledger/v1":
            continue  # checked against the ledger itself by the caller
        try:
            _check_receipt(receipt, specs.get(name), note, online)
        except AnchoringError as exc:
            problems.append(("receipt", f"size {size}, {name}: {exc}"))
    states = read_states(anchoring_folder(home, size))
    limit = int(home.config.get("anchor_pending_max_seconds", DEFAULT_PENDING_MAX_SECONDS))
    moment = now or datetime.now(UTC)
    for name, state in states.items():
        since = pending_since(state)
        if since is not None and (moment - since).total_seconds() > limit:
            problems.append(("pending", f"size {size}, {name}: pending since "
                                        f"{state['first_attempt']} ({state.get('reason')})"))
        spec = specs.get(name)
        if state.get("state") == "confirmed" and state.get("type") == "witness" and spec:
            witness = Verifier.from_vkey(spec["vkey"])
            if not valid_cosigners(note, [witness]):
                problems.append(("witness", f"size {size}, {name}: the stored checkpoint lacks "
                                            "its valid cosignature"))
    return problems
