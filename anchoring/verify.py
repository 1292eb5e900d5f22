"""Offline verification of record and entry proofs (docs/formats.md §8).

Needs only the standard library and ``cryptography``: a regulator holding a
public key can run it anywhere, also as a program of its own::

    python -m anchoring.verify proof.json --vkey VKEY [--json] [--origin ORIGIN]
        [--require-anchor [independent]] [--contract CONTRACT]

with the exit statuses of ``trialproof verify``: 0 verified, 1 a step failed,
2 malformed input (3 an internal error).

:func:`verify_record_proof` and :func:`verify_entry_proof` return what they
verified, and raise :class:`~anchoring.errors.ProofVerificationError`, naming
the failing step, or :class:`~anchoring.errors.MalformedError` for input that is
not well formed.
"""

from __future__ import annotations

__all__ = [
    "AnchorPolicy",
    "VerifiedEntry",
    "VerifiedLogEntry",
    "VerifiedReceipt",
    "VerifiedRecord",
    "VerifierUsageError",
    "anchor_policy_and_proof",
    "demands_from_options",
    "failure_json",
    "key_columns_from_contract",
    "main",
    "read_vkeys",
    "render_text",
    "result_json",
    "verify_entry_proof",
    "verify_file",
    "verify_proof",
    "verify_record_proof",
]

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from anchoring.canonical import canonical_json, leaf_input
from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    AnchoringError,
    MalformedError,
    ProofFormatError,
    ProofVerificationError,
    VerificationError,
    VerificationStep,
)
from anchoring.ijson import load_i_json
from anchoring.ledgers.policy import AnchorDemands, check_demands, receipt_kinds
from anchoring.ledgers.receipts import OFFLINE_CHECKS, ReceiptKind
from anchoring.manifest import check_manifest, manifest_leaf_input
from anchoring.merkle.hasher import is_hex_hash, leaf_hash
from anchoring.merkle.verify import root_from_inclusion_proof, verify_consistency
from anchoring.note import ED25519, Verifier, open_note, parse_note
from anchoring.record_proof import (
    ENTRY_PROOF_TYPE,
    RECORD_PROOF_TYPE,
    EntryProof,
    RecordProof,
    parse_proof,
    read_proof_file,
)

_MAX_VKEY_FILE_BYTES = 1 << 20
_RECORD_MISMATCH = (
    "the record or its salt does not match the version's root (record leaf / dataset path)"
)
_UNKNOWN_RECEIPT = "unknown receipt type; it neither passes nor fails the proof"


class AnchorPolicy(StrEnum):
    """What ``--require-anchor`` asks of a proof's receipts (docs/formats.md §8, step 4)."""

    ANY = "any"  # at least one receipt of a known type, checked
    INDEPENDENT = "independent"  # ... from a ledger the log operator does not control


@dataclass(frozen=True)
class VerifiedReceipt:
    """One receipt of a proof and what it shows. ``checked`` is false for a receipt
    type the verifier does not know: it neither passed nor failed."""

    index: int
    type: str
    checked: bool
    independent: bool
    proves: str

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "status": "verified" if self.checked else "not checked",
            "independent": self.independent,
            "proves": self.proves,
        }


@dataclass(frozen=True)
class VerifiedLogEntry:
    """What steps 2-4 established: a log entry is in the log a trusted key signed."""

    origin: str
    log_index: int
    log_size: int
    checkpoint_root: str
    entry_leaf_hash: str
    receipts: tuple[VerifiedReceipt, ...]

    @property
    def anchored(self) -> bool:
        return any(r.checked for r in self.receipts)

    @property
    def independently_anchored(self) -> bool:
        return any(r.checked and r.independent for r in self.receipts)


@dataclass(frozen=True)
class VerifiedRecord:
    """A verified record proof: the record, where it sits, and the log entry of its version."""

    trial: str
    dataset: str
    version: int
    leaf_index: int
    dataset_size: int
    leaf_hash: str
    canonical_record: str
    record: dict[str, Any]
    contract: dict[str, Any]
    log: VerifiedLogEntry


