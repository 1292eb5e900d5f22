"""Adversarial proofs against the verifier's report and its trust rules: what a proof's
own strings can do to a terminal, and which keys may stand for a log or a witness."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from trialproof_testkit import BuiltDataset, build_dataset

from anchoring._internal.log import TransparencyLog
from anchoring.errors import ProofVerificationError
from anchoring.ledgers.witness import check_witness_policy, valid_cosigners
from anchoring.note import COSIGNATURE_V1, Signer, Verifier, parse_note
from anchoring.verify import verify_record_proof

ORIGIN = "trials.example.org/log"


@pytest.fixture
def built(tmp_path: Path) -> BuiltDataset:
    log = TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)
    return build_dataset(log, Signer.generate(ORIGIN), b"k" * 32, rows=6)


def run_verify(proof: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anchoring.verify", str(proof), *args],
                          capture_output=True, text=True, check=False)


def test_a_receipt_type_cannot_write_control_characters(built: BuiltDataset,
                                                         tmp_path: Path) -> None:
    """An unsigned receipt's type is shown escaped: it cannot hide the rest of the line or
    the line saying that no independent anchor was verified."""
    forged = "trialproof/ethereum/v1: verified; checked online\x1b[8m"
    proof = dataclasses.replace(built.record_proof(2), anchors=({"type": forged},))
    path = tmp_path / "proof.json"
    path.write_text(proof.to_json())
    done = run_verify(path, "--vkey", built.signer.verifier.vkey)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\\x1b[8m" in done.stdout
    assert "not checked" in done.stdout and "no independent anchor was verified" in done.stdout


def test_one_witness_key_trusted_under_two_names_counts_once(built: BuiltDataset) -> None:
    witness = Signer.generate("witness.example", COSIGNATURE_V1)
    alias = Verifier("witness.example/v2", COSIGNATURE_V1, witness.verifier.public_key)
    note = built.record_proof(0).checkpoint
    cosigned = note + witness.signature_line(parse_note(note).text)
    # The same cosignature copied under the alias's name and key ID.
    line = witness.signature_line(parse_note(note).text).split(" ", 2)
    raw = base64.b64decode(line[2])
    copied = f"— {alias.name} " + base64.b64encode(alias.key_id + raw[4:]).decode() + "\n"
    both = cosigned + copied
    assert len(valid_cosigners(both, [witness.verifier, alias])) == 1
    with pytest.raises(ProofVerificationError) as failed:
        check_witness_policy(both, [witness.verifier, alias], 2)
    assert failed.value.step.value == "witness"


def test_a_witness_key_is_no_log_key(built: BuiltDataset) -> None:
    """A checkpoint carrying only a witness's cosignature is not signed by the log, even
    when the witness's key is (wrongly) given as a trusted log key."""
    witness = Signer.generate("w1.example", COSIGNATURE_V1)
    proof = built.record_proof(1)
    text = parse_note(proof.checkpoint).text
    cosigned_only = text + "\n" + witness.signature_line(text)
    forged = dataclasses.replace(proof, checkpoint=cosigned_only)
    with pytest.raises(ProofVerificationError) as failed:
        verify_record_proof(forged, [witness.verifier])
    assert failed.value.step.value == "checkpoint signature"


def test_an_unreadable_tsa_ca_file_is_an_input_error(built: BuiltDataset, tmp_path: Path) -> None:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(built.record_proof(0).to_json_object()))
    done = run_verify(path, "--vkey", built.signer.verifier.vkey, "--tsa-ca",
                      str(tmp_path / "missing-ca.pem"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_vkey_that_is_neither_a_key_nor_a_file(built: BuiltDataset, tmp_path: Path) -> None:
    path = tmp_path / "proof.json"
    path.write_text(built.record_proof(0).to_json())
    done = run_verify(path, "--vkey", str(tmp_path / "no-such-vkey-file"))
    assert done.returncode == 2 and "neither a vkey" in done.stderr
