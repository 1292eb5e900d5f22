"""The local anchor ledger and receipt checks, on a real SQLite log."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import jsonschema
import pytest
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring._internal.ledgers.local import LocalLedger
from anchoring._internal.log import TransparencyLog
from anchoring.checkpoint import Checkpoint
from anchoring.errors import (
    ProofFormatError,
    ProofVerificationError,
    VerificationError,
    VerificationStep,
)
from anchoring.ledgers.receipts import OFFLINE_CHECKS, ReceiptKind, check_local_receipt
from anchoring.note import Signer, parse_note
from anchoring.verify import verify_record_proof

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "formats" / "local-receipt.schema.json"


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)


def _checkpoint(note: str) -> Checkpoint:
    return Checkpoint.from_body(parse_note(note).text)


def test_receipts_chain_verify_and_match_the_schema(log: TransparencyLog) -> None:
    signer = Signer.generate(ORIGIN)
    ledger = LocalLedger(log)
    receipts = []
    for i in range(3):
        log.append(f"entry {i}".encode())
        note = log.sign_checkpoint(signer)
        receipts.append((ledger.submit(note), note))
    for receipt, note in receipts:
        ledger.verify(receipt, note)
        jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(receipt)
    assert [r["index"] for r, _ in receipts] == [0, 1, 2]
    assert receipts[1][0]["previous"] == receipts[0][0]["entry_hash"]
    with pytest.raises(VerificationError, match="not this checkpoint"):
        ledger.verify(receipts[0][0], receipts[1][1])


def test_an_altered_receipt_or_ledger_row_is_caught(log: TransparencyLog, tmp_path: Path) -> None:
    signer = Signer.generate(ORIGIN)
    ledger = LocalLedger(log)
    log.append(b"a")
    first = log.sign_checkpoint(signer)
    receipt = ledger.submit(first)
    log.append(b"b")
    ledger.submit(log.sign_checkpoint(signer))
    forged = dict(receipt, anchored_at="2020-01-01T00:00:00Z")
    with pytest.raises(VerificationError, match="altered"):
        check_local_receipt(forged, _checkpoint(first), first)
    with sqlite3.connect(tmp_path / "log.db") as conn:
        row = json.loads(conn.execute(
            "SELECT receipt FROM anchor_local_ledger WHERE idx = 0").fetchone()[0])
        row["size"] = 99
        conn.execute("UPDATE anchor_local_ledger SET receipt = ? WHERE idx = 0",
                     (json.dumps(row),))
    with pytest.raises(VerificationError, match="entry 0 was altered"):
        ledger.verify_chain()


def _anchored_dataset(log: TransparencyLog) -> tuple[BuiltDataset, LocalLedger]:
    signer = Signer.generate(ORIGIN)
    built = build_dataset(log, signer, b"k" * 32, rows=6)
    return built, LocalLedger(log)


def test_a_record_proof_with_its_receipt_verifies(log: TransparencyLog) -> None:
    built, ledger = _anchored_dataset(log)
    proof = built.record_proof(2)
    receipt = ledger.submit(proof.checkpoint)
    verify_record_proof(dataclasses.replace(proof, anchors=(receipt,)), [built.signer.verifier])


def test_a_receipt_for_a_later_checkpoint_needs_a_valid_consistency_proof(
    log: TransparencyLog,
) -> None:
    built, ledger = _anchored_dataset(log)
    proof = built.record_proof(2)
    for i in range(5):
        log.append(f"later {i}".encode())
    later = log.sign_checkpoint(built.signer)
    receipt = ledger.submit(later)
    consistency = [h.hex() for h in log.consistency_proof(proof.log_size, log.size())]
    attached = dict(receipt, checkpoint=later, consistency_proof=consistency)
    verify_record_proof(dataclasses.replace(proof, anchors=(attached,)), [built.signer.verifier])

    broken = dict(attached, consistency_proof=["00" * 32, *consistency[1:]])
    with pytest.raises(ProofVerificationError) as info:
        verify_record_proof(dataclasses.replace(proof, anchors=(broken,)),
                            [built.signer.verifier])
    assert info.value.step is VerificationStep.ANCHOR
    missing = {k: v for k, v in attached.items() if k != "consistency_proof"}
    with pytest.raises(ProofVerificationError, match="consistency_proof"):
        verify_record_proof(dataclasses.replace(proof, anchors=(missing,)),
                            [built.signer.verifier])


def test_submitting_a_size_again_returns_its_receipt_not_a_second_entry(
    log: TransparencyLog,
) -> None:
    """An anchoring killed after its submit and run again: one entry per size."""
    signer = Signer.generate(ORIGIN)
    ledger = LocalLedger(log)
    log.append(b"a")
    first_note = log.sign_checkpoint(signer)
    first = ledger.submit(first_note)
    log.append(b"b")
    second = ledger.submit(log.sign_checkpoint(signer))
    assert ledger.submit(first_note) == first
    assert LocalLedger(log).submit(log.sign_checkpoint(signer)) == second
    assert [e["size"] for e in ledger.entries()] == [1, 2]
    ledger.verify_chain()
    with pytest.raises(VerificationError, match="already anchors another checkpoint at size 2"):
        ledger.submit(_other_checkpoint(signer, size=2))
    assert len(ledger.entries()) == 2


def _other_checkpoint(signer: Signer, size: int) -> str:
    """A checkpoint of another tree of the same size."""
    return Checkpoint(ORIGIN, size, bytes(32)).sign([signer])


def test_read_only_ledger_reads_without_creating_its_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with TransparencyLog(url, ORIGIN) as log:
        log.append(b"a")
    with TransparencyLog(url, ORIGIN, read_only=True) as log:
        ledger = LocalLedger(log)
        assert ledger.entries() == [] and ledger.chain_problems() == []
    with sqlite3.connect(tmp_path / "log.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "anchor_local_ledger" not in tables


def test_every_edit_of_a_ledger_row_is_named(log: TransparencyLog, tmp_path: Path) -> None:
    signer = Signer.generate(ORIGIN)
    ledger = LocalLedger(log)
    for leaf in (b"a", b"b"):
        log.append(leaf)
        ledger.submit(log.sign_checkpoint(signer))
    assert ledger.chain_problems() == []
    with sqlite3.connect(tmp_path / "log.db") as conn:
        conn.execute("UPDATE anchor_local_ledger SET entry_hash = ? WHERE idx = 1", ("0" * 64,))
        conn.execute("UPDATE anchor_local_ledger SET receipt = 'not json' WHERE idx = 0")
    assert ledger.chain_problems() == [
        "local ledger entry 0 has another entry_hash than its receipt",
        "local ledger entry 0 has index None",
        "local ledger entry 0 was altered",
        "local ledger entry 1 has another entry_hash than its receipt",
        "local ledger entry 1 does not link to entry 0",
    ]


def test_a_later_checkpoints_consistency_proof_must_be_lowercase_hex(
    log: TransparencyLog,
) -> None:
    """Every receipt type, not only the local one, carries hashes as 64 lowercase hex digits."""
    built, _ = _anchored_dataset(log)
    proof = built.record_proof(2)
    log.append(b"later")
    later = log.sign_checkpoint(built.signer)
    consistency = [h.hex() for h in log.consistency_proof(proof.log_size, log.size())]
    witness = ReceiptKind(check=lambda receipt, checkpoint, note: None, independent=True,
                          proves="cosigned by a test witness")
    kinds = {**OFFLINE_CHECKS, "test/witness/v1": witness}
    receipt = {"type": "test/witness/v1", "checkpoint": later, "consistency_proof": consistency}
    verify_record_proof(dataclasses.replace(proof, anchors=(receipt,)),
                        [built.signer.verifier], kinds)
    shouting = dict(receipt, consistency_proof=[h.upper() for h in consistency])
    with pytest.raises(ProofFormatError, match="lowercase hex"):
        verify_record_proof(dataclasses.replace(proof, anchors=(shouting,)),
                            [built.signer.verifier], kinds)
