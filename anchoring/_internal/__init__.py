"""The producer side of anchoring: what builds and stores proofs, not what checks them.

Nothing here is public API, and a verifier never imports it:

- :mod:`anchoring._internal.tree`: the Merkle tree builder that keeps every level, and its
  file format;
- :mod:`anchoring._internal.log`: the transparency log's database (SQLite or PostgreSQL,
  over DB-API);
- :mod:`anchoring._internal.ledgers`: the ledger clients that anchor checkpoints, and
  :mod:`anchoring._internal.witness_service`, the witness a regulator runs.

The public surface (errors, canonical, note, checkpoint, manifest, record proof, verify,
``merkle`` and ``ledgers``' receipt checks) needs only the standard library and
``cryptography``. None of anchoring imports pyarrow, numpy, DataFusion or pandas:
vectorized hashing belongs to the pipeline, which hands its hasher to the tree builder.
"""

__all__: list[str] = []
