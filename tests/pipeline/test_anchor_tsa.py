"""Anchoring to a real RFC 3161 TSA on loopback (``openssl ts -reply`` behind an HTTP handler,
with a CA made here): the receipt verifies offline against the CA; a wrong imprint, an
untrusted CA and an expired TSA certificate do not."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from ledger_nodes import OpensslTsa, check_schema, free_port, ingest_sample, make_tsa_ca, trialproof
from trialproof_testkit import ORIGIN, build_dataset

from anchoring.checkpoint import Checkpoint
from anchoring.errors import VerificationError
from anchoring.ledgers.tsa import check_rfc3161_receipt, checkpoint_imprint, load_ca_file
from anchoring.note import parse_note
from pipeline.anchor import anchor, receipts_for
from pipeline.home import Home
from pipeline.prove import prove_record


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


def add_tsa(home: Home, url: str, ca: Path | None) -> None:
    extra = ["--ca-file", str(ca / "ca.pem")] if ca else []
    added = trialproof("ledger", "add", "tsa", "--name", "tsa", "--url", url, *extra,
                       "--home", str(home.path))
    assert added.returncode == 0, added.stderr


@pytest.mark.needs("openssl")
def test_time_stamp_anchoring_verifies_against_the_ca(home: Home, tmp_path: Path) -> None:
    ca = make_tsa_ca(tmp_path / "ca", label="trusted")
    ingest_sample(home, tmp_path / "in")
    with OpensslTsa(ca) as tsa:
        add_tsa(home, tsa.url, ca)
        result = anchor(Home.open(home.path))
    assert result is not None and result.ledgers["tsa"]["state"] == "confirmed"
    note, receipts = receipts_for(home, result.size)
    receipt = receipts["tsa"]
    assert receipt["type"] == "trialproof/rfc3161/v1"
    check_schema(receipt, "rfc3161-receipt.schema.json")
    assert receipt["chain"].count("BEGIN CERTIFICATE") == 2  # the TSA's, then the CA's
    checkpoint = Checkpoint.from_body(parse_note(note).text)
    check_rfc3161_receipt(receipt, checkpoint, note, load_ca_file(ca / "ca.pem"))

    proof = tmp_path / "proof.json"
    bundle = prove_record(Home.open(home.path), "T1", "lb", index=3)
    assert bundle.checkpoint == note and list(bundle.anchors) == list(receipts.values())
    proof.write_text(bundle.to_json())
    vkey = home.verifier.vkey
    checked = trialproof("verify", str(proof), "--vkey", vkey, "--tsa-ca",
                         str(ca / "ca.pem"), "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert [(a["type"], a["independent"]) for a in report["anchors"]] == [
        ("trialproof/local-ledger/v1", False), ("trialproof/rfc3161/v1", True)]
    assert receipt["gen_time"] in report["anchors"][1]["proves"]
    assert report["independently_anchored"] is True

    listed = json.loads(trialproof("anchors", "--json", "--home", str(home.path)).stdout)
    assert listed["anchorings"][0]["proven_time"] == receipt["gen_time"]

    # The audit checks the stored receipt against the configured CA.
    assert trialproof("audit", "--home", str(home.path)).returncode == 0
    stored = home.path / "anchors" / f"{result.size:012d}" / "tsa.json"
    stored.write_text(json.dumps({**receipt, "gen_time": "1999-01-01T00:00:00Z"}))
    audited = trialproof("audit", "--home", str(home.path))
    assert audited.returncode == 1 and "[receipt]" in audited.stdout and "tsa" in audited.stdout
    stored.write_text(json.dumps(receipt))

    # Another CA (with the same names, even) is not trusted.
    stranger = make_tsa_ca(tmp_path / "other", label="trusted")
    untrusted = trialproof("verify", str(proof), "--vkey", vkey, "--tsa-ca",
                           str(stranger / "ca.pem"))
    assert untrusted.returncode == 1 and "does not verify" in untrusted.stderr
    with pytest.raises(VerificationError, match="does not verify"):
        check_rfc3161_receipt(receipt, checkpoint, note, load_ca_file(stranger / "ca.pem"))

    # The token commits to this checkpoint's body: another one's imprint differs.
    other = Checkpoint(checkpoint.origin, checkpoint.size + 1, checkpoint.root).sign([home.signer])
    assert checkpoint_imprint(other) != checkpoint_imprint(note)
    with pytest.raises(VerificationError, match="imprint"):
        check_rfc3161_receipt(receipt, checkpoint, other, load_ca_file(ca / "ca.pem"))

    # A response for another checkpoint, grafted onto this proof, fails at the step anchor.
    forged = {**receipt, "gen_time": "2000-01-01T00:00:00Z"}
    proof.write_text(dataclasses.replace(bundle, anchors=(forged,)).to_json())
    tampered = trialproof("verify", str(proof), "--vkey", vkey, "--json")
    assert tampered.returncode == 1 and json.loads(tampered.stdout)["step"] == "anchor"

    # A receipt whose fields lack their form makes the proof malformed: exit 2, one line.
    for broken in ({"response": "not base64!"}, {"chain": 7}, {"gen_time": None}):
        proof.write_text(dataclasses.replace(bundle, anchors=({**receipt, **broken},)).to_json())
        malformed = trialproof("verify", str(proof), "--vkey", vkey)
        assert malformed.returncode == 2 and "anchors[0]" in malformed.stderr, broken
        assert malformed.stderr.count("\n") == 1


@pytest.mark.needs("openssl")
def test_an_expired_tsa_certificate_is_refused(home: Home, tmp_path: Path) -> None:
    ca = make_tsa_ca(tmp_path / "ca", expired=True)
    build_dataset(home.log(), home.signer, home.trial_salt_key("T"), rows=4)
    with OpensslTsa(ca) as tsa:
        add_tsa(home, tsa.url, ca)
        result = anchor(Home.open(home.path))
    assert result is not None
    state = result.ledgers["tsa"]
    assert state["state"] == "failed" and "expired" in state["reason"]
    assert "tsa" not in result.receipts


@pytest.mark.needs("openssl")
def test_a_tsa_that_is_down_stays_pending(home: Home, tmp_path: Path) -> None:
    ingest_sample(home, tmp_path / "in")
    ca = make_tsa_ca(tmp_path / "ca")
    port = free_port()
    add_tsa(home, f"http://127.0.0.1:{port}/", ca)
    first = anchor(Home.open(home.path))
    assert first is not None and first.ledgers["tsa"]["state"] == "pending"
    assert trialproof("audit", "--home", str(home.path)).returncode == 0  # not pending long
    config = json.loads((home.path / "config.json").read_text())
    (home.path / "config.json").write_text(json.dumps({**config, "anchor_pending_max_seconds": -1}))
    late = trialproof("audit", "--home", str(home.path))
    assert late.returncode == 1 and "[pending]" in late.stdout and "tsa" in late.stdout
    with OpensslTsa(ca, port):
        assert anchor(Home.open(home.path)) is None
    assert "tsa" in receipts_for(home, first.size)[1]


@pytest.mark.needs("openssl")
def test_a_tsa_without_a_ca_file(home: Home, tmp_path: Path) -> None:
    ca = make_tsa_ca(tmp_path / "ca")
    ingest_sample(home, tmp_path / "in")
    with OpensslTsa(ca) as tsa:
        add_tsa(home, tsa.url, None)
        result = anchor(Home.open(home.path))
    assert result is not None and result.ledgers["tsa"]["state"] == "confirmed"
    receipt = result.receipts["tsa"]
    assert receipt["chain"].count("BEGIN CERTIFICATE") == 1  # the TSA's own certificate
    proof = tmp_path / "proof.json"
    proof.write_text(prove_record(Home.open(home.path), "T1", "lb", index=0).to_json())
    vkey = home.verifier.vkey
    assert trialproof("verify", str(proof), "--vkey", vkey).returncode == 0
    trusted = trialproof("verify", str(proof), "--vkey", vkey, "--tsa-ca", str(ca / "ca.pem"))
    assert trusted.returncode == 0, trusted.stderr
    other = make_tsa_ca(tmp_path / "other")
    assert trialproof("verify", str(proof), "--vkey", vkey, "--tsa-ca",
                      str(other / "ca.pem")).returncode == 1
