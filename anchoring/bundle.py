"""The record-proof bundle (DESIGN Formats 8): parsing, building and serializing.

Parsing is strict: every field must be present with the right JSON type,
hashes must be lowercase hex of 32 bytes, and sizes are bounded, so that a
malformed bundle is told apart from one that does not verify.
"""

from __future__ import annotations

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_PROOF_HASHES",
    "RECORD_PROOF_FIELDS",
    "RECORD_PROOF_TYPE",
    "InclusionProver",
    "RecordProof",
    "build_record_proof",
    "parse_record_proof",
]

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from anchoring.checkpoint import Checkpoint, TlogProof
from anchoring.errors import BundleFormatError, NoteFormatError
from anchoring.note import parse_note

RECORD_PROOF_TYPE = "trialproof/record-proof/v1"
#: The fields of a record proof besides ``type`` (DESIGN Formats 8).
RECORD_PROOF_FIELDS = (
    "record", "salt", "leaf_index", "dataset_size", "dataset_proof", "manifest",
    "log_index", "log_size", "log_proof", "checkpoint", "anchors",
)
#: A tree of 2**63 leaves needs at most 63 hashes in a proof.
MAX_PROOF_HASHES = 63
MAX_BUNDLE_BYTES = 16 << 20
_MAX_INDEX = (1 << 63) - 1
_HEX32 = re.compile(r"[0-9a-f]{64}")


def _hash(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise BundleFormatError(f"{where} must be 64 lowercase hex digits (a 32-byte hash)")
    return bytes.fromhex(value)


def _hashes(value: Any, where: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise BundleFormatError(f"{where} must be a list of hex hashes")
    if len(value) > MAX_PROOF_HASHES:
        raise BundleFormatError(f"{where} has {len(value)} hashes; at most {MAX_PROOF_HASHES}")
    return tuple(_hash(h, f"{where}[{i}]") for i, h in enumerate(value))


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INDEX:
        raise BundleFormatError(f"{where} must be a non-negative integer")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleFormatError(f"{where} must be a JSON object")
    return value


@dataclass(frozen=True)
class RecordProof:
    """Everything needed to check one record offline against a signed checkpoint."""

    record: dict[str, Any]
    salt: bytes
    leaf_index: int
    dataset_size: int
    dataset_proof: tuple[bytes, ...]
    manifest: dict[str, Any]
    log_index: int
    log_size: int
    log_proof: tuple[bytes, ...]
    checkpoint: str
    anchors: tuple[dict[str, Any], ...] = field(default=())

    def to_json_object(self) -> dict[str, Any]:
        return {
            "type": RECORD_PROOF_TYPE,
            "record": self.record,
            "salt": self.salt.hex(),
            "leaf_index": self.leaf_index,
            "dataset_size": self.dataset_size,
            "dataset_proof": [h.hex() for h in self.dataset_proof],
            "manifest": self.manifest,
            "log_index": self.log_index,
            "log_size": self.log_size,
            "log_proof": [h.hex() for h in self.log_proof],
            "checkpoint": self.checkpoint,
            "anchors": list(self.anchors),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_object(), indent=2, ensure_ascii=False) + "\n"

    def tlog_proof(self) -> str:
        """The log part of this proof as a C2SP tlog-proof document."""
        return TlogProof(self.log_index, self.log_proof, self.checkpoint).serialize()


def parse_record_proof(data: str | bytes | Mapping[str, Any]) -> RecordProof:
    """Parse a record-proof bundle, raising :class:`BundleFormatError` on any malformation."""
    if isinstance(data, str | bytes):
        if len(data) > MAX_BUNDLE_BYTES:
            raise BundleFormatError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        try:
            obj: Any = json.loads(data, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise BundleFormatError(f"bundle is not valid JSON: {exc}") from None
    else:
        obj = dict(data)
    bundle = _object(obj, "bundle")
    if bundle.get("type") != RECORD_PROOF_TYPE:
        raise BundleFormatError(f'bundle "type" must be "{RECORD_PROOF_TYPE}"')
    required = RECORD_PROOF_FIELDS
    missing = [name for name in required if name not in bundle]
    if missing:
        raise BundleFormatError(f"bundle is missing {', '.join(missing)}")
    checkpoint = bundle["checkpoint"]
    if not isinstance(checkpoint, str):
        raise BundleFormatError("checkpoint must be the signed note text")
    try:
        Checkpoint.from_body(parse_note(checkpoint).text)
    except NoteFormatError as exc:
        raise BundleFormatError(f"checkpoint: {exc}") from None
    anchors = bundle["anchors"]
    if not isinstance(anchors, list) or not all(isinstance(a, dict) for a in anchors):
        raise BundleFormatError("anchors must be a list of receipt objects")
    return RecordProof(
        record=_object(bundle["record"], "record"),
        salt=_hash(bundle["salt"], "salt"),
        leaf_index=_count(bundle["leaf_index"], "leaf_index"),
        dataset_size=_count(bundle["dataset_size"], "dataset_size"),
        dataset_proof=_hashes(bundle["dataset_proof"], "dataset_proof"),
        manifest=_object(bundle["manifest"], "manifest"),
        log_index=_count(bundle["log_index"], "log_index"),
        log_size=_count(bundle["log_size"], "log_size"),
        log_proof=_hashes(bundle["log_proof"], "log_proof"),
        checkpoint=checkpoint,
        anchors=tuple(anchors),
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class InclusionProver(Protocol):
    """Anything that proves inclusion in an RFC 9162 tree: a MerkleTree or the log."""

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]: ...


def build_record_proof(
    *,
    record: dict[str, Any],
    salt: bytes,
    leaf_index: int,
    dataset_tree: InclusionProver,
    dataset_size: int,
    manifest: dict[str, Any],
    log: InclusionProver,
    log_index: int,
    checkpoint: str,
    anchors: tuple[dict[str, Any], ...] = (),
) -> RecordProof:
    """Assemble a record proof against a signed checkpoint (whose size fixes the log proof)."""
    signed = Checkpoint.from_body(parse_note(checkpoint).text)
    return RecordProof(
        record=record,
        salt=salt,
        leaf_index=leaf_index,
        dataset_size=dataset_size,
        dataset_proof=tuple(dataset_tree.inclusion_proof(leaf_index, dataset_size)),
        manifest=manifest,
        log_index=log_index,
        log_size=signed.size,
        log_proof=tuple(log.inclusion_proof(log_index, signed.size)),
        checkpoint=checkpoint,
        anchors=anchors,
    )
