"""Build real dataset versions and record proofs for tests, without the ingest pipeline."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from anchoring._internal.log import TransparencyLog
from anchoring._internal.tree import MerkleTree
from anchoring.canonical import SALT_SCHEME, canonical_json, leaf_input, record_salt
from anchoring.manifest import MANIFEST_TYPE, manifest_leaf_input
from anchoring.note import Signer
from anchoring.record_proof import RecordProof, build_record_proof

ORIGIN = "trials.example.org/log"


@dataclass
class BuiltDataset:
    log: TransparencyLog
    signer: Signer
    records: list[dict[str, Any]]
    salts: list[bytes]
    tree: MerkleTree
    manifest: dict[str, Any]
    log_index: int

    def record_proof(self, leaf_index: int) -> RecordProof:
        return build_record_proof(
            record=self.records[leaf_index],
            salt=self.salts[leaf_index],
            leaf_index=leaf_index,
            dataset_tree=self.tree,
            dataset_size=self.tree.size,
            manifest=self.manifest,
            log=self.log,
            log_index=self.log_index,
            checkpoint=self.log.sign_checkpoint(self.signer),
        )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sample_records(rows: int) -> list[dict[str, Any]]:
    return [
        {
            "USUBJID": f"01-701-{1000 + i}",
            "AGE": 60 + i % 30,
            "WEIGHT": 70.5 + i / 4,
            "RFSTDTC": (dt.date(2014, 1, 1) + dt.timedelta(days=i)).isoformat(),
            "SEX": "F" if i % 2 else "M",
            "ARM": None if i % 5 == 0 else "Placebo",
        }
        for i in range(rows)
    ]


def build_dataset(
    log: TransparencyLog,
    signer: Signer,
    salt_key: bytes,
    trial: str = "CDISCPILOT01",
    dataset: str = "dm",
    rows: int = 10,
) -> BuiltDataset:
    """Commit one dataset version by hand: salted canonical leaves, tree, manifest, log entry."""
    records = sample_records(rows)
    latest = log.latest_for_key(f"{trial}/{dataset}")
    version = 1 if latest is None else (latest.key_seq or 0) + 1
    salts = [
        record_salt(salt_key, trial, dataset, [r["USUBJID"]], version=version) for r in records
    ]
    tree = MerkleTree.from_leaf_inputs(
        [leaf_input(s, canonical_json(r)) for s, r in zip(salts, records, strict=True)]
    )
    manifest: dict[str, Any] = {}

    def make(previous: Any) -> bytes:
        manifest.update(
            {
                "type": MANIFEST_TYPE,
                "trial": trial,
                "dataset": dataset,
                "version": version,
                "contract": {"name": dataset, "sha256": _sha("contract")},
                "source": {"name": f"{dataset}.csv", "sha256": _sha(f"source{rows}"), "bytes": 100},
                "records": rows,
                "root": tree.root().hex(),
                "previous": None if previous is None else previous.leaf_hash.hex(),
                "validation": {"success": True, "report_sha256": _sha("report")},
                "ingested_at": "2026-11-29T12:00:00Z",
                "salt_scheme": SALT_SCHEME,
            }
        )
        return manifest_leaf_input(manifest)

    entry = log.append_keyed(f"{trial}/{dataset}", make)
    return BuiltDataset(log, signer, records, salts, tree, manifest, entry.index)
