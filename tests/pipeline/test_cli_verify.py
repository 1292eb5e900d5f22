"""`trialproof verify` and `python -m anchoring.verify`: what they print, their flags and their
exit statuses (0 verified, 1 a step failed, 2 malformed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring._internal.ledgers.local import LocalLedger
from anchoring._internal.log import TransparencyLog
from anchoring._internal.tree import MerkleTree
from anchoring.canonical import canonical_json, leaf_input, record_salt
from anchoring.ledgers.receipts import local_entry_hash
from anchoring.manifest import MANIFEST_TYPE, manifest_leaf_input
from anchoring.note import Signer
from anchoring.record_proof import build_entry_proof, build_record_proof
from pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]
LOCAL = "self-asserted (local ledger, not independent)"


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)


@pytest.fixture
def built(log: TransparencyLog) -> BuiltDataset:
    signer = Signer.generate(ORIGIN)
    build_dataset(log, signer, b"k" * 32, dataset="ae", rows=3)
    return build_dataset(log, signer, b"k" * 32, rows=7)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["verify", *args])
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


def _write(tmp_path: Path, text: str, name: str = "proof.json") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_verify_prints_what_it_verified(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, tmp_path: Path
) -> None:
    proof = built.record_proof(3)
    path = _write(tmp_path, proof.to_json())
    code, out, err = cli(capsys, path, "--vkey", built.signer.verifier.vkey)
    assert code == 0, err
    leaf = hashlib.sha256(b"\x00" + built.salts[3] + canonical_json(built.records[3])).hexdigest()
    for text in ("CDISCPILOT01", "dataset dm", "version 1", leaf, f"origin {ORIGIN}",
                 "leaf index 3", "anchors: none",
                 f'identifying columns USUBJID="{built.records[3]["USUBJID"]}"'):
        assert text in out, text

    code, out, _ = cli(capsys, path, "--vkey", built.signer.verifier.vkey, "--json")
    payload = json.loads(out)
    assert payload["canonical_record"] == canonical_json(built.records[3]).decode()
    assert payload["record"] == built.records[3]
    assert (payload["trial"], payload["dataset"], payload["version"]) == ("CDISCPILOT01", "dm", 1)
    assert (payload["leaf_hash"], payload["origin"]) == (leaf, ORIGIN)
    assert payload["anchors"] == [] and payload["anchored"] is False
    assert payload["key"] is None
    assert payload["identifying"] == {"USUBJID": built.records[3]["USUBJID"]}


def _keyed_dataset(
    log: TransparencyLog, signer: Signer, contract: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[bytes], MerkleTree, dict[str, Any], int]:
    records = [{"USUBJID": f"S-{i}", "LBSEQ": i % 2, "LBORRES": str(i)} for i in range(4)]
    salts = [record_salt(b"k" * 32, "T1", "lb", [r["USUBJID"], r["LBSEQ"]], version=2)
             for r in records]
    tree = MerkleTree.from_leaf_inputs(
        [leaf_input(s, canonical_json(r)) for s, r in zip(salts, records, strict=True)]
    )
    manifest: dict[str, Any] = {
        "type": MANIFEST_TYPE, "trial": "T1", "dataset": "lb", "version": 2,
        "contract": {"name": "lb", "sha256": hashlib.sha256(canonical_json(contract)).hexdigest()},
        "source": {"name": "lb.csv", "sha256": "b" * 64, "bytes": 10},
        "records": 4, "root": tree.root().hex(), "previous": None,
        "validation": {"success": True, "report_sha256": "c" * 64},
        "ingested_at": "2026-11-29T12:00:00Z",
    }
    index = log.append(manifest_leaf_input(manifest)).index
    return records, salts, tree, manifest, index


def test_contract_names_the_records_key(
    capsys: pytest.CaptureFixture[str], log: TransparencyLog, tmp_path: Path
) -> None:
    signer = Signer.generate(ORIGIN)
    contract = {"name": "lb", "fields": [{"name": "USUBJID", "type": "string"},
                                         {"name": "LBSEQ", "type": "integer"},
                                         {"name": "LBORRES", "type": "string"}],
                "primaryKey": ["USUBJID", "LBSEQ"]}
    records, salts, tree, manifest, index = _keyed_dataset(log, signer, contract)
    proof = build_record_proof(record=records[2], salt=salts[2], leaf_index=2, dataset_tree=tree,
                               dataset_size=4, manifest=manifest, log=log, log_index=index,
                               checkpoint=log.sign_checkpoint(signer))
    path = _write(tmp_path, proof.to_json())
    contract_path = _write(tmp_path, json.dumps(contract, indent=1), "lb.json")
    vkey = signer.verifier.vkey
    code, out, err = cli(capsys, path, "--vkey", vkey, "--contract", contract_path)
    assert code == 0, err
    assert 'record key: USUBJID="S-2", LBSEQ=0' in out
    code, out, _ = cli(capsys, path, "--vkey", vkey, "--contract", contract_path, "--json")
    payload = json.loads(out)
    assert payload["key"] == {"USUBJID": "S-2", "LBSEQ": 0}
    assert payload["key_columns"] == ["USUBJID", "LBSEQ"]

    other = _write(tmp_path, json.dumps({**contract, "primaryKey": ["LBORRES"]}), "other.json")
    code, _, err = cli(capsys, path, "--vkey", vkey, "--contract", other)
    assert code == 2 and "not the contract the version's manifest names" in err


def test_altered_record_names_record_and_salt(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, tmp_path: Path
) -> None:
    obj = json.loads(built.record_proof(3).to_json())
    obj["record"]["SEX"] = "X"
    path = _write(tmp_path, json.dumps(obj))
    code, out, err = cli(capsys, path, "--vkey", built.signer.verifier.vkey)
    assert code == 1
    assert err.strip() == (
        "trialproof: verification failed at step 'dataset path': the record or its salt "
        "does not match the version's root (record leaf / dataset path)"
    )
    code, out, _ = cli(capsys, path, "--vkey", built.signer.verifier.vkey, "--json")
    payload = json.loads(out)
    assert payload["expected_root"] == obj["manifest"]["root"]
    assert payload["computed_root"] != payload["expected_root"]


def test_origin_is_printed_and_can_be_required(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, tmp_path: Path
) -> None:
    path = _write(tmp_path, built.record_proof(1).to_json())
    vkey = built.signer.verifier.vkey
    assert cli(capsys, path, "--vkey", vkey, "--origin", ORIGIN)[0] == 0
    code, _, err = cli(capsys, path, "--vkey", vkey, "--origin", "evil.example/log")
    assert code == 1
    assert "step 'checkpoint signature'" in err and "evil.example/log" in err


def test_require_anchor(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, log: TransparencyLog,
    tmp_path: Path,
) -> None:
    proof = built.record_proof(1)
    vkey = built.signer.verifier.vkey
    bare = _write(tmp_path, proof.to_json(), "bare.json")
    unknown = _write(tmp_path, dataclasses.replace(
        proof, anchors=({"type": "example/notary/v9", "seal": "x"},)).to_json(), "unknown.json")
    receipt = LocalLedger(log).submit(proof.checkpoint)
    local = _write(tmp_path, dataclasses.replace(proof, anchors=(receipt,)).to_json(), "l.json")

    assert cli(capsys, bare, "--vkey", vkey)[0] == 0
    code, out, _ = cli(capsys, unknown, "--vkey", vkey)
    assert code == 0 and "example/notary/v9: not checked" in out
    for path in (bare, unknown):
        for flags in (["--require-anchor"], ["--require-anchor", "independent"]):
            code, _, err = cli(capsys, path, "--vkey", vkey, *flags)
            assert code == 1 and "step 'anchor'" in err, (path, flags)
        # the flag's value is optional, also right before the proof
        code, _, err = cli(capsys, "--require-anchor", path, "--vkey", vkey)
        assert code == 1 and "step 'anchor'" in err

    code, out, err = cli(capsys, local, "--vkey", vkey, "--require-anchor")
    assert code == 0, err
    assert f"trialproof/local-ledger/v1: verified; {LOCAL}" in out
    assert cli(capsys, "--require-anchor", local, "--vkey", vkey)[0] == 0
    code, _, err = cli(capsys, local, "--vkey", vkey, "--require-anchor", "independent")
    assert code == 1 and "step 'anchor'" in err and "independent" in err
    code, _, err = cli(capsys, local, "--vkey", vkey, "--require-anchor", "bogus")
    assert code == 2


def test_a_forged_bitcoin_receipt_reads_as_self_asserted(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, log: TransparencyLog,
    tmp_path: Path,
) -> None:
    proof = built.record_proof(1)
    receipt = LocalLedger(log).submit(proof.checkpoint)
    body = {k: v for k, v in receipt.items() if k != "entry_hash"}
    body["ledger"] = "bitcoin-mainnet"
    forged = {**body, "entry_hash": local_entry_hash(body)}
    path = _write(tmp_path, dataclasses.replace(proof, anchors=(forged,)).to_json())
    vkey = built.signer.verifier.vkey
    code, out, _ = cli(capsys, path, "--vkey", vkey)
    assert code == 0
    assert LOCAL in out and "bitcoin" not in out
    assert "no independent anchor" in out
    code, out, _ = cli(capsys, path, "--vkey", vkey, "--json")
    payload = json.loads(out)
    assert payload["independently_anchored"] is False
    assert payload["anchors"][0]["independent"] is False
    assert cli(capsys, path, "--vkey", vkey, "--require-anchor", "independent")[0] == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda text: '{"record": {"AGE": 1}, ' + text.lstrip()[1:],  # duplicate key
        lambda text: text.replace('"anchors": []', '"anchors": [{"type": "x", "a": ' + "[" * 985
                                  + "]" * 985 + "}]"),
        lambda text: text.replace('"log_size": 2', '"log_size": 0'),
        lambda text: text.replace('"leaf_index": 1', '"leaf_index": 7'),
        lambda text: text.replace('"leaf_index": 1', '"leaf_index": 1.5'),
        lambda text: text.replace('"SEX": "F"', '"SEX": "\\udc00"'),
        lambda text: text.replace('"AGE": 61', '"AGE": 1e999'),
    ],
    ids=["duplicate", "nested", "size-0", "index-past-size", "fraction", "surrogate", "range"],
)
def test_structural_faults_exit_2(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, tmp_path: Path, mutate: Any
) -> None:
    text = built.record_proof(1).to_json()
    changed = mutate(text)
    assert changed != text
    code, _, err = cli(capsys, _write(tmp_path, changed), "--vkey", built.signer.verifier.vkey)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_integral_leaf_index_verifies(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, tmp_path: Path
) -> None:
    text = built.record_proof(1).to_json().replace('"leaf_index": 1', '"leaf_index": 1.0')
    assert cli(capsys, _write(tmp_path, text), "--vkey", built.signer.verifier.vkey)[0] == 0


def test_entry_proofs_are_detected(
    capsys: pytest.CaptureFixture[str], built: BuiltDataset, tmp_path: Path
) -> None:
    proof = build_entry_proof(entry=built.manifest, log=built.log, log_index=built.log_index,
                              checkpoint=built.log.sign_checkpoint(built.signer))
    path = _write(tmp_path, proof.to_json())
    code, out, err = cli(capsys, path, "--vkey", built.signer.verifier.vkey, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["type"] == "trialproof/entry-proof/v1"
    assert payload["entry_type"] == MANIFEST_TYPE and payload["entry"] == built.manifest
    edited = json.loads(proof.to_json())
    edited["entry"]["records"] = 8
    code, _, err = cli(capsys, _write(tmp_path, json.dumps(edited)), "--vkey",
                       built.signer.verifier.vkey)
    assert code == 1 and "step 'log path'" in err


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ), check=False, timeout=120)


def test_verify_refuses_dev_zero_quickly() -> None:
    vkey = Signer.generate(ORIGIN).verifier.vkey
    started = time.monotonic()
    for command in (["-m", "pipeline", "verify"], ["-m", "anchoring.verify"]):
        result = _run(*command, "/dev/zero", "--vkey", vkey)
        assert result.returncode == 2, result.stderr
        assert "larger than" in result.stderr and "MemoryError" not in result.stderr
    assert time.monotonic() - started < 60


def test_python_m_anchoring_verify_is_the_same_verifier(
    built: BuiltDataset, tmp_path: Path
) -> None:
    """The standalone tool: the CLI's exit statuses and output, no warning, stdlib+cryptography."""
    vkey = built.signer.verifier.vkey
    good = _write(tmp_path, built.record_proof(2).to_json(), "good.json")
    obj = json.loads(built.record_proof(2).to_json())
    obj["record"]["AGE"] += 1
    tampered = _write(tmp_path, json.dumps(obj), "tampered.json")
    malformed = _write(tmp_path, "{not json", "malformed.json")
    for path, status in ((good, 0), (tampered, 1), (malformed, 2)):
        for extra in ([], ["--json"], ["--require-anchor"], ["--origin", ORIGIN]):
            ours = _run("-m", "anchoring.verify", path, "--vkey", vkey, *extra)
            theirs = _run("-m", "pipeline", "verify", path, "--vkey", vkey, *extra)
            expected = 1 if extra == ["--require-anchor"] and status == 0 else status
            assert (ours.returncode, theirs.returncode) == (expected, expected), ours.stderr
            assert ours.stdout == theirs.stdout
            assert len(ours.stderr.strip().splitlines()) == (expected != 0)
            assert "Warning" not in ours.stderr and "Traceback" not in ours.stderr
    usage = _run("-m", "anchoring.verify", good)
    assert usage.returncode == 2 and "--vkey" in usage.stderr
