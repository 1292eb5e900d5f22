"""The append-only transparency log of dataset-version manifests (docs/formats.md §6).

One RFC 9162 Merkle tree (RFC 9162 §2.1) over every manifest in the order it
was appended, in three modules:

* :mod:`~anchoring._internal.log.frontier`: the Merkle side, the right frontier
  that appends grow and the proofs read from stored perfect nodes;
* :mod:`~anchoring._internal.log.database`: the database side, connections,
  tables and the locking that serializes appends (SQLite or PostgreSQL);
* :mod:`~anchoring._internal.log.transparency_log`: :class:`TransparencyLog`,
  composing them.

This package imports only the standard library and ``anchoring`` (and
``psycopg2`` for a PostgreSQL log).
"""

from __future__ import annotations

__all__ = ["LogEntry", "TransparencyLog"]

from anchoring._internal.log.transparency_log import LogEntry, TransparencyLog
