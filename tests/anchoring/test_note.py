"""C2SP signed notes, cosignatures, checkpoints and tlog-proofs.

Modules under test: anchoring.note and anchoring.checkpoint.

Vectors: ``tests/vectors/signed_note/signed_note_vectors.json`` (Go sumdb/note
tests and the C2SP spec examples).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from anchoring._internal.tree import MerkleTree
from anchoring.checkpoint import Checkpoint, TlogProof, open_checkpoint, parse_tlog_proof
from anchoring.errors import KeyFormatError, NoteFormatError, SignatureError
from anchoring.merkle import leaf_hash, verify_inclusion
from anchoring.note import (
    COSIGNATURE_V1,
    ED25519,
    Note,
    NoteSignature,
    Signer,
    Verifier,
    open_note,
    parse_note,
    sign_note,
)

DASH = "\u2014 "


@pytest.fixture(scope="module")
def vectors(vectors_dir: Path) -> dict[str, Any]:
    path = vectors_dir / "signed_note" / "signed_note_vectors.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def go_note(vectors: dict[str, Any]) -> dict[str, Any]:
    """The Go sumdb/note TestSign note, with its private key."""
    note: dict[str, Any] = vectors["signed_notes"][0]
    assert note["signer_private_key_golang_format"].startswith("PRIVATE+KEY+PeterNeumann+")
    return note


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def independent_key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || key)[:4], written out from the C2SP spec."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


# -- signed-note vectors ----------------------------------------------------------------------


def test_vector_notes_parse(vectors: dict[str, Any]) -> None:
    """Every vector note parses to its signed text and key IDs, and serializes back unchanged
    (incl. the C2SP intro poem, whose text itself contains a blank line)."""
    assert len(vectors["signed_notes"]) == 4
    for vector in vectors["signed_notes"]:
        note = parse_note(vector["note"])
        assert note.text == vector["signed_text"]
        assert [(s.name, s.key_id.hex()) for s in note.signatures] == [
            (s["signer"], s["key_id_hex"]) for s in vector["signatures"]
        ]
        assert note.serialize() == vector["note"]
        assert parse_note(vector["note"].encode()) == note


def test_vector_notes_open_with_their_vkeys(vectors: dict[str, Any]) -> None:
    """Each note with published vkeys opens and reports exactly the keys that signed it."""
    opened = 0
    for vector in vectors["signed_notes"]:
        verifiers = [Verifier.from_vkey(v) for v in vector["vkeys"]]
        expected = [s["signer"] for s in vector["signatures"] if s["signature_valid"]]
        if not verifiers:
            with pytest.raises(SignatureError):
                open_note(vector["note"], verifiers)
            continue
        note, signed_by = open_note(vector["note"], verifiers)
        assert note.text == vector["signed_text"]
        assert [v.name for v in signed_by] == expected
        for v in signed_by:
            assert v.vkey in vector["vkeys"]
            assert v.key_id == independent_key_id(v.name, ED25519, v.public_key)
        opened += 1
    assert opened == 3


def test_resigning_with_go_key_reproduces_signature(go_note: dict[str, Any]) -> None:
    """Ed25519 is deterministic: the Go test key re-signs the text to the published line."""
    signer = Signer.from_skey(go_note["signer_private_key_golang_format"])
    published_line = go_note["note"].split("\n\n", 1)[1]
    assert signer.signature_line(go_note["signed_text"]) == published_line
    assert sign_note(go_note["signed_text"], [signer]) == go_note["note"]
    assert signer.verifier.vkey == go_note["vkeys"][0]
    assert signer.skey() == go_note["signer_private_key_golang_format"]


def test_unknown_keys_are_ignored(vectors: dict[str, Any]) -> None:
    """Signatures from keys the verifier does not know are skipped, not errors (C2SP)."""
    two = vectors["signed_notes"][1]
    enoch = Verifier.from_vkey(two["vkeys"][1])
    stranger = Signer.generate("stranger.example/key").verifier
    _, signed_by = open_note(two["note"], [enoch, stranger])
    assert signed_by == [enoch]


def test_name_or_key_id_alone_does_not_match(go_note: dict[str, Any]) -> None:
    """C2SP: ignore signatures that share a name *or* a key ID (but not both) with a known key,
    even when they carry garbage; the real signature still opens the note."""
    peter = Verifier.from_vkey(go_note["vkeys"][0])
    note = parse_note(go_note["note"])
    garbage = b"\x00" * 64
    decoys = (
        NoteSignature(peter.name, b"\xde\xad\xbe\xef", garbage),
        NoteSignature("Impostor", peter.key_id, garbage),
    )
    forged = Note(note.text, decoys + note.signatures)
    _, signed_by = open_note(forged.serialize(), [peter])
    assert signed_by == [peter]
    with pytest.raises(SignatureError):
        open_note(Note(note.text, decoys).serialize(), [peter])


def test_no_trusted_signature_raises(vectors: dict[str, Any], go_note: dict[str, Any]) -> None:
    """A note signed only by keys we do not trust, or with no trust at all, is refused."""
    enoch = Verifier.from_vkey(vectors["signed_notes"][1]["vkeys"][1])
    with pytest.raises(SignatureError):
        open_note(go_note["note"], [enoch])
    with pytest.raises(SignatureError):
        open_note(go_note["note"], [])


def test_tampered_note_raises(go_note: dict[str, Any]) -> None:
    """Changing one character of the text, or one bit of the signature, breaks the note."""
    peter = Verifier.from_vkey(go_note["vkeys"][0])
    with pytest.raises(SignatureError):
        open_note(go_note["note"].replace("problem", "pr0blem", 1), [peter])
    note = parse_note(go_note["note"])
    sig = note.signatures[0]
    flipped = bytes([sig.signature[0] ^ 1]) + sig.signature[1:]
    bad = Note(note.text, (NoteSignature(sig.name, sig.key_id, flipped),))
    with pytest.raises(SignatureError):
        open_note(bad.serialize(), [peter])


def _malformed(go: str) -> dict[str, str | bytes]:
    text, sigs = go.split("\n\n", 1)
    return {
        "no blank line": go.replace("\n\n", "\n", 1),
        "no trailing newline": go[:-1],
        "carriage return": go.replace("\n", "\r\n"),
        "bad base64": go.replace("x08go/", "x08go!", 1),
        "truncated base64": go[:-10] + "\n",
        "no signature lines": text + "\n\n",
        "no em dash": text + "\n\n" + sigs.replace(DASH, "- ", 1),
        "name with space": text + "\n\n" + sigs.replace("PeterNeumann", "Peter Neumann", 1),
        "name with plus": text + "\n\n" + sigs.replace("PeterNeumann", "Peter+Neumann", 1),
        "signature too short": text
        + "\n\n"
        + DASH
        + "PeterNeumann "
        + b64(b"\x01\x02\x03\x04")
        + "\n",
        "invalid utf-8": go.encode()[:5] + b"\xff" + go.encode()[5:],
        "oversized": "x" * (1 << 20) + go,  # well-formed, but over the 1 MiB limit
    }


@pytest.mark.parametrize(
    "case",
    [
        "no blank line",
        "no trailing newline",
        "carriage return",
        "bad base64",
        "truncated base64",
        "no signature lines",
        "no em dash",
        "name with space",
        "name with plus",
        "signature too short",
        "invalid utf-8",
        "oversized",
    ],
)
def test_malformed_notes_raise(go_note: dict[str, Any], case: str) -> None:
    """Notes that break the C2SP signed-note grammar are NoteFormatError, before any crypto."""
    note = _malformed(go_note["note"])[case]
    peter = Verifier.from_vkey(go_note["vkeys"][0])
    with pytest.raises(NoteFormatError):
        parse_note(note)
    with pytest.raises(NoteFormatError):
        open_note(note, [peter])


@pytest.mark.parametrize("control", ["\t", "\x00", "\x0b", "\x1b"])
def test_control_characters_are_refused(go_note: dict[str, Any], control: str) -> None:
    """C2SP signed-note: notes MUST NOT contain ASCII control characters other than newline.
    parse_note only refuses \\r."""
    text, sigs = go_note["note"].split("\n\n", 1)
    with pytest.raises(NoteFormatError):
        parse_note(text.replace(" ", control, 1) + "\n\n" + sigs)


def test_sign_note_refuses_bad_text() -> None:
    """sign_note needs a text that ends in a newline and would parse back unchanged."""
    signer = Signer.generate("example.com/log")
    for text in ("no newline", "two\n\nparagraphs\n", "\nleading blank\n"):
        with pytest.raises(NoteFormatError):
            sign_note(text, [signer])


# -- vkeys and signing keys ---------------------------------------------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_KEY = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]


def test_vkey_roundtrip() -> None:
    """A vkey parses to its name, type and key, and formats back identically."""
    verifier = Verifier.from_vkey(PETER_VKEY)
    assert (verifier.name, verifier.sig_type, verifier.public_key) == (
        "PeterNeumann",
        ED25519,
        PETER_KEY,
    )
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier.vkey == PETER_VKEY


def test_vkey_key_id_in_upper_case_hex_is_accepted() -> None:
    """Go's note package reads the key ID with ParseUint(hex, 16, 32): either case works."""
    upper = PETER_VKEY.replace("+c74f20a3+", "+C74F20A3+")
    assert upper != PETER_VKEY
    verifier = Verifier.from_vkey(upper)
    assert verifier == Verifier.from_vkey(PETER_VKEY)
    assert verifier.vkey == PETER_VKEY  # written back in the canonical lower case
    with pytest.raises(KeyFormatError):
        Verifier.from_vkey(PETER_VKEY.replace("+c74f20a3+", "+C74F20A4+"))


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short key ID
        "PeterNeumann+zz4f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not hex
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW!",  # bad base64
        "PeterNeumann+c74f20a3+" + b64(b"\x02" + PETER_KEY),  # wrong type (ECDSA)
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_KEY[:31]),  # short key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # empty name
        "PeterNeumann+c74f20a3",  # missing key
        "",
    ],
)
def test_bad_vkeys_raise(vkey: str) -> None:
    """Malformed vkeys, or ones whose key ID does not match name and key, are KeyFormatError."""
    with pytest.raises(KeyFormatError):
        Verifier.from_vkey(vkey)


