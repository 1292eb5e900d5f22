"""Offline verification of a record proof (DESIGN Formats 8).

Needs only the standard library and ``cryptography``: a regulator holding a
public key can run it anywhere. :func:`verify_record_proof` returns nothing
on success and raises :class:`~anchoring.errors.BundleVerificationError`,
naming the failing step, otherwise.
"""

from __future__ import annotations

__all__ = ["verify_record_proof"]

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from anchoring.bundle import RecordProof
from anchoring.canonical import canonical_json, leaf_input
from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    AnchoringError,
    BundleVerificationError,
    RootMismatchError,
    VerificationError,
    VerificationStep,
)
from anchoring.ledgers.receipts import OFFLINE_CHECKS
from anchoring.manifest import check_manifest, manifest_leaf_input
from anchoring.merkle.hasher import leaf_hash
from anchoring.merkle.verify import root_from_inclusion_proof, verify_consistency
from anchoring.note import Verifier, open_note, parse_note

#: Checks one anchor receipt against the proof's checkpoint; raises on failure.
ReceiptCheck = Callable[[Mapping[str, Any], Checkpoint, str], None]


def _fail(step: VerificationStep, reason: str) -> BundleVerificationError:
    return BundleVerificationError(step, reason)


def verify_record_proof(
    proof: RecordProof,
    trusted: Sequence[Verifier],
    receipt_checks: Mapping[str, ReceiptCheck] | None = None,
) -> None:
    """Verify ``proof`` against trusted log keys, step by step (DESIGN Formats 8).

    1. record leaf: the leaf is SHA-256(0x00 || salt || JCS(record)) (RFC 9162 §2.1.1);
    2. dataset path: its inclusion proof (RFC 9162 §2.1.3.2) yields ``manifest.root``;
    3. manifest: well formed, with ``records`` equal to ``dataset_size``;
    4. log path: the manifest's leaf and ``log_proof`` yield the checkpoint's root,
       and ``log_size`` is the checkpoint's size;
    5. checkpoint signature: signed by a trusted key (C2SP signed-note);
    6. anchor: every receipt commits to this checkpoint, or to a later signed one
       it carries with a consistency proof, checked by the function registered for
       its ``type`` in ``receipt_checks`` (default: the offline checks of
       :mod:`anchoring.ledgers.receipts`).
    """
    try:
        record_leaf = leaf_hash(leaf_input(proof.salt, canonical_json(proof.record)))
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

    try:
        dataset_root = root_from_inclusion_proof(
            proof.leaf_index, proof.dataset_size, record_leaf, proof.dataset_proof
        )
    except AnchoringError as exc:
        raise _fail(VerificationStep.DATASET_PATH, str(exc)) from None
    if dataset_root.hex() != proof.manifest["root"]:
        mismatch = RootMismatchError(
            bytes.fromhex(proof.manifest["root"]), dataset_root, "dataset root"
        )
        raise _fail(VerificationStep.DATASET_PATH, str(mismatch))

    try:
        note = parse_note(proof.checkpoint)
        checkpoint = Checkpoint.from_body(note.text)
    except AnchoringError as exc:
        raise _fail(VerificationStep.CHECKPOINT_SIGNATURE, f"checkpoint: {exc}") from None
    try:
        log_root = root_from_inclusion_proof(
            proof.log_index,
            proof.log_size,
            leaf_hash(manifest_leaf_input(proof.manifest)),
            proof.log_proof,
        )
    except AnchoringError as exc:
        raise _fail(VerificationStep.LOG_PATH, str(exc)) from None
    if proof.log_size != checkpoint.size:
        raise _fail(
            VerificationStep.LOG_PATH,
            f"log_size {proof.log_size} is not the checkpoint's size {checkpoint.size}",
        )
    if log_root != checkpoint.root:
        raise _fail(
            VerificationStep.LOG_PATH, str(RootMismatchError(checkpoint.root, log_root, "log root"))
        )

    try:
        _check_signed(proof.checkpoint, tuple(trusted))
    except AnchoringError as exc:
        raise _fail(VerificationStep.CHECKPOINT_SIGNATURE, str(exc)) from None

    checks = OFFLINE_CHECKS if receipt_checks is None else receipt_checks
    for i, receipt in enumerate(proof.anchors):
        kind = receipt.get("type")
        check = checks.get(kind) if isinstance(kind, str) else None
        if check is None:
            raise _fail(VerificationStep.ANCHOR, f"anchors[{i}] has unknown type {kind!r}")
        try:
            anchored, anchored_note = _anchored_checkpoint(
                receipt, checkpoint, proof.checkpoint, trusted
            )
            check(receipt, anchored, anchored_note)
        except AnchoringError as exc:
            raise _fail(VerificationStep.ANCHOR, f"anchors[{i}]: {exc}") from None


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
        raise VerificationError("receipt checkpoint must be signed note text")
    later = Checkpoint.from_body(open_note(later_note, trusted)[0].text)
    if later.origin != checkpoint.origin or later.size < checkpoint.size:
        raise VerificationError("receipt anchors a checkpoint that is not a later one of this log")
    hashes = receipt.get("consistency_proof")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise VerificationError("receipt for a later checkpoint needs its consistency_proof")
    try:
        proof_hashes = [bytes.fromhex(h) for h in hashes]
    except ValueError:
        raise VerificationError("receipt consistency_proof is not hex") from None
    verify_consistency(checkpoint.size, later.size, checkpoint.root, later.root, proof_hashes)
    return later, later_note
