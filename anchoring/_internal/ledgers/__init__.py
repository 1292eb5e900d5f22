"""Ledger clients: they submit signed checkpoints and keep what the ledger answers.

Each implements :class:`anchoring.ledgers.Ledger`; the offline checks of the receipts
they return live in :mod:`anchoring.ledgers.receipts`, which a verifier can import alone.

- :mod:`anchoring._internal.ledgers.local`: the embedded default, an append-only,
  hash-chained ledger kept in the log's own database. It shows the whole flow on one
  machine; it is **not** an external anchor, since whoever controls the log database
  controls it too.
"""

__all__: list[str] = []