def test_vkey_key_id_depends_on_the_type() -> None:
    """The same key as a cosigner (type 0x04) has another key ID, so a type-swapped vkey fails."""
    swapped = "PeterNeumann+c74f20a3+" + b64(bytes([COSIGNATURE_V1]) + PETER_KEY)
    with pytest.raises(KeyFormatError):
        Verifier.from_vkey(swapped)
    cosigner = Verifier("PeterNeumann", COSIGNATURE_V1, PETER_KEY)
    assert cosigner.key_id == independent_key_id("PeterNeumann", COSIGNATURE_V1, PETER_KEY)
    assert Verifier.from_vkey(cosigner.vkey) == cosigner


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",  # key ID
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",  # base64
        "PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # a vkey
    ],
)
def test_bad_signing_keys_raise(skey: str) -> None:
    """Signing keys in Go's format are checked like vkeys, and the error names no key material."""
    with pytest.raises(KeyFormatError) as info:
        Signer.from_skey(skey)
    assert "AYEKFALVFGyNhPJEMzD1QIDr" not in str(info.value)


@pytest.mark.parametrize("sig_type", [ED25519, COSIGNATURE_V1])
def test_signer_repr_hides_the_private_key(go_note: dict[str, Any], sig_type: int) -> None:
    """repr/str of a Signer show name and key ID only, never the seed in any encoding."""
    skey = go_note["signer_private_key_golang_format"]
    for signer in (Signer.from_skey(skey), Signer.generate("example.com/w", sig_type)):
        seed = base64.b64decode(signer.skey().split("+", 4)[4])[1:]
        for text in (repr(signer), str(signer), f"{signer!r}", repr([signer])):
            assert signer.name in text
            for secret in (
                signer.skey(),
                b64(bytes([signer.sig_type]) + seed),
                seed.hex(),
                repr(seed),
            ):
                assert secret not in text