@dataclass(frozen=True)
class VerifiedEntry:
    """A verified entry proof: the entry (by its type) and where it sits in the log."""

    entry_type: str
    canonical_entry: str
    log: VerifiedLogEntry


def _fail(
    step: VerificationStep, reason: str, hashes: dict[str, str] | None = None
) -> ProofVerificationError:
    return ProofVerificationError(step, reason, hashes)


def _inclusion_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes], what: str) -> bytes:
    try:
        return root_from_inclusion_proof(index, size, leaf, proof)
    except MalformedError as exc:  # a proof of the wrong shape: malformed, not failed
        raise ProofFormatError(f"{what}: {exc}") from None


def verify_record_proof(
    proof: RecordProof,
    trusted: Sequence[Verifier],
    receipt_checks: Mapping[str, ReceiptKind] | None = None,
    *,
    origin: str | None = None,
    require_anchor: AnchorPolicy | None = None,
) -> VerifiedRecord:
    """Verify ``proof`` against trusted log keys, step by step (docs/formats.md §8).

    1. record leaf: the leaf is SHA-256(0x00 || salt || JCS(record)) (RFC 9162 §2.1.1;
       every number canonicalized as an IEEE double, RFC 8785 §3.2.2.3);
    2. manifest: well formed, with ``records`` equal to ``dataset_size``;
    3. dataset path: its inclusion proof (RFC 9162 §2.1.3.2) yields ``manifest.root``;
    4. log path, checkpoint signature, anchor: as :func:`verify_entry_proof`, for the
       manifest's log entry.
    """
    kinds = OFFLINE_CHECKS if receipt_checks is None else receipt_checks
    _check_receipt_formats(proof.anchors, kinds)
    try:
        canonical = canonical_json(proof.record)
        record_leaf = leaf_hash(leaf_input(proof.salt, canonical))
    except AnchoringError as exc:
        raise _fail(VerificationStep.RECORD_LEAF, str(exc)) from None

    try:
        check_manifest(proof.manifest)
    except AnchoringError as exc:
        raise _fail(VerificationStep.MANIFEST, str(exc)) from None
    if proof.manifest["records"] != proof.dataset_size:
        raise _fail(
            VerificationStep.MANIFEST,
            f"manifest has {proof.manifest['records']} records, proof says {proof.dataset_size}",
        )

    dataset_root = _inclusion_root(
        proof.leaf_index, proof.dataset_size, record_leaf, proof.dataset_proof, "dataset_proof"
    )
    if dataset_root.hex() != proof.manifest["root"]:
        raise _fail(
            VerificationStep.DATASET_PATH,
            _RECORD_MISMATCH,
            {
                "leaf_hash": record_leaf.hex(),
                "expected_root": proof.manifest["root"],
                "computed_root": dataset_root.hex(),
            },
        )

    try:
        manifest_leaf = manifest_leaf_input(proof.manifest)
    except AnchoringError as exc:
        raise _fail(VerificationStep.LOG_PATH, f"manifest: {exc}") from None
    log = _verify_log_entry(
        manifest_leaf, proof.log_index, proof.log_size, proof.log_proof, proof.checkpoint,
        proof.anchors, trusted, kinds, origin, require_anchor, "manifest",
    )
    return VerifiedRecord(
        trial=proof.manifest["trial"],
        dataset=proof.manifest["dataset"],
        version=proof.manifest["version"],
        leaf_index=proof.leaf_index,
        dataset_size=proof.dataset_size,
        leaf_hash=record_leaf.hex(),
        canonical_record=canonical.decode("utf-8"),
        record=proof.record,
        contract=dict(proof.manifest["contract"]),
        log=log,
    )


