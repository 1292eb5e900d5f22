"""What a producer gets back from an external ledger: a receipt, a pending state, or a refusal.

A receipt is *pending*, *confirmed* or *failed* (docs/architecture.md). A ledger that
cannot be reached raises :class:`LedgerUnavailable`: the anchoring stays pending
and the next run retries it. A ledger that refuses the checkpoint raises
:class:`LedgerRefused`: retrying would not help, so the anchoring is failed with
the reason. Producer side only; the offline verifier never imports this.
"""

from __future__ import annotations

__all__ = ["LedgerRefused", "LedgerUnavailable", "Submission"]

from dataclasses import dataclass, field
from typing import Any, Literal

from anchoring.errors import AnchoringError


class LedgerUnavailable(AnchoringError):
    """The ledger is down, timing out or not yet final: try again on the next run."""


class LedgerRefused(AnchoringError):
    """The ledger refused the checkpoint (or its configuration is wrong): do not retry."""


@dataclass(frozen=True)
class Submission:
    """The outcome of one submission or follow-up.

    ``receipt`` is set once confirmed (for receipt ledgers), ``note`` is the
    cosigned checkpoint note (for witnesses), and ``data`` is what a pending
    submission must remember for its follow-up (a transaction hash, say).
    """

    state: Literal["pending", "confirmed"]
    receipt: dict[str, Any] | None = None
    note: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
