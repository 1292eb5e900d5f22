"""Anchor ledgers: where signed checkpoints are anchored (docs/architecture.md).

Every ledger has one small interface: ``submit(checkpoint)`` returns a
receipt, and ``verify(receipt, checkpoint)`` returns nothing or raises a
:class:`~anchoring.errors.VerificationError` saying why not.

- :mod:`anchoring.ledgers.receipts`: the offline checks of receipts, standard
  library only, for the verifier.
- The ledger clients (the embedded local ledger among them) are producer side, in
  :mod:`anchoring._internal.ledgers`.
"""

from __future__ import annotations

__all__ = ["Ledger"]

from collections.abc import Mapping
from typing import Any, Protocol


class Ledger(Protocol):
    """A place to anchor checkpoints."""

    name: str

    def submit(self, checkpoint_note: str) -> dict[str, Any]:
        """Anchor a signed checkpoint and return the receipt."""
        ...

    def verify(self, receipt: Mapping[str, Any], checkpoint_note: str) -> None:
        """Raise unless ``receipt`` anchors ``checkpoint_note`` in this ledger."""
        ...