# -- cosignatures (C2SP tlog-cosignature, Ed25519 v1) ----------------------------------------


def test_cosignature_line_layout_and_message() -> None:
    """A COSIGNATURE_V1 signer adds keyid(4) || timestamp(8, big-endian) || Ed25519 sig(64),
    signed over "cosignature/v1\\ntime <ts>\\n" + body; checked with raw cryptography."""
    log = Signer.generate("example.com/log")
    witness = Signer.generate("witness.example/w1", COSIGNATURE_V1)
    body = Checkpoint("example.com/log", 5, leaf_hash(b"root")).body()
    timestamp = 1679315147
    note = sign_note(body, [log]) + witness.signature_line(body, timestamp)

    parsed = parse_note(note)
    cosig = parsed.signatures[1]
    payload = cosig.key_id + cosig.signature
    assert len(payload) == 76
    public = witness.verifier.public_key
    assert payload[:4] == independent_key_id("witness.example/w1", 0x04, public)
    assert struct.unpack(">Q", payload[4:12])[0] == timestamp
    message = f"cosignature/v1\ntime {timestamp}\n{body}".encode()
    Ed25519PublicKey.from_public_bytes(public).verify(payload[12:], message)  # raises if wrong

    _, signed_by = open_note(note, [witness.verifier])
    assert signed_by == [witness.verifier]
    _, signed_by = open_note(note, [log.verifier, witness.verifier])
    assert signed_by == [log.verifier, witness.verifier]
    assert Verifier.from_vkey(witness.verifier.vkey).sig_type == COSIGNATURE_V1