def verify_entry_proof(
    proof: EntryProof,
    trusted: Sequence[Verifier],
    receipt_checks: Mapping[str, ReceiptKind] | None = None,
    *,
    origin: str | None = None,
    require_anchor: AnchorPolicy | None = None,
) -> VerifiedEntry:
    """Verify an entry proof: docs/formats.md §8, steps 2-4, for any log entry.

    - log path: the entry's leaf, SHA-256(0x00 || JCS(entry)), and ``log_proof``
      (RFC 9162 §2.1.3.2) yield the checkpoint's root, and ``log_size`` is its size;
    - checkpoint signature: a trusted key signed it (C2SP signed-note), under
      ``origin`` when one is required (C2SP tlog-checkpoint);
    - anchor: every receipt of a type in ``receipt_checks`` (default
      :data:`~anchoring.ledgers.receipts.OFFLINE_CHECKS`) commits to this checkpoint,
      or to a later signed one it carries with a consistency proof (RFC 9162
      §2.1.4.2); receipts of other types are not checked; ``require_anchor``
      then asks for a checked, or a checked independent, receipt.
    """
    kinds = OFFLINE_CHECKS if receipt_checks is None else receipt_checks
    _check_receipt_formats(proof.anchors, kinds)
    try:
        canonical = canonical_json(proof.entry)
    except AnchoringError as exc:
        raise _fail(VerificationStep.LOG_PATH, f"entry: {exc}") from None
    log = _verify_log_entry(
        canonical, proof.log_index, proof.log_size, proof.log_proof, proof.checkpoint,
        proof.anchors, trusted, kinds, origin, require_anchor, "entry",
    )
    return VerifiedEntry(str(proof.entry.get("type")), canonical.decode("utf-8"), log)


def verify_proof(
    proof: RecordProof | EntryProof,
    trusted: Sequence[Verifier],
    receipt_checks: Mapping[str, ReceiptKind] | None = None,
    *,
    origin: str | None = None,
    require_anchor: AnchorPolicy | None = None,
) -> VerifiedRecord | VerifiedEntry:
    """Verify a record or an entry proof, whichever it is."""
    if isinstance(proof, RecordProof):
        return verify_record_proof(
            proof, trusted, receipt_checks, origin=origin, require_anchor=require_anchor
        )
    return verify_entry_proof(
        proof, trusted, receipt_checks, origin=origin, require_anchor=require_anchor
    )


def _check_receipt_formats(
    anchors: Sequence[Mapping[str, Any]], kinds: Mapping[str, ReceiptKind]
) -> None:
    """Malformed receipts of known types make the proof malformed, before any step runs."""
    for i, receipt in enumerate(anchors):
        kind = kinds.get(receipt.get("type"))  # type: ignore[arg-type]
        if kind is not None and kind.check_format is not None:
            try:
                kind.check_format(receipt)
            except MalformedError as exc:
                raise ProofFormatError(f"anchors[{i}]: {exc}") from None


def _verify_log_entry(
    entry_leaf_input: bytes,
    log_index: int,
    log_size: int,
    log_proof: Sequence[bytes],
    note_text: str,
    anchors: Sequence[Mapping[str, Any]],
    trusted: Sequence[Verifier],
    kinds: Mapping[str, ReceiptKind],
    origin: str | None,
    require_anchor: AnchorPolicy | None,
    what: str,
) -> VerifiedLogEntry:
    try:
        checkpoint = Checkpoint.from_body(parse_note(note_text).text)
    except MalformedError as exc:
        raise ProofFormatError(f"checkpoint: {exc}") from None
    entry_leaf = leaf_hash(entry_leaf_input)
    log_root = _inclusion_root(log_index, log_size, entry_leaf, log_proof, "log_proof")
    if log_size != checkpoint.size:
        raise _fail(
            VerificationStep.LOG_PATH,
            f"log_size {log_size} is not the checkpoint's size {checkpoint.size}",
        )
    if log_root != checkpoint.root:
        raise _fail(
            VerificationStep.LOG_PATH,
            f"the {what} is not the log's entry {log_index}: its path does not yield the "
            "checkpoint's root (log path)",
            {
                "entry_leaf_hash": entry_leaf.hex(),
                "expected_root": checkpoint.root.hex(),
                "computed_root": log_root.hex(),
            },
        )

    try:
        _check_signed(note_text, _log_keys(trusted))
    except AnchoringError as exc:
        raise _fail(VerificationStep.CHECKPOINT_SIGNATURE, str(exc)) from None
    if origin is not None and checkpoint.origin != origin:
        raise _fail(
            VerificationStep.CHECKPOINT_SIGNATURE,
            f"the checkpoint's origin is {checkpoint.origin!r}, not the required {origin!r}",
        )

    receipts = tuple(
        _check_receipt(i, receipt, checkpoint, note_text, trusted, kinds)
        for i, receipt in enumerate(anchors)
    )
    if require_anchor is not None:
        _apply_anchor_policy(receipts, require_anchor)
    return VerifiedLogEntry(
        origin=checkpoint.origin,
        log_index=log_index,
        log_size=log_size,
        checkpoint_root=checkpoint.root.hex(),
        entry_leaf_hash=entry_leaf.hex(),
        receipts=receipts,
    )


