"""C2SP tlog-checkpoint bodies, signed checkpoints and C2SP tlog-proof documents."""

from __future__ import annotations

__all__ = [
    "Checkpoint",
    "TlogProof",
    "open_checkpoint",
    "parse_tlog_proof",
]

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from anchoring.errors import NoteFormatError
from anchoring.merkle.hasher import HASH_SIZE
from anchoring.note import Note, Signer, Verifier, open_note, parse_note, sign_note

_MAX_SIZE = (1 << 63) - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


def _parse_decimal(text: str, what: str) -> int:
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise NoteFormatError(f"{what} must be a decimal number without leading zeros")
    value = int(text)
    if value > _MAX_SIZE:
        raise NoteFormatError(f"{what} is too large")
    return value


def _parse_hash(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteFormatError(f"{what} is not valid base64") from None
    if len(raw) != HASH_SIZE:
        raise NoteFormatError(f"{what} must be {HASH_SIZE} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed claim: origin, size and root hash (C2SP tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not isinstance(line, str) or not line or _CONTROL.search(line):
                raise NoteFormatError(
                    "checkpoint lines must be non-empty text without newlines or control characters"
                )
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not (0 <= self.size <= _MAX_SIZE)
        ):
            raise NoteFormatError("checkpoint size must be an integer in 0..2**63-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise NoteFormatError(f"checkpoint root must be {HASH_SIZE} bytes")

    def body(self) -> str:
        """The note text: origin, decimal size, base64 root, extension lines."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteFormatError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteFormatError("checkpoint body needs origin, size and root lines")
        origin, size, root, *extensions = lines
        if not origin:
            raise NoteFormatError("checkpoint origin is empty")
        if any(not line for line in extensions):
            raise NoteFormatError("checkpoint has an empty extension line")
        return cls(
            origin,
            _parse_decimal(size, "checkpoint size"),
            _parse_hash(root, "checkpoint root"),
            tuple(extensions),
        )

    def sign(self, signers: Sequence[Signer]) -> str:
        """The signed note text of this checkpoint."""
        return sign_note(self.body(), signers)


def open_checkpoint(
    note: str | bytes | Note, verifiers: Iterable[Verifier], origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint against trusted keys and parse it.

    Raises :class:`~anchoring.errors.SignatureError` without a trusted
    signature, and :class:`NoteFormatError` when the body is malformed or the
    origin differs from ``origin``.
    """
    parsed = note if isinstance(note, Note) else parse_note(note)
    checkpoint = Checkpoint.from_body(parsed.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteFormatError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    open_note(parsed, verifiers)
    return checkpoint


@dataclass(frozen=True)
class TlogProof:
    """A C2SP tlog-proof: an entry's index, its inclusion proof and the signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def serialize(self) -> str:
        lines = [_TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a C2SP tlog-proof document (format only; verify the checkpoint separately)."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise NoteFormatError("tlog-proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != _TLOG_PROOF_HEADER:
        raise NoteFormatError(f"tlog-proof must start with {_TLOG_PROOF_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        try:
            extra = base64.b64decode(rest.pop(0)[6:], validate=True)
        except (binascii.Error, ValueError):
            raise NoteFormatError("tlog-proof extra data is not valid base64") from None
    if not rest or not rest[0].startswith("index "):
        raise NoteFormatError("tlog-proof has no index line")
    index = _parse_decimal(rest.pop(0)[6:], "tlog-proof index")
    proof = tuple(_parse_hash(line, f"tlog-proof hash {i}") for i, line in enumerate(rest))
    parse_note(checkpoint)
    return TlogProof(index, proof, checkpoint, extra)