def test_cosignature_timestamp_is_signed() -> None:
    """Moving a cosignature's timestamp (the signature kept) makes the trusted witness fail."""
    witness = Signer.generate("witness.example/w1", COSIGNATURE_V1)
    body = Checkpoint("example.com/log", 5, leaf_hash(b"root")).body()
    note = parse_note(sign_note(body, [witness], timestamp=1000))
    sig = note.signatures[0]
    moved = NoteSignature(sig.name, sig.key_id, struct.pack(">Q", 1001) + sig.signature[8:])
    with pytest.raises(SignatureError):
        open_note(Note(note.text, (moved,)).serialize(), [witness.verifier])
    truncated = NoteSignature(sig.name, sig.key_id, sig.signature[:-1])
    with pytest.raises(SignatureError):
        open_note(Note(note.text, (truncated,)).serialize(), [witness.verifier])


def test_c2sp_cosignature_example(vectors: dict[str, Any]) -> None:
    """The tlog-cosignature spec example parses: log signature of 64 bytes, witness key ID
    8d66cf3f and timestamp 1679315147 from a 76-byte cosignature payload."""
    example = vectors["c2sp_cosignature_example"]
    note = parse_note(example["note"])
    log_sig, witness_sig = note.signatures
    expected_log, expected_witness = example["signatures"]
    assert (log_sig.name, log_sig.key_id.hex()) == ("example.com/behind-the-sofa", "033de0ae")
    assert len(log_sig.key_id + log_sig.signature) == expected_log["signature_bytes"] == 68
    assert witness_sig.name == expected_witness["signer"] == "witness.example.com/w1"
    assert witness_sig.key_id.hex() == expected_witness["key_id_hex"] == "8d66cf3f"
    assert (
        len(witness_sig.key_id + witness_sig.signature) == expected_witness["signature_bytes"] == 76
    )
    timestamp = struct.unpack(">Q", witness_sig.signature[:8])[0]
    assert timestamp == expected_witness["cosignature_v1_timestamp"] == 1679315147
    checkpoint = Checkpoint.from_body(note.text)
    assert checkpoint.size == 20852163
    with pytest.raises(SignatureError):  # no public key is published for the example
        open_note(note, [Signer.generate("witness.example.com/w1", COSIGNATURE_V1).verifier])


# -- checkpoints (C2SP tlog-checkpoint) --------------------------------------------------