def _check_receipt(
    index: int,
    receipt: Mapping[str, Any],
    checkpoint: Checkpoint,
    note: str,
    trusted: Sequence[Verifier],
    kinds: Mapping[str, ReceiptKind],
) -> VerifiedReceipt:
    kind_name = str(receipt.get("type"))
    kind = kinds.get(kind_name)
    if kind is None:
        return VerifiedReceipt(index, kind_name, False, False, _UNKNOWN_RECEIPT)
    try:
        anchored, anchored_note = _anchored_checkpoint(receipt, checkpoint, note, trusted)
        kind.check(receipt, anchored, anchored_note)
    except MalformedError as exc:
        raise ProofFormatError(f"anchors[{index}]: {exc}") from None
    except AnchoringError as exc:
        raise _fail(VerificationStep.ANCHOR, f"anchors[{index}]: {exc}") from None
    return VerifiedReceipt(index, kind_name, True, kind.independent, kind.describe(receipt))


def _apply_anchor_policy(receipts: Sequence[VerifiedReceipt], policy: AnchorPolicy) -> None:
    checked = [r for r in receipts if r.checked]
    unknown = len(receipts) - len(checked)
    not_checked = f"; {unknown} receipt(s) of unknown type were not checked" if unknown else ""
    if not checked:
        raise _fail(
            VerificationStep.ANCHOR, f"the proof carries no verified anchor receipt{not_checked}"
        )
    if policy is AnchorPolicy.INDEPENDENT and not any(r.independent for r in checked):
        raise _fail(
            VerificationStep.ANCHOR,
            "the proof carries no verified receipt from an independent ledger: "
            f"{len(checked)} checked receipt(s), all self-asserted{not_checked}",
        )


def _log_keys(trusted: Sequence[Verifier]) -> tuple[Verifier, ...]:
    """The trusted keys that can sign a checkpoint: Ed25519 signed-note keys (type 0x01).
    A witness's cosignature key (type 0x04, C2SP tlog-cosignature) never stands in for
    the log's signature."""
    return tuple(v for v in trusted if v.sig_type == ED25519)


@lru_cache(maxsize=64)
def _check_signed(note: str, trusted: tuple[Verifier, ...]) -> None:
    """Open a signed checkpoint once per (text, trusted keys): many proofs share one
    checkpoint, and an Ed25519 check costs more than the rest of a proof. Failures
    raise, and exceptions are never cached."""
    open_note(note, trusted)


def _anchored_checkpoint(
    receipt: Mapping[str, Any], checkpoint: Checkpoint, note: str, trusted: Sequence[Verifier]
) -> tuple[Checkpoint, str]:
    """The checkpoint a receipt commits to: the proof's own, or a later signed one that
    the receipt carries with a consistency proof from the proof's (RFC 9162 §2.1.4.2)."""
    later_note = receipt.get("checkpoint")
    if later_note is None or later_note == note:
        return checkpoint, note
    if not isinstance(later_note, str):
        raise ProofFormatError("receipt checkpoint must be signed note text")
    later = Checkpoint.from_body(open_note(later_note, _log_keys(trusted))[0].text)
    if later.origin != checkpoint.origin or later.size < checkpoint.size:
        raise VerificationError("receipt anchors a checkpoint that is not a later one of this log")
    hashes = receipt.get("consistency_proof")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise VerificationError("receipt for a later checkpoint needs its consistency_proof")
    if not all(is_hex_hash(h) for h in hashes):
        raise ProofFormatError("receipt consistency_proof hashes must be 64 lowercase hex digits")
    proof_hashes = [bytes.fromhex(h) for h in hashes]
    verify_consistency(checkpoint.size, later.size, checkpoint.root, later.root, proof_hashes)
    return later, later_note


