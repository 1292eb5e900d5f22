"""C2SP signed notes (signed-note v1.0.0) and Ed25519 cosignatures (tlog-cosignature v1).

A note is UTF-8 text ending in a newline, a blank line, then one signature line
per signer::

    <text>
    (blank)
    — <name> base64(key ID || signature)

Opening a note checks it against a set of trusted verifier keys (vkeys).
Signatures from keys not in the set are ignored; a signature from a trusted
key that does not verify is an error, and so is a note with no signature
from a trusted key.
"""

from __future__ import annotations

__all__ = [
    "COSIGNATURE_V1",
    "ED25519",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "cosignature_message",
    "key_id",
    "open_note",
    "parse_note",
    "sign_note",
]

import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from anchoring.errors import KeyFormatError, NoteFormatError, SignatureError

#: Signature type byte of an Ed25519 note signature (C2SP signed-note).
ED25519 = 0x01
#: Signature type byte of an Ed25519 cosignature/v1 (C2SP tlog-cosignature).
COSIGNATURE_V1 = 0x04

_DASH = "\u2014 "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
#: Go's note package parses key IDs with ParseUint(hex, 16, 32): either case is accepted.
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4] (C2SP signed-note, tlog-cosignature)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise KeyFormatError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteFormatError(f"{what} is not valid base64") from None


