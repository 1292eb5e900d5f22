"""Record and entry proofs (docs/formats.md §8): reading, parsing, building and serializing.

Parsing is strict, so that a malformed proof is told apart from one that does
not verify: the text is I-JSON (no duplicate keys, no lone surrogates, numbers
that are IEEE doubles, bounded size and nesting), every field is present with
the right JSON type, hashes are lowercase hex of 32 bytes, and every Merkle
proof has exactly the length its (index, size) needs (RFC 9162 §2.1.3).
"""

from __future__ import annotations

__all__ = [
    "ENTRY_PROOF_FIELDS",
    "ENTRY_PROOF_TYPE",
    "MAX_PROOF_BYTES",
    "MAX_PROOF_HASHES",
    "RECORD_PROOF_FIELDS",
    "RECORD_PROOF_TYPE",
    "EntryProof",
    "InclusionProver",
    "RecordProof",
    "build_entry_proof",
    "build_record_proof",
    "parse_entry_proof",
    "parse_proof",
    "parse_record_proof",
    "read_proof_file",
]

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from anchoring.checkpoint import Checkpoint, TlogProof
from anchoring.errors import MalformedError, NoteFormatError, ProofFormatError
from anchoring.ijson import check_json_value, load_i_json
from anchoring.merkle.shape import inclusion_proof_length
from anchoring.note import parse_note

RECORD_PROOF_TYPE = "trialproof/record-proof/v1"
#: The fields of a record proof besides ``type`` (docs/formats.md §8).
RECORD_PROOF_FIELDS = (
    "record", "salt", "leaf_index", "dataset_size", "dataset_proof", "manifest",
    "log_index", "log_size", "log_proof", "checkpoint", "anchors",
)
ENTRY_PROOF_TYPE = "trialproof/entry-proof/v1"
#: The fields of an entry proof besides ``type`` (docs/formats.md §8).
ENTRY_PROOF_FIELDS = ("entry", "log_index", "log_size", "log_proof", "checkpoint", "anchors")
#: A tree of 2**63 leaves needs at most 63 hashes in a proof.
MAX_PROOF_HASHES = 63
MAX_PROOF_BYTES = 16 << 20
_MAX_INDEX = (1 << 63) - 1
_HEX32 = re.compile(r"[0-9a-f]{64}")