# -- the verifier's input and output, shared by `trialproof verify` and `python -m` --------


def read_vkeys(values: Sequence[str]) -> list[Verifier]:
    """Trusted keys from vkey texts, or files of vkeys (one a line)."""
    verifiers: list[Verifier] = []
    for value in values:
        lines = [value]
        if "+" not in value and not Path(value).is_file():
            raise MalformedError(f"{value}: neither a vkey (name+keyid+base64key) nor a "
                                 "readable file of vkeys")
        if "+" not in value and Path(value).is_file():
            with open(value, "rb") as file:
                data = file.read(_MAX_VKEY_FILE_BYTES + 1)
            if len(data) > _MAX_VKEY_FILE_BYTES:
                raise MalformedError(f"{value}: a vkey file is at most 1 MiB")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedError(f"{value}: a vkey file is UTF-8 text") from None
            lines = [line for line in text.splitlines() if line.strip()]
        verifiers.extend(Verifier.from_vkey(line) for line in lines)
    return verifiers


def key_columns_from_contract(data: bytes, manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The primary-key columns of the contract a version's manifest names.

    ``data`` is the contract file (a Frictionless Table Schema); it must be the very
    contract the manifest commits to: SHA-256 of its RFC 8785 bytes equals
    ``manifest.contract.sha256`` (docs/formats.md §5).
    """
    try:
        descriptor = load_i_json(data)
    except MalformedError as exc:
        raise MalformedError(f"contract: {exc}") from None
    expected = manifest.get("contract", {}).get("sha256")
    if hashlib.sha256(canonical_json(descriptor)).hexdigest() != expected:
        raise MalformedError(
            "contract: not the contract the version's manifest names (its sha256 differs)"
        )
    key = descriptor.get("primaryKey", []) if isinstance(descriptor, dict) else None
    key = [key] if isinstance(key, str) else key
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise MalformedError('contract: "primaryKey" must be a field name or a list of them')
    return tuple(key)


def _record_key(result: VerifiedRecord, key_columns: Sequence[str] | None) -> dict[str, Any] | None:
    if not key_columns or any(column not in result.record for column in key_columns):
        return None
    return {column: result.record[column] for column in key_columns}


def _identifying_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """Without the contract, the record's columns that identify a record by CDISC naming:
    the subject (USUBJID, SUBJID) and sequence numbers (--SEQ). Shown, not relied on."""
    return {
        column: value
        for column, value in record.items()
        if column in ("USUBJID", "SUBJID") or (column.endswith("SEQ") and len(column) == 5)
    }


def _shown(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in values.items())


def _receipt_json(log: VerifiedLogEntry) -> dict[str, Any]:
    return {
        "anchors": [r.to_json() for r in log.receipts],
        "anchored": log.anchored,
        "independently_anchored": log.independently_anchored,
    }


def result_json(
    result: VerifiedRecord | VerifiedEntry, key_columns: Sequence[str] | None = None
) -> dict[str, Any]:
    """What was verified, for machines (``--json``)."""
    log = result.log
    where = {
        "log_index": log.log_index,
        "log_size": log.log_size,
        "origin": log.origin,
        "checkpoint_root": log.checkpoint_root,
        "entry_leaf_hash": log.entry_leaf_hash,
    }
    if isinstance(result, VerifiedEntry):
        return {
            "verified": True,
            "type": ENTRY_PROOF_TYPE,
            "entry_type": result.entry_type,
            "entry": json.loads(result.canonical_entry),
            "canonical_entry": result.canonical_entry,
            **where,
            **_receipt_json(log),
        }
    key = _record_key(result, key_columns)
    return {
        "verified": True,
        "type": RECORD_PROOF_TYPE,
        "trial": result.trial,
        "dataset": result.dataset,
        "version": result.version,
        "key": key,
        "key_columns": list(key_columns) if key is not None and key_columns else None,
        "identifying": _identifying_values(result.record),
        "contract": result.contract,
        "leaf_index": result.leaf_index,
        "dataset_size": result.dataset_size,
        "leaf_hash": result.leaf_hash,
        "record": json.loads(result.canonical_record),
        "canonical_record": result.canonical_record,
        **where,
        **_receipt_json(log),
    }


def _printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped: a proof's
    strings (a receipt's type, a record's values) must not be able to rewrite or hide
    what a terminal shows."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def render_text(
    result: VerifiedRecord | VerifiedEntry, key_columns: Sequence[str] | None = None
) -> str:
    """What was verified, for people: one headline, then the details."""
    log = result.log
    if isinstance(result, VerifiedEntry):
        lines = [
            f"verified: log entry {log.log_index} ({result.entry_type}) is in the log "
            f"at size {log.log_size}",
        ]
    else:
        key = _record_key(result, key_columns)
        identifying = _identifying_values(result.record)
        shown = (
            _shown(key)
            if key is not None
            else "not named by the proof; "
            + (f"identifying columns {_shown(identifying)}, " if identifying else "")
            + f"leaf index {result.leaf_index} (give --contract: the manifest names contract "
            f"{result.contract.get('name')!r}, sha256 {str(result.contract.get('sha256'))[:16]}…)"
        )
        lines = [
            f"verified: record {result.leaf_index} of {result.trial}/{result.dataset} "
            f"v{result.version} is in log entry {log.log_index} at size {log.log_size}",
            f"  trial {result.trial}, dataset {result.dataset}, version {result.version}",
            f"  record key: {shown}",
            f"  leaf {result.leaf_index} of {result.dataset_size}, leaf hash {result.leaf_hash}",
        ]
    lines.append(
        f"  checkpoint origin {log.origin}, size {log.log_size}, root {log.checkpoint_root}"
    )
    if not log.receipts:
        lines.append("  anchors: none")
    for r in log.receipts:
        status = "verified" if r.checked else "not checked"
        lines.append(f"  anchors[{r.index}] {r.type}: {status}; {r.proves}")
    if log.receipts and not log.independently_anchored:
        lines.append("  no independent anchor was verified")
    return "\n".join(_printable(line) for line in lines)


def failure_json(exc: ProofVerificationError) -> dict[str, Any]:
    """A failed step for machines: the step, the reason and the hashes that disagree."""
    return {"verified": False, "step": exc.step.value, "reason": exc.reason, **exc.hashes}


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ProofVerificationError):
        return f"verification failed at step '{exc.step.value}': {exc.reason}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class VerifierUsageError(ValueError):
    """The verifier was called with arguments it cannot use."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 through main(), in one line
        raise VerifierUsageError(message)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m anchoring.verify",
        description="Verify a trialproof record or entry proof offline. "
        "Exit 0 verified, 1 not verified, 2 malformed input.",
    )
    parser.add_argument("proof", nargs="?", help="the proof file (JSON)")
    parser.add_argument("--vkey", action="append", required=True,
                        help="a trusted log key (vkey text, or a file of vkeys); repeatable")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--origin", default=None,
                        help="require the checkpoint's origin to be this one")
    parser.add_argument("--require-anchor", nargs="?", const=AnchorPolicy.ANY.value,
                        default=None, metavar="independent",
                        help="require a verified receipt; with 'independent', one from a "
                        "ledger other than the local one")
    parser.add_argument("--contract", default=None,
                        help="the version's contract, to name the record's key columns")
    parser.add_argument("--witness", action="append", default=[],
                        help="a trusted witness's cosigning vkey (text or file); repeatable")
    parser.add_argument("--witness-threshold", type=int, default=None,
                        help="how many of the --witness keys must have cosigned (default: all)")
    parser.add_argument("--online", action="store_true",
                        help="also check chain receipts on the chain itself (needs --rpc)")
    parser.add_argument("--rpc", action="append", default=[],
                        help="a JSON-RPC URL for --online; repeatable, one per chain")
    parser.add_argument("--tsa-ca", default=None,
                        help="PEM CA file that time-stamp (RFC 3161) receipts must chain to")
    args = parser.parse_args(argv)
    args.require_anchor, args.proof = anchor_policy_and_proof(args.require_anchor, args.proof)
    return args