def cosignature_message(timestamp: int, body: str) -> bytes:
    """The message an Ed25519 cosignature/v1 signs (C2SP tlog-cosignature)."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: a name, a signature type and an Ed25519 key."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_key)

    @property
    def vkey(self) -> str:
        """``name+hex(key ID)+base64(type || key)`` (C2SP signed-note, verifier keys)."""
        encoded = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse a vkey, checking that its key ID matches its name and key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("a vkey has the form name+keyid+base64key")
        name, hex_id, encoded = parts
        _check_name(name)
        if not _KEY_ID_HEX.fullmatch(hex_id):
            raise KeyFormatError(f"vkey for {name!r} needs a key ID of 8 hex digits")
        try:
            raw = base64.b64decode(encoded, validate=True)
            expected_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise KeyFormatError(f"vkey for {name!r} has a malformed key ID or key") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1) or len(expected_id) != 4:
            raise KeyFormatError(f"vkey for {name!r} is not an Ed25519 key of a known type")
        verifier = cls(name, raw[0], raw[1:])
        if verifier.key_id != expected_id:
            raise KeyFormatError(f"vkey for {name!r} has a key ID that does not match its key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class Signer:
    """An Ed25519 signing key with a name. ``repr`` never shows the key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey, sig_type: int = ED25519) -> None:
        self.name = _check_name(name)
        self.sig_type = sig_type
        self._key = private_key
        public = private_key.public_key().public_bytes_raw()
        self.verifier = Verifier(name, sig_type, public)

    def __repr__(self) -> str:
        return f"Signer({self.name!r}, {self.verifier.key_id.hex()})"

    @classmethod
    def generate(cls, name: str, sig_type: int = ED25519) -> Signer:
        return cls(name, Ed25519PrivateKey.generate(), sig_type)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+name+hex(key ID)+base64(type || seed)`` (Go's sumdb/note format)."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("a signing key has the form PRIVATE+KEY+name+keyid+base64key")
        name, hex_id, encoded = parts[2:]
        if not _KEY_ID_HEX.fullmatch(hex_id):
            raise KeyFormatError("signing key needs a key ID of 8 hex digits")
        try:
            raw = base64.b64decode(encoded, validate=True)
            expected_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise KeyFormatError(f"signing key for {name!r} is malformed") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise KeyFormatError(f"signing key for {name!r} is not an Ed25519 key of a known type")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
        if signer.verifier.key_id != expected_id:
            raise KeyFormatError(f"signing key for {name!r} has a key ID that does not match")
        return signer

    def skey(self) -> str:
        """The private key in Go's sumdb/note format. Handle as a secret."""
        seed = self._key.private_bytes_raw()
        encoded = base64.b64encode(bytes([self.sig_type]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def signature_line(self, body: str, timestamp: int | None = None) -> str:
        """One signature line over ``body``: a note signature, or a timestamped cosignature."""
        if self.sig_type == COSIGNATURE_V1:
            ts = int(time.time()) if timestamp is None else timestamp
            raw = struct.pack(">Q", ts) + self.sign(cosignature_message(ts, body))
        else:
            raw = self.sign(body.encode())
        encoded = base64.b64encode(self.verifier.key_id + raw).decode()
        return f"{_DASH}{self.name} {encoded}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """A parsed signed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def serialize(self) -> str:
        lines = "".join(
            f"{_DASH}{s.name} {base64.b64encode(s.key_id + s.signature).decode()}\n"
            for s in self.signatures
        )
        return f"{self.text}\n{lines}"


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signature lines, checking the format only."""
    note = _note_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteFormatError("note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block.split("\n")[:-1]
    if not lines:
        raise NoteFormatError("note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def _note_text(note: str | bytes) -> str:
    """The note as text, checked for size, the final newline and control characters."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteFormatError("note is larger than 1 MiB")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteFormatError("note is not valid UTF-8") from None
    if len(note.encode("utf-8", "surrogatepass")) > MAX_NOTE_BYTES:
        raise NoteFormatError("note is larger than 1 MiB")
    if not note.endswith("\n"):
        raise NoteFormatError("note must end with a newline")
    if _CONTROL.search(note):
        raise NoteFormatError("note contains a control character other than newline")
    return note


def _parse_signature_line(line: str) -> NoteSignature:
    """One ``— <name> <base64(key ID || signature)>`` line (C2SP signed-note)."""
    if not line.startswith(_DASH):
        raise NoteFormatError("signature line does not start with an em dash and a space")
    name, sep, encoded = line[len(_DASH) :].rpartition(" ")
    if not sep or not name or " " in name or "+" in name:
        raise NoteFormatError("signature line has a malformed key name")
    raw = _b64decode(encoded, f"signature from {name!r}")
    if len(raw) < 5:
        raise NoteFormatError(f"signature from {name!r} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def sign_note(text: str, signers: Sequence[Signer], timestamp: int | None = None) -> str:
    """Sign ``text`` (which must end in a newline and have no blank line) with each signer."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteFormatError("note text must end in a newline and contain no blank line")
    return text + "\n" + "".join(s.signature_line(text, timestamp) for s in signers)


def open_note(
    note: str | bytes | Note, verifiers: Iterable[Verifier]
) -> tuple[Note, list[Verifier]]:
    """Verify a note against trusted keys and return it with the keys that signed it.

    Raises :class:`SignatureError` when no trusted key signed it, or when a
    trusted key's signature does not verify.
    """
    parsed = note if isinstance(note, Note) else parse_note(note)
    trusted = {(v.name, v.key_id): v for v in verifiers}
    signed_by: list[Verifier] = []
    for sig in parsed.signatures:
        verifier = trusted.get((sig.name, sig.key_id))
        if verifier is None:
            continue  # unknown keys are ignored (C2SP signed-note)
        if verifier.sig_type == COSIGNATURE_V1:
            timestamp = int.from_bytes(sig.signature[:8], "big")
            ok = (
                len(sig.signature) == 72
                and timestamp < 2**63
                and verifier.verify(cosignature_message(timestamp, parsed.text), sig.signature[8:])
            )
        else:
            ok = verifier.verify(parsed.text.encode(), sig.signature)
        if not ok:
            raise SignatureError(f"signature from trusted key {sig.name!r} does not verify")
        if verifier not in signed_by:
            signed_by.append(verifier)
    if not signed_by:
        raise SignatureError("note has no signature from a trusted key")
    return parsed, signed_by
