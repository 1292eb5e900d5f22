"""Every exception raised by :mod:`anchoring`, as one hierarchy.

::

    AnchoringError
    ├── MalformedError            input that is not well-formed (bad hex, wrong length ...)
    │   ├── InvalidHashError      a hash that is not 32 bytes
    │   ├── ProofShapeError       a proof of the wrong length for its (index, size)
    │   ├── NoteFormatError       a signed note or checkpoint that does not parse
    │   ├── ProofFormatError      a record or entry proof that does not parse
    │   └── ReceiptFormatError    an anchor receipt whose fields are malformed
    ├── VerificationError         well-formed input that does not verify
    │   ├── RootMismatchError     a computed Merkle root differs from the expected one
    │   ├── SignatureError        no trusted signature on a note
    │   └── ProofVerificationError  a record or entry proof failed, naming the step
    ├── CanonicalizationError     a value cannot be put into canonical form
    ├── KeyFormatError            a key file or vkey that cannot be used
    └── LogError                  the transparency log refused an operation
        ├── DuplicateEntryError   a keyed append refused because an earlier entry matches
        ├── LogConsistencyError   stored log state contradicts itself
        └── LogDatabaseError      the log database is damaged, unreadable or read-only

Messages never contain key material.
"""

from __future__ import annotations

__all__ = [
    "AnchoringError",
    "CanonicalizationError",
    "DuplicateEntryError",
    "InvalidHashError",
    "KeyFormatError",
    "LogConsistencyError",
    "LogDatabaseError",
    "LogError",
    "MalformedError",
    "NoteFormatError",
    "ProofFormatError",
    "ProofShapeError",
    "ProofVerificationError",
    "ReceiptFormatError",
    "RootMismatchError",
    "SignatureError",
    "VerificationError",
    "VerificationStep",
]

from enum import StrEnum


class AnchoringError(Exception):
    """Base class of every error raised by this package."""


class MalformedError(AnchoringError, ValueError):
    """The input is not well-formed; nothing was verified."""


class InvalidHashError(MalformedError):
    """A hash is not exactly 32 bytes (SHA-256)."""


class ProofShapeError(MalformedError):
    """A proof has the wrong length for its (index, size), or the index is out of range."""


class NoteFormatError(MalformedError):
    """A signed note, vkey or checkpoint does not follow C2SP signed-note / tlog-checkpoint."""


class ProofFormatError(MalformedError):
    """A record or entry proof is missing a field, has a mistyped one, or is not JSON."""


class ReceiptFormatError(MalformedError):
    """An anchor receipt of a known type has a missing or malformed field."""


class KeyFormatError(AnchoringError, ValueError):
    """A key or vkey cannot be parsed or does not match its name and key ID."""


class CanonicalizationError(AnchoringError, ValueError):
    """A value cannot be represented canonically (RFC 8785 / docs/formats.md §2)."""


class VerificationError(AnchoringError):
    """Well-formed input that does not verify."""


class RootMismatchError(VerificationError):
    """The root computed from a proof differs from the expected root."""

    def __init__(self, expected: bytes, computed: bytes, what: str = "root") -> None:
        self.expected = expected
        self.computed = computed
        self.what = what
        super().__init__(f"{what} mismatch: expected {expected.hex()}, computed {computed.hex()}")


class SignatureError(VerificationError):
    """A note carries no valid signature from a trusted key."""


class VerificationStep(StrEnum):
    """The steps of record-proof verification (docs/formats.md §8), in order."""

    RECORD_LEAF = "record leaf"
    DATASET_PATH = "dataset path"
    MANIFEST = "manifest"
    LOG_PATH = "log path"
    CHECKPOINT_SIGNATURE = "checkpoint signature"
    ANCHOR = "anchor"
    WITNESS = "witness"


class ProofVerificationError(VerificationError):
    """A proof did not verify; ``step`` names the failing step, and ``hashes`` holds the
    hashes that disagree (e.g. ``expected`` and ``computed``), as hex."""

    def __init__(
        self, step: VerificationStep, reason: str, hashes: dict[str, str] | None = None
    ) -> None:
        self.step = step
        self.reason = reason
        self.hashes = dict(hashes or {})
        super().__init__(f"{step.value}: {reason}")


class LogError(AnchoringError):
    """The transparency log refused an operation (bad size, unknown index ...)."""


class DuplicateEntryError(LogError):
    """A keyed append was refused because an earlier entry under the key matches."""

    def __init__(self, entry: object) -> None:
        self.entry = entry
        super().__init__("an equivalent entry is already in the log")


class LogConsistencyError(LogError):
    """What the log database holds contradicts itself: a sign of tampering or corruption."""


class LogDatabaseError(LogError):
    """The log database cannot be used: damaged (truncated, garbled, tables missing),
    unreachable, or opened read-only for a write."""
