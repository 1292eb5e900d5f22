"""Witness cosignatures on a checkpoint, and a verifier's witness policy.

Witnesses (C2SP tlog-witness) answer with C2SP tlog-cosignature ``cosignature/v1``
lines, which the log appends to its checkpoint note. They are not receipts:
a record proof carries the cosigned note as its ``checkpoint`` (docs/formats.md §13).

Standard library and ``cryptography`` only, like the rest of the verifier.
"""

from __future__ import annotations

__all__ = [
    "TLOG_SIZE_CONTENT_TYPE",
    "add_cosignatures",
    "check_witness_policy",
    "valid_cosigners",
]

from collections.abc import Iterable, Sequence

from anchoring.errors import NoteFormatError, ProofVerificationError, VerificationStep
from anchoring.note import COSIGNATURE_V1, Note, NoteSignature, Verifier, cosignature_message
from anchoring.note import parse_note as _parse_note

#: The media type of a witness's 409 answer, its latest size (C2SP tlog-witness).
TLOG_SIZE_CONTENT_TYPE = "text/x.tlog.size"
_COSIGNATURE_BYTES = 8 + 64  # uint64 timestamp || Ed25519 signature (C2SP tlog-cosignature)


def _cosignature_verifies(verifier: Verifier, signature: NoteSignature, text: str) -> bool:
    """One cosignature/v1 line over ``text`` (C2SP tlog-cosignature, "Format")."""
    if verifier.sig_type != COSIGNATURE_V1 or len(signature.signature) != _COSIGNATURE_BYTES:
        return False
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp >= 2**63:
        return False
    return verifier.verify(cosignature_message(timestamp, text), signature.signature[8:])


def valid_cosigners(note: str | Note, witnesses: Iterable[Verifier]) -> list[Verifier]:
    """The witnesses among ``witnesses`` with a valid cosignature/v1 on ``note``.

    Signature lines from other keys are ignored (C2SP signed-note); a line that
    names a witness key but does not verify simply does not count.
    """
    parsed = note if isinstance(note, Note) else _parse_note(note)
    by_id = {(w.name, w.key_id): w for w in witnesses}
    found: list[Verifier] = []
    keys: set[bytes] = set()
    for signature in parsed.signatures:
        witness = by_id.get((signature.name, signature.key_id))
        # One key is one witness, whatever names it is trusted under: the cosigned
        # message does not cover the name.
        if witness is None or witness.public_key in keys:
            continue
        if _cosignature_verifies(witness, signature, parsed.text):
            found.append(witness)
            keys.add(witness.public_key)
    return found


def check_witness_policy(note: str, witnesses: Sequence[Verifier], threshold: int) -> None:
    """Raise at the step ``witness`` unless ``threshold`` of ``witnesses`` cosigned ``note``."""
    if not 1 <= threshold <= len(witnesses):
        raise ProofVerificationError(
            VerificationStep.WITNESS,
            f"a witness threshold of {threshold} needs between 1 and {len(witnesses)} "
            "witness keys",
        )
    try:
        cosigners = valid_cosigners(note, witnesses)
    except NoteFormatError as exc:
        raise ProofVerificationError(VerificationStep.WITNESS, str(exc)) from None
    if len(cosigners) < threshold:
        names = ", ".join(w.name for w in cosigners) or "none"
        raise ProofVerificationError(
            VerificationStep.WITNESS,
            f"{len(cosigners)} valid cosignature(s) from the {len(witnesses)} trusted "
            f"witnesses ({names}); the policy needs {threshold}",
        )


def add_cosignatures(note: str, lines: str, witness: Verifier) -> str:
    """``note`` with the cosignature lines of ``witness`` from an add-checkpoint response.

    Lines from keys other than ``witness`` are dropped (C2SP tlog-witness: the
    client ignores unknown keys); the witness's line must verify on the note.
    """
    parsed = _parse_note(note)
    answer = _parse_note(parsed.text + "\n" + lines)
    mine = [
        s
        for s in answer.signatures
        if (s.name, s.key_id) == (witness.name, witness.key_id)
        and _cosignature_verifies(witness, s, parsed.text)
    ]
    if not mine:
        raise NoteFormatError(f"the response holds no valid cosignature from {witness.name}")
    kept = [s for s in parsed.signatures if (s.name, s.key_id) != (witness.name, witness.key_id)]
    return Note(parsed.text, (*kept, mine[0])).serialize()