def _hash(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise ProofFormatError(f"{where} must be 64 lowercase hex digits (a 32-byte hash)")
    return bytes.fromhex(value)


def _hashes(value: Any, where: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise ProofFormatError(f"{where} must be a list of hex hashes")
    if len(value) > MAX_PROOF_HASHES:
        raise ProofFormatError(f"{where} has {len(value)} hashes; at most {MAX_PROOF_HASHES}")
    return tuple(_hash(h, f"{where}[{i}]") for i, h in enumerate(value))


def _count(value: Any, where: str) -> int:
    # An integral double (2.0) is an integer, as in JSON Schema.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INDEX:
        raise ProofFormatError(f"{where} must be an integer in 0..2**63-1")
    return value


def _path(
    index: Any, size: Any, hashes: Any, names: tuple[str, str, str]
) -> tuple[int, int, tuple[bytes, ...]]:
    """An inclusion proof's (index, size, hashes), with the length (index, size) needs."""
    index_name, size_name, proof_name = names
    index, size = _count(index, index_name), _count(size, size_name)
    if size == 0:
        raise ProofFormatError(f"{size_name} must be at least 1")
    if index >= size:
        raise ProofFormatError(f"{index_name} {index} is not below {size_name} {size}")
    proof = _hashes(hashes, proof_name)
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofFormatError(
            f"{proof_name} has {len(proof)} hashes; ({index_name} {index}, {size_name} {size}) "
            f"needs {expected} (RFC 9162 §2.1.3)"
        )
    return index, size, proof


def _checkpoint(value: Any) -> str:
    if not isinstance(value, str):
        raise ProofFormatError("checkpoint must be the signed note text")
    try:
        Checkpoint.from_body(parse_note(value).text)
    except NoteFormatError as exc:
        raise ProofFormatError(f"checkpoint: {exc}") from None
    return value


def _anchors(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise ProofFormatError("anchors must be a list of receipt objects")
    for i, receipt in enumerate(value):
        if not isinstance(receipt, dict) or not isinstance(receipt.get("type"), str):
            raise ProofFormatError(f"anchors[{i}] must be a receipt object with a string type")
    return tuple(value)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProofFormatError(f"{where} must be a JSON object")
    return value


class _LogPart:
    """What record and entry proofs share: the entry's place in the log, a checkpoint."""

    log_index: int
    log_size: int
    log_proof: tuple[bytes, ...]
    checkpoint: str
    anchors: tuple[dict[str, Any], ...]

    def to_json_object(self) -> dict[str, Any]:
        raise NotImplementedError

    def _log_json(self) -> dict[str, Any]:
        """The log part's JSON members (docs/formats.md §8), after the proof's own."""
        return {
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


@dataclass(frozen=True)
class RecordProof(_LogPart):
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
            **self._log_json(),
        }


@dataclass(frozen=True)
class EntryProof(_LogPart):
    """Everything needed to check one log entry (a version manifest, a registered
    document ...) offline against a signed checkpoint: docs/formats.md §8, steps 2-4."""

    entry: dict[str, Any]
    log_index: int
    log_size: int
    log_proof: tuple[bytes, ...]
    checkpoint: str
    anchors: tuple[dict[str, Any], ...] = field(default=())

    def to_json_object(self) -> dict[str, Any]:
        return {
            "type": ENTRY_PROOF_TYPE,
            "entry": self.entry,
            **self._log_json(),
        }



def read_proof_file(path: str | os.PathLike[str]) -> bytes:
    """Read a proof file, never more than :data:`MAX_PROOF_BYTES` + 1 bytes of it: a
    larger file (or a device such as /dev/zero) is refused before it fills memory."""
    with open(path, "rb") as file:
        data = file.read(MAX_PROOF_BYTES + 1)
    if len(data) > MAX_PROOF_BYTES:
        raise ProofFormatError(f"proof is larger than {MAX_PROOF_BYTES} bytes")
    return data


def _load(data: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(data, str | bytes):
        if len(data) > MAX_PROOF_BYTES:
            raise ProofFormatError(f"proof is larger than {MAX_PROOF_BYTES} bytes")
        try:
            obj: Any = load_i_json(data)
        except MalformedError as exc:
            raise ProofFormatError(f"proof: {exc}") from None
    else:
        obj = dict(data)
        try:
            check_json_value(obj)
        except MalformedError as exc:
            raise ProofFormatError(f"proof: {exc}") from None
    return _object(obj, "proof")


def _fields(proof: Mapping[str, Any], proof_type: str, names: tuple[str, ...]) -> None:
    if proof.get("type") != proof_type:
        raise ProofFormatError(f'proof "type" must be "{proof_type}"')
    missing = [name for name in names if name not in proof]
    if missing:
        raise ProofFormatError(f"proof is missing {', '.join(missing)}")


def parse_record_proof(data: str | bytes | Mapping[str, Any]) -> RecordProof:
    """Parse a record proof, raising :class:`ProofFormatError` on any malformation."""
    return _record_proof(_load(data))


def _record_proof(proof: dict[str, Any]) -> RecordProof:
    _fields(proof, RECORD_PROOF_TYPE, RECORD_PROOF_FIELDS)
    leaf_index, dataset_size, dataset_proof = _path(
        proof["leaf_index"],
        proof["dataset_size"],
        proof["dataset_proof"],
        ("leaf_index", "dataset_size", "dataset_proof"),
    )
    log_index, log_size, log_proof = _path(
        proof["log_index"], proof["log_size"], proof["log_proof"],
        ("log_index", "log_size", "log_proof"),
    )
    return RecordProof(
        record=_object(proof["record"], "record"),
        salt=_hash(proof["salt"], "salt"),
        leaf_index=leaf_index,
        dataset_size=dataset_size,
        dataset_proof=dataset_proof,
        manifest=_object(proof["manifest"], "manifest"),
        log_index=log_index,
        log_size=log_size,
        log_proof=log_proof,
        checkpoint=_checkpoint(proof["checkpoint"]),
        anchors=_anchors(proof["anchors"]),
    )


def parse_entry_proof(data: str | bytes | Mapping[str, Any]) -> EntryProof:
    """Parse an entry proof, raising :class:`ProofFormatError` on any malformation."""
    return _entry_proof(_load(data))


def _entry_proof(proof: dict[str, Any]) -> EntryProof:
    _fields(proof, ENTRY_PROOF_TYPE, ENTRY_PROOF_FIELDS)
    entry = _object(proof["entry"], "entry")
    if not isinstance(entry.get("type"), str) or not entry["type"]:
        raise ProofFormatError('entry must have a "type" string (docs/formats.md §11)')
    log_index, log_size, log_proof = _path(
        proof["log_index"], proof["log_size"], proof["log_proof"],
        ("log_index", "log_size", "log_proof"),
    )
    return EntryProof(
        entry=entry,
        log_index=log_index,
        log_size=log_size,
        log_proof=log_proof,
        checkpoint=_checkpoint(proof["checkpoint"]),
        anchors=_anchors(proof["anchors"]),
    )


def parse_proof(data: str | bytes | Mapping[str, Any]) -> RecordProof | EntryProof:
    """Parse a record or an entry proof, whichever its ``type`` says."""
    proof = _load(data)
    kind = proof.get("type")
    if kind == RECORD_PROOF_TYPE:
        return _record_proof(proof)
    if kind == ENTRY_PROOF_TYPE:
        return _entry_proof(proof)
    raise ProofFormatError(f'proof "type" must be "{RECORD_PROOF_TYPE}" or "{ENTRY_PROOF_TYPE}"')


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


def build_entry_proof(
    *,
    entry: dict[str, Any],
    log: InclusionProver,
    log_index: int,
    checkpoint: str,
    anchors: tuple[dict[str, Any], ...] = (),
) -> EntryProof:
    """Assemble an entry proof against a signed checkpoint (whose size fixes the log proof).
    ``entry`` is the object whose RFC 8785 bytes are the log leaf's input."""
    signed = Checkpoint.from_body(parse_note(checkpoint).text)
    return EntryProof(
        entry=entry,
        log_index=log_index,
        log_size=signed.size,
        log_proof=tuple(log.inclusion_proof(log_index, signed.size)),
        checkpoint=checkpoint,
        anchors=anchors,
    )