def test_checkpoint_body_roundtrip() -> None:
    """A checkpoint body formats as origin, size, base64 root, extensions, and parses back."""
    root = leaf_hash(b"x")
    checkpoint = Checkpoint("trials.example.org/log", 42, root, ("ext one", "ext two"))
    body = checkpoint.body()
    assert body == f"trials.example.org/log\n42\n{b64(root)}\next one\next two\n"
    assert Checkpoint.from_body(body) == checkpoint
    assert Checkpoint.from_body(Checkpoint("o", 0, root).body()).size == 0


def test_go_sumdb_tree_note(vectors: dict[str, Any]) -> None:
    """Go's tlog.FormatTree output parses to the published size and root,
    which is RecordHash("hello world")."""
    tree = vectors["go_sumdb_tree_note"]
    checkpoint = Checkpoint.from_body(tree["tree_note_text"])
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.size == tree["tree_size"] == 123456789012
    assert checkpoint.root.hex() == tree["root_hash_hex"]
    assert checkpoint.root == leaf_hash(b"hello world")
    assert checkpoint.body() == tree["tree_note_text"]


def test_c2sp_checkpoint_example(vectors: dict[str, Any]) -> None:
    """The tlog-checkpoint spec example parses to its origin, size and root."""
    example = vectors["c2sp_checkpoint_example"]
    note = parse_note(example["note"])
    checkpoint = Checkpoint.from_body(note.text)
    assert checkpoint.origin == example["origin"]
    assert checkpoint.size == example["tree_size"]
    assert checkpoint.root.hex() == example["root_hash_hex"]
    assert checkpoint.body() == note.text
    assert note.signatures[0].key_id.hex() == example["signatures"][0]["key_id_hex"]


def _body(size: str = "7", root: str | None = None, origin: str = "example.com/log") -> str:
    root = b64(leaf_hash(b"r")) if root is None else root
    return f"{origin}\n{size}\n{root}\n"


@pytest.mark.parametrize(
    "size",
    [
        "07",
        "00",
        "-1",
        "+7",
        "7a",
        "",
        " 7",
        "7 ",
        "0x7",
        "1e3",
        "\u0667",
        "\uff17",
        str(2**63),
        "99999999999999999999",
    ],
)
def test_checkpoint_bad_sizes_raise(size: str) -> None:
    """Sizes must be ASCII decimal without leading zeros and fit in 63 bits."""
    with pytest.raises(NoteFormatError):
        Checkpoint.from_body(_body(size=size))


@pytest.mark.parametrize(
    "root",
    [
        b64(b"\x00" * 31),
        b64(b"\x00" * 33),
        "",
        "not base64!",
        b64(leaf_hash(b"r"))[:-1],
        leaf_hash(b"r").hex(),
    ],
)
def test_checkpoint_bad_roots_raise(root: str) -> None:
    """Roots must be the base64 of exactly 32 bytes."""
    with pytest.raises(NoteFormatError):
        Checkpoint.from_body(_body(root=root))


@pytest.mark.parametrize(
    "body",
    [
        "example.com/log\n7\n",  # no root line
        _body()[:-1],  # no final newline
        _body(origin=""),  # empty origin
        _body() + "\n",  # empty extension line
        _body() + "ext\n\nmore\n",
    ],
)
def test_checkpoint_bad_bodies_raise(body: str) -> None:
    """Fewer than three lines, an empty origin or an empty extension line are refused."""
    with pytest.raises(NoteFormatError):
        Checkpoint.from_body(body)


def test_open_checkpoint() -> None:
    """A signed checkpoint opens with its key and origin; wrong origin or untrusted key raise."""
    log = Signer.generate("trials.example.org/log")
    checkpoint = Checkpoint("trials.example.org/log", 3, leaf_hash(b"r"))
    note = checkpoint.sign([log])
    assert open_checkpoint(note, [log.verifier]) == checkpoint
    assert open_checkpoint(note, [log.verifier], origin="trials.example.org/log") == checkpoint
    with pytest.raises(NoteFormatError):
        open_checkpoint(note, [log.verifier], origin="other.example.org/log")
    with pytest.raises(SignatureError):
        open_checkpoint(note, [Signer.generate("trials.example.org/log").verifier])
    with pytest.raises(SignatureError):
        open_checkpoint(note.replace("\n3\n", "\n4\n"), [log.verifier])


