"""Ledger configuration, and anchoring to two witnesses running as real processes: a 2-of-2
policy holds, fails once a cosignature is stripped, and a witness that is down stays pending."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from ledger_nodes import free_port, ingest_sample, trialproof, witness_process
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring.note import Note, Verifier, parse_note
from pipeline.anchor import anchor, receipts_for
from pipeline.anchor_ledgers import anchorings
from pipeline.home import Home


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


def built(home: Home, dataset: str = "dm") -> BuiltDataset:
    return build_dataset(home.log(), home.signer, home.trial_salt_key("CDISCPILOT01"),
                         dataset=dataset, rows=6)


def test_ledger_add_list_remove(home: Home, tmp_path: Path) -> None:
    h = str(home.path)
    listed = json.loads(trialproof("ledger", "list", "--json", "--home", h).stdout)
    assert listed == {"ledgers": [{"name": "local", "type": "local"}]}
    key = tmp_path / "chain.key"
    key.write_text("0x" + "11" * 32)
    added = trialproof("ledger", "add", "ethereum", "--name", "chain", "--rpc",
                       "http://127.0.0.1:1", "--chain-id", "31337", "--key-file", str(key),
                       "--confirmations", "2", "--home", h)
    assert added.returncode == 0, added.stderr
    vkey = trialproof("witness", "init", "--name", "w", "--home", str(tmp_path / "w")).stdout
    assert trialproof("ledger", "add", "witness", "--name", "w", "--url", "http://127.0.0.1:2",
                      "--vkey", vkey.strip(), "--home", h).returncode == 0
    assert trialproof("ledger", "add", "tsa", "--name", "ts", "--url", "http://127.0.0.1:3",
                      "--home", h).returncode == 0
    shown = trialproof("ledger", "list", "--home", h)
    assert "11" * 32 not in shown.stdout  # only where the key is kept, never the key
    names = [s["name"] for s in json.loads(
        trialproof("ledger", "list", "--json", "--home", h).stdout)["ledgers"]]
    assert names == ["local", "chain", "w", "ts"]

    no_key = trialproof("ledger", "add", "ethereum", "--name", "c2", "--rpc", "http://x",
                        "--chain-id", "1", "--home", h)
    assert no_key.returncode == 2 and "--key-file" in no_key.stderr
    duplicate = trialproof("ledger", "add", "tsa", "--name", "ts", "--url", "http://x",
                           "--home", h)
    assert duplicate.returncode == 2 and "already" in duplicate.stderr
    not_a_witness_key = trialproof("ledger", "add", "witness", "--name", "w2", "--url",
                                   "http://x", "--vkey", home.verifier.vkey, "--home", h)
    assert not_a_witness_key.returncode == 2 and "cosignature" in not_a_witness_key.stderr
    assert trialproof("ledger", "remove", "local", "--home", h).returncode == 0
    missing = trialproof("ledger", "remove", "local", "--home", h)
    assert missing.returncode == 2 and "no ledger" in missing.stderr
    unknown = trialproof("anchor", "--ledger", "nope", "--home", h)
    assert unknown.returncode == 2 and "nope" in unknown.stderr


@pytest.fixture
def witnesses(tmp_path: Path, home: Home) -> Iterator[list[tuple[str, str, Path]]]:
    """Two witnesses as real processes, configured on the home: (name, vkey, home)."""
    with ExitStack() as stack:
        made = []
        for name in ("w1", "w2"):
            whome = tmp_path / name
            vkey = trialproof("witness", "init", "--name", f"{name}.example.org", "--home",
                              str(whome)).stdout.strip()
            url = stack.enter_context(witness_process(whome, [home.verifier.vkey], free_port()))
            added = trialproof("ledger", "add", "witness", "--name", name, "--url", url,
                               "--vkey", vkey, "--home", str(home.path))
            assert added.returncode == 0, added.stderr
            made.append((name, vkey, whome))
        yield made


def verify_cli(proof: Path, home: Home, *args: str) -> tuple[int, str]:
    done = trialproof("verify", str(proof), "--vkey", home.verifier.vkey, *args)
    return done.returncode, done.stdout + done.stderr


def test_two_witnesses_cosign_and_a_2_of_2_policy_holds(
    home: Home, witnesses: list[tuple[str, str, Path]], tmp_path: Path,
) -> None:
    data = built(home)
    first = anchor(Home.open(home.path))
    assert first is not None
    assert {n: s["state"] for n, s in first.ledgers.items()} == {
        "local": "confirmed", "w1": "confirmed", "w2": "confirmed"}
    note, receipts = receipts_for(home, first.size)
    assert len(parse_note(note).signatures) == 3 and list(receipts) == ["local"]

    proof_path = tmp_path / "proof.json"
    bundle = dataclasses.replace(data.record_proof(2), checkpoint=note,
                                 anchors=(receipts["local"],))
    proof_path.write_text(bundle.to_json())
    policy = [arg for _, vkey, _ in witnesses for arg in ("--witness", vkey)]
    assert verify_cli(proof_path, home, *policy, "--witness-threshold", "2")[0] == 0

    # Strip w2's cosignature: the 2-of-2 policy fails at the step "witness"; 1-of-2 holds.
    parsed = parse_note(note)
    w2 = Verifier.from_vkey(witnesses[1][1])
    stripped = Note(parsed.text, tuple(s for s in parsed.signatures if s.name != w2.name))
    proof_path.write_text(dataclasses.replace(bundle, checkpoint=stripped.serialize()).to_json())
    code, out = verify_cli(proof_path, home, *policy, "--witness-threshold", "2", "--json")
    assert code == 1 and json.loads(out.splitlines()[0])["step"] == "witness"
    assert verify_cli(proof_path, home, *policy, "--witness-threshold", "1")[0] == 0
    assert verify_cli(proof_path, home)[0] == 0  # no policy asked: the log's signature suffices

    # The next anchoring goes on from the size each witness cosigned.
    built(home, "ae")
    second = anchor(Home.open(home.path))
    assert second is not None and all(s["state"] == "confirmed" for s in second.ledgers.values())


def test_a_409_is_retried_from_the_witness_size(
    home: Home, witnesses: list[tuple[str, str, Path]],
) -> None:
    built(home)
    first = anchor(Home.open(home.path))
    assert first is not None
    # Forget that w1 cosigned: the client then starts from 0, gets 409 with the size it
    # cosigned, and retries with a consistency proof from that size.
    (home.path / "anchors" / f"{first.size:012d}" / "state" / "w1.json").unlink()
    built(home, "ae")
    second = anchor(Home.open(home.path), ["w1"])
    assert second is not None and second.ledgers["w1"]["state"] == "confirmed"
    assert list(second.ledgers) == ["w1"]


def test_a_witness_that_is_down_stays_pending_then_cosigns(home: Home, tmp_path: Path) -> None:
    whome = tmp_path / "w"
    vkey = trialproof("witness", "init", "--name", "w.example.org", "--home",
                      str(whome)).stdout.strip()
    port = free_port()
    h = str(home.path)
    assert trialproof("ledger", "add", "witness", "--name", "w", "--url",
                      f"http://127.0.0.1:{port}", "--vkey", vkey, "--home", h).returncode == 0
    built(home)
    done = trialproof("anchor", "--home", h)
    assert done.returncode == 0, done.stderr
    assert "w pending" in done.stdout
    listed = json.loads(trialproof("anchors", "--json", "--home", h).stdout)["anchorings"]
    state = listed[0]["ledgers"]["w"]
    assert state["state"] == "pending" and "127.0.0.1" in state["reason"]

    with witness_process(whome, [home.verifier.vkey], port):
        again = trialproof("anchor", "--home", h)
        assert again.returncode == 0 and "nothing to anchor" in again.stdout
        assert "w confirmed" in again.stdout
    rows = anchorings(Home.open(home.path))
    assert rows[0]["ledgers"]["w"]["state"] == "confirmed"
    assert rows[0]["ledgers"]["w"]["attempts"] == 2 and rows[0]["signatures"] == 2
    text = trialproof("anchors", "--home", h).stdout
    assert "w " in text and "confirmed" in text


def test_audit_checks_the_stored_cosignatures(
    home: Home, witnesses: list[tuple[str, str, Path]], tmp_path: Path,
) -> None:
    ingest_sample(home, tmp_path / "in")
    result = anchor(Home.open(home.path))
    assert result is not None
    assert trialproof("audit", "--home", str(home.path)).returncode == 0
    stored = home.path / "anchors" / f"{result.size:012d}" / "checkpoint.txt"
    parsed = parse_note(stored.read_text())
    w1 = Verifier.from_vkey(witnesses[0][1])
    stored.write_text(Note(parsed.text, tuple(
        s for s in parsed.signatures if s.name != w1.name)).serialize())
    audited = trialproof("audit", "--home", str(home.path))
    assert audited.returncode == 1 and "[witness]" in audited.stdout and "w1" in audited.stdout
