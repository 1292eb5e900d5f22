"""The Ethereum anchor payload (docs/formats.md §10) and the offline receipt check, including a
receipt for a later checkpoint that carries its consistency proof."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from trialproof_testkit import ORIGIN, build_dataset

from anchoring._internal.log import TransparencyLog
from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    ProofFormatError,
    ProofVerificationError,
    ReceiptFormatError,
    VerificationError,
)
from anchoring.ledgers.ethereum import anchor_payload, check_ethereum_receipt
from anchoring.note import Signer, parse_note
from anchoring.verify import verify_record_proof


def receipt_for(checkpoint: Checkpoint) -> dict[str, object]:
    return {
        "type": "trialproof/ethereum/v1", "chain_id": 31337, "tx_hash": "0x" + "1" * 64,
        "block_number": 7, "block_hash": "0x" + "2" * 64,
        "sender": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "payload": "0x" + anchor_payload(checkpoint).hex(), "confirmations": 1,
    }


def test_payload_layout() -> None:
    checkpoint = Checkpoint(ORIGIN, 258, bytes(range(32)))
    payload = anchor_payload(checkpoint)
    assert len(payload) == 76
    assert payload[:4] == b"TPA1"
    assert payload[4:36] == hashlib.sha256(ORIGIN.encode()).digest()
    assert payload[36:44] == (258).to_bytes(8, "big")
    assert payload[44:] == bytes(range(32))


def test_offline_check_binds_origin_size_and_root() -> None:
    checkpoint = Checkpoint(ORIGIN, 5, b"\x07" * 32)
    receipt = receipt_for(checkpoint)
    check_ethereum_receipt(receipt, checkpoint, "")
    for other in (Checkpoint("other.example.org/log", 5, b"\x07" * 32),
                  Checkpoint(ORIGIN, 6, b"\x07" * 32), Checkpoint(ORIGIN, 5, b"\x08" * 32)):
        with pytest.raises(VerificationError, match="does not commit"):
            check_ethereum_receipt(receipt, other, "")
    for name, bad in (("tx_hash", "0x12"), ("sender", "nobody"), ("chain_id", 0),
                      ("payload", "0x" + "ab" * 75)):
        with pytest.raises(ReceiptFormatError, match=name):
            check_ethereum_receipt({**receipt, name: bad}, checkpoint, "")


def test_a_malformed_ethereum_receipt_makes_the_proof_malformed(tmp_path: Path) -> None:
    """Malformed, not failed: the verifier exits 2 on it, as on any malformed proof."""
    signer = Signer.generate(ORIGIN)
    log = TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)
    proof = build_dataset(log, signer, b"k" * 32, rows=5).record_proof(2)
    checkpoint = Checkpoint.from_body(parse_note(proof.checkpoint).text)
    for name, bad in (("block_number", "7"), ("block_hash", None), ("tx_hash", "0x" + "G" * 64)):
        receipt = {**receipt_for(checkpoint), name: bad}
        with pytest.raises(ProofFormatError, match=f"anchors\\[0\\]: .*{name}"):
            verify_record_proof(dataclasses.replace(proof, anchors=(receipt,)), [signer.verifier])


def test_a_receipt_for_a_later_checkpoint_with_its_consistency_proof(tmp_path: Path) -> None:
    signer = Signer.generate(ORIGIN)
    log = TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)
    data = build_dataset(log, signer, b"k" * 32, rows=5)
    proof = data.record_proof(2)
    early = Checkpoint.from_body(parse_note(proof.checkpoint).text)
    for i in range(3):
        log.append(f"later {i}".encode())
    later_note = log.sign_checkpoint(signer)
    later = Checkpoint.from_body(parse_note(later_note).text)
    receipt = {**receipt_for(later), "checkpoint": later_note,
               "consistency_proof": [h.hex() for h in log.consistency_proof(early.size)]}
    verify_record_proof(dataclasses.replace(proof, anchors=(receipt,)), [signer.verifier])

    hashes = receipt["consistency_proof"]
    wrong = {**receipt, "consistency_proof": ["00" * 32, *hashes[1:]]}  # right length, wrong hash
    with pytest.raises(ProofVerificationError) as failed:
        verify_record_proof(dataclasses.replace(proof, anchors=(wrong,)), [signer.verifier])
    assert failed.value.step.value == "anchor"
    stale = receipt_for(early)  # commits to the proof's own checkpoint: fine too
    verify_record_proof(dataclasses.replace(proof, anchors=(stale,)), [signer.verifier])