# -- tlog-proof (C2SP tlog-proof) ------------------------------------------------------------------

SPEC_EXTRA = "YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ"
SPEC_HASHES = [
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=",
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=",
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=",
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=",
]


def test_tlog_proof_spec_example() -> None:
    """The C2SP tlog-proof example (its elided signatures replaced by a real one) parses to
    its extra data, index and hashes, and serializes back byte for byte."""
    body = "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
    checkpoint = sign_note(body, [Signer.generate("example.com/fancylog")])
    text = "\n".join(["c2sp.org/tlog-proof@v1", f"extra {SPEC_EXTRA}", "index 73894", *SPEC_HASHES])
    text += "\n\n" + checkpoint
    proof = parse_tlog_proof(text)
    assert proof.extra == base64.b64decode(SPEC_EXTRA)
    assert proof.index == 73894
    assert [b64(h) for h in proof.proof] == SPEC_HASHES
    assert proof.checkpoint == checkpoint
    assert proof.serialize() == text


@pytest.mark.parametrize("extra", [None, b"", b"application data \x00\xff"])
def test_tlog_proof_roundtrip_and_verifies(extra: bytes | None) -> None:
    """A real proof written as tlog-proof: the exact line layout, a lossless roundtrip, and
    its parts verify against the signed checkpoint."""
    leaves = [f"entry {i}".encode() for i in range(13)]
    tree = MerkleTree.from_leaf_inputs(leaves)
    log = Signer.generate("trials.example.org/log")
    checkpoint_note = Checkpoint("trials.example.org/log", tree.size, tree.root()).sign([log])
    index = 9
    proof = TlogProof(index, tuple(tree.inclusion_proof(index)), checkpoint_note, extra)
    text = proof.serialize()

    head, checkpoint_text = text.split("\n\n", 1)
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    if extra is not None:
        assert lines.pop(1) == "extra " + b64(extra)
    assert lines[1] == f"index {index}"
    assert [base64.b64decode(x, validate=True) for x in lines[2:]] == tree.inclusion_proof(index)
    assert checkpoint_text == checkpoint_note

    parsed = parse_tlog_proof(text)
    assert parsed == proof
    opened = open_checkpoint(parsed.checkpoint, [log.verifier])
    verify_inclusion(parsed.index, opened.size, leaf_hash(leaves[index]), parsed.proof, opened.root)


def test_tlog_proof_with_empty_proof() -> None:
    """Index 0 of a one-entry log has no proof hashes: the index line meets the blank line."""
    tree = MerkleTree.from_leaf_inputs([b"only"])
    note = Checkpoint("o.example/log", 1, tree.root()).sign([Signer.generate("o.example/log")])
    text = TlogProof(0, (), note).serialize()
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    assert parse_tlog_proof(text) == TlogProof(0, (), note)


def _good_tlog_proof() -> str:
    note = Checkpoint("o.example/log", 2, leaf_hash(b"r")).sign([Signer.generate("o.example/log")])
    return TlogProof(1, (leaf_hash(b"a"),), note).serialize()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        lambda t: t.replace("index 1", "index 01"),
        lambda t: t.replace("index 1", "index -1"),
        lambda t: t.replace("index 1", "idx 1"),
        lambda t: t.replace("index 1\n", ""),
        lambda t: t.replace("index 1", "extra !!\nindex 1"),
        lambda t: t.replace("index 1\n", "index 1\nAAAA\n"),  # a 3-byte "hash"
        lambda t: t.replace("\n\n", "\n", 1),  # no blank line
        lambda t: t[:-1],  # checkpoint without its final newline
    ],
    ids=[
        "header",
        "leading-zero",
        "negative",
        "no-index-word",
        "no-index",
        "bad-extra",
        "short-hash",
        "no-blank-line",
        "bad-checkpoint",
    ],
)
def test_bad_tlog_proofs_raise(mutate: Any) -> None:
    """Documents off the tlog-proof grammar are NoteFormatError."""
    text = _good_tlog_proof()
    parse_tlog_proof(text)
    bad = mutate(text)
    assert bad != text
    with pytest.raises(NoteFormatError):
        parse_tlog_proof(bad)