def anchor_policy_and_proof(
    value: str | None, proof: str | None
) -> tuple[AnchorPolicy | None, str]:
    """``--require-anchor`` takes an optional value, so a proof path written right after
    it is read as its value: give it back to the proof argument."""
    if value is not None and value not in {p.value for p in AnchorPolicy}:
        if proof is not None:
            raise VerifierUsageError(
                f"--require-anchor takes 'independent' or nothing, not {value!r}"
            )
        value, proof = AnchorPolicy.ANY.value, value
    if proof is None:
        raise VerifierUsageError("give the proof file to verify")
    return (AnchorPolicy(value) if value is not None else None), proof


def demands_from_options(
    witnesses: Sequence[Verifier] = (),
    witness_threshold: int | None = None,
    online: bool = False,
    rpc_urls: Sequence[str] = (),
    tsa_ca: str | os.PathLike[str] | None = None,
) -> AnchorDemands:
    """The anchor demands that ``--witness``, ``--witness-threshold``, ``--online
    --rpc`` and ``--tsa-ca`` ask for; :class:`VerifierUsageError` if they do not fit."""
    if witnesses and witness_threshold is None:
        witness_threshold = len(witnesses)
    if witness_threshold is not None and not 1 <= witness_threshold <= len(witnesses):
        raise VerifierUsageError(
            f"--witness-threshold must be between 1 and the {len(witnesses)} --witness key(s)"
        )
    if online and not rpc_urls:
        raise VerifierUsageError("--online needs --rpc URL")
    return AnchorDemands(
        rpc_urls=tuple(rpc_urls) if online else (),
        tsa_ca=None if tsa_ca is None else Path(tsa_ca),
        witnesses=tuple(witnesses),
        witness_threshold=witness_threshold,
    )


def verify_file(
    path: str | os.PathLike[str],
    trusted: Sequence[Verifier],
    *,
    origin: str | None = None,
    require_anchor: AnchorPolicy | None = None,
    contract: str | os.PathLike[str] | None = None,
    demands: AnchorDemands | None = None,
) -> tuple[VerifiedRecord | VerifiedEntry, tuple[str, ...] | None]:
    """Read, parse and verify a proof file; with ``contract``, also the key's columns;
    with ``demands``, chain receipts online, time-stamps against a CA, a witness quorum."""
    proof = parse_proof(read_proof_file(path))
    key_columns = None
    if contract is not None and isinstance(proof, RecordProof):
        key_columns = key_columns_from_contract(read_proof_file(contract), proof.manifest)
    demands = demands or AnchorDemands()
    result = verify_proof(proof, trusted, receipt_kinds(demands), origin=origin,
                          require_anchor=require_anchor)
    check_demands(demands, proof.checkpoint, proof.anchors)
    return result, key_columns


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anchoring.verify``: the exit statuses of ``trialproof verify``."""
    try:
        args = _arguments(argv)
        trusted = read_vkeys(args.vkey)
        demands = demands_from_options(
            read_vkeys(args.witness), args.witness_threshold, args.online, args.rpc,
            args.tsa_ca,
        )
        try:
            result, key_columns = verify_file(
                args.proof, trusted, origin=args.origin,
                require_anchor=args.require_anchor, contract=args.contract, demands=demands,
            )
        except ProofVerificationError as exc:
            if args.json:
                print(json.dumps(failure_json(exc)))
            raise
        print(json.dumps(result_json(result, key_columns), indent=2, ensure_ascii=False)
              if args.json else render_text(result, key_columns))
    except VerificationError as exc:
        print(f"verify: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (VerifierUsageError, AnchoringError, OSError) as exc:
        print(f"verify: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"verify: internal error ({type(exc).__name__}): {_one_line(exc)}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
