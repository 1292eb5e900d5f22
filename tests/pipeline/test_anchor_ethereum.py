"""Anchoring to a real EVM node (Foundry's anvil on loopback): one transaction per anchoring
with the 76-byte payload, offline and online verification, and the fault cases."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ledger_nodes import (
    ANVIL_KEY,
    anvil_process,
    check_schema,
    free_port,
    ingest_sample,
    trialproof,
)
from trialproof_testkit import ORIGIN, build_dataset

from anchoring.checkpoint import Checkpoint
from anchoring.ledgers.ethereum import JsonRpc, anchor_payload
from anchoring.note import parse_note
from pipeline.anchor import receipts_for
from pipeline.anchor_ledgers import anchoring_folder, anchorings, read_states
from pipeline.home import Home
from pipeline.prove import prove_record

ENV = {"TP_CHAIN_KEY": ANVIL_KEY}


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


@pytest.fixture
def built(home: Home) -> Home:
    build_dataset(home.log(), home.signer, home.trial_salt_key("T"), rows=5)
    return home


def add_chain(home: Home, rpc: str, *extra: str, chain_id: int = 31337) -> None:
    added = trialproof("ledger", "add", "ethereum", "--name", "chain", "--rpc", rpc,
                       "--chain-id", str(chain_id), "--key-env", "TP_CHAIN_KEY", *extra,
                       "--home", str(home.path))
    assert added.returncode == 0, added.stderr


def anchor(home: Home) -> dict[str, Any]:
    done = trialproof("anchor", "--json", "--home", str(home.path), env=ENV)
    assert done.returncode == 0, done.stderr
    assert ANVIL_KEY[2:] not in done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def chain_state(home: Home) -> dict[str, Any]:
    return dict(anchorings(Home.open(home.path))[-1]["ledgers"]["chain"])


def check_first_receipt(result: dict[str, Any]) -> dict[str, Any]:
    """The chain receipt of the first anchoring: its schema, payload and gas."""
    assert result["ledgers"]["chain"]["state"] == "confirmed"
    receipt = dict(result["receipts"]["chain"])
    checkpoint = Checkpoint.from_body(parse_note(result["checkpoint"]).text)
    assert receipt["type"] == "trialproof/ethereum/v1" and receipt["chain_id"] == 31337
    check_schema(receipt, "ethereum-receipt.schema.json")
    assert bytes.fromhex(receipt["payload"][2:]) == anchor_payload(checkpoint)
    assert len(anchor_payload(checkpoint)) == 76
    # Intrinsic gas only: 21,000 plus calldata, at the EIP-7623 floor where it applies.
    payload = anchor_payload(checkpoint)
    zeros = payload.count(0)
    tokens = zeros + 4 * (len(payload) - zeros)
    assert receipt["gas_used"] == max(21_000 + 4 * tokens, 21_000 + 10 * tokens)
    return receipt


def check_tampered_receipts(home: Home, proof: Path, bundle: Any, receipts: dict[str, Any],
                            first_payload: str, anchored_size: int, rpc: str) -> None:
    """A payload for another root fails offline; another block hash fails online."""
    vkey = home.verifier.vkey
    chain_receipt = receipts["chain"]
    bad_payload = {**chain_receipt, "payload": first_payload}
    proof.write_text(dataclasses.replace(
        bundle, anchors=(receipts["local"], bad_payload)).to_json())
    failed = trialproof("verify", str(proof), "--vkey", vkey, "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["step"] == "anchor"
    moved = {**chain_receipt, "block_hash": "0x" + "ab" * 32}
    proof.write_text(dataclasses.replace(bundle, anchors=(receipts["local"], moved)).to_json())
    assert trialproof("verify", str(proof), "--vkey", vkey).returncode == 0
    online = trialproof("verify", str(proof), "--vkey", vkey, "--online", "--rpc", rpc)
    assert online.returncode == 1 and "block" in online.stderr
    stored = home.path / "anchors" / f"{anchored_size:012d}" / "chain.json"
    stored.write_text(json.dumps(moved))
    assert trialproof("audit", "--home", str(home.path)).returncode == 0
    audited = trialproof("audit", "--online", "--home", str(home.path))
    assert audited.returncode == 1 and "[receipt]" in audited.stdout


@pytest.mark.needs("anvil")
def test_anchor_verify_offline_and_online(home: Home, tmp_path: Path) -> None:
    ingest_sample(home, tmp_path / "in")
    with anvil_process(free_port()) as rpc:
        add_chain(home, rpc)
        receipt = check_first_receipt(anchor(home))

        node = JsonRpc(rpc)
        tx = node.call("eth_getTransactionByHash", receipt["tx_hash"])
        assert tx["input"] == receipt["payload"]

        # A record proof carrying the receipt verifies offline and online.
        ingest_sample(home, tmp_path / "in", dataset="ae", seed=2)
        second = anchor(home)
        assert second["ledgers"]["chain"]["state"] == "confirmed"
        assert int(node.call("eth_getTransactionCount", receipt["sender"], "latest"), 16) == 2
        note, receipts = receipts_for(home, second["size"])
        bundle = prove_record(Home.open(home.path), "T1", "ae", index=1)
        assert bundle.checkpoint == note and len(bundle.anchors) == 2
        proof = tmp_path / "proof.json"
        proof.write_text(bundle.to_json())
        vkey = home.verifier.vkey
        offline = trialproof("verify", str(proof), "--vkey", vkey)
        assert offline.returncode == 0, offline.stderr
        assert "self-asserted (local ledger, not independent)" in offline.stdout
        assert f"ethereum chain 31337, block {receipts['chain']['block_number']}" in (
            offline.stdout)
        assert "no independent anchor was verified" in offline.stdout
        # Offline, a chain receipt is not an independent anchor; checked online, it is.
        assert trialproof("verify", str(proof), "--vkey", vkey,
                          "--require-anchor", "independent").returncode == 1
        online = trialproof("verify", str(proof), "--vkey", vkey, "--online", "--rpc", rpc,
                            "--require-anchor", "independent")
        assert online.returncode == 0, online.stderr
        assert "checked online" in online.stdout

        assert trialproof("audit", "--online", "--home", str(home.path)).returncode == 0

        check_tampered_receipts(home, proof, bundle, receipts, receipt["payload"],
                                second["size"], rpc)

    # The secret stays out of the home's files.
    for path in home.path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt"):
            assert ANVIL_KEY[2:] not in path.read_text()


@pytest.mark.needs("anvil")
def test_wrong_chain_id_is_refused(built: Home) -> None:
    home = built
    with anvil_process(free_port()) as rpc:
        add_chain(home, rpc, chain_id=1)
        result = anchor(home)
    state = result["ledgers"]["chain"]
    assert state["state"] == "failed" and "refusing" in state["reason"]
    assert "chain" not in result["receipts"]


@pytest.mark.needs("anvil")
def test_gas_errors_are_one_line(built: Home) -> None:
    home = built
    with anvil_process(free_port()) as rpc:
        add_chain(home, rpc)
        poor = trialproof("anchor", "--json", "--home", str(home.path),
                          env={"TP_CHAIN_KEY": "0x" + "42" * 32})
    state = json.loads(poor.stdout)["ledgers"]["chain"]
    assert state["state"] == "failed" and "funds" in state["reason"]
    assert "\n" not in state["reason"] and "42" * 32 not in poor.stdout + poor.stderr


@pytest.mark.needs("anvil")
def test_node_down_stays_pending_then_anchors(built: Home) -> None:
    home = built
    port = free_port()
    add_chain(home, f"http://127.0.0.1:{port}")
    result = anchor(home)
    assert result["ledgers"]["chain"]["state"] == "pending"
    assert "unreachable" in result["ledgers"]["chain"]["reason"]
    assert result["ledgers"]["local"]["state"] == "confirmed"
    listed = trialproof("anchors", "--home", str(home.path)).stdout
    assert "pending" in listed and "unreachable" in listed
    with anvil_process(port) as _rpc:
        again = trialproof("anchor", "--home", str(home.path), env=ENV)
        assert again.returncode == 0, again.stderr
        state = chain_state(home)
        assert state["state"] == "confirmed" and state["attempts"] == 2
        size = anchorings(Home.open(home.path))[-1]["size"]
        assert "chain" in receipts_for(home, size)[1]
    # Stop the node again: nothing pending, nothing lost.
    assert chain_state(home)["state"] == "confirmed"


@pytest.mark.needs("anvil")
def test_a_reorg_that_drops_the_transaction_is_resubmitted(built: Home) -> None:
    home = built
    with anvil_process(free_port()) as rpc:
        node = JsonRpc(rpc)
        snapshot = node.call("evm_snapshot")
        add_chain(home, rpc, "--confirmations", "2")
        first = anchor(home)
        state = first["ledgers"]["chain"]
        assert state["state"] == "pending" and "1 of 2" in state["reason"]
        dropped = state["data"]["tx_hash"]

        assert node.call("evm_revert", snapshot) is True  # the block with the tx is gone
        assert node.call("eth_getTransactionByHash", dropped) is None
        anchor(home)
        state = chain_state(home)
        assert state["state"] == "pending" and "resubmitted" in state["reason"]

        node.call("evm_mine")
        anchor(home)
        assert chain_state(home)["state"] == "confirmed"
        size = anchorings(Home.open(home.path))[-1]["size"]
        receipt = receipts_for(home, size)[1]["chain"]
        assert receipt["tx_hash"] != dropped
        assert node.call("eth_getTransactionByHash", receipt["tx_hash"])["input"] == (
            receipt["payload"])


@pytest.mark.needs("anvil")
def test_a_reorg_after_confirmation_is_detected_and_resubmitted(built: Home,
                                                               tmp_path: Path) -> None:
    home = built
    with anvil_process(free_port()) as rpc:
        add_chain(home, rpc)
        first = anchor(home)
        assert first["ledgers"]["chain"]["state"] == "confirmed"
        old = first["receipts"]["chain"]
        node = JsonRpc(rpc)
        node.call("anvil_reorg", 1, [])  # the block holding the anchoring is replaced
        assert node.call("eth_getTransactionByHash", old["tx_hash"]) is None

        again = anchor(home)
        assert again["anchored"] is False
        state = read_states(anchoring_folder(home, first["size"]))["chain"]
        assert state["state"] == "confirmed" and old["tx_hash"] in state["data"]["dropped"]
        renewed = receipts_for(home, first["size"])[1]["chain"]
        assert renewed["tx_hash"] != old["tx_hash"] and renewed["payload"] == old["payload"]
        tx = node.call("eth_getTransactionByHash", renewed["tx_hash"])
        assert tx["blockHash"] == renewed["block_hash"]


@pytest.mark.needs("anvil")
def test_a_node_answering_errors_leaves_the_other_ledgers_alone(built: Home) -> None:
    home = built

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        add_chain(home, f"http://127.0.0.1:{server.server_address[1]}")
        result = anchor(home)
    finally:
        server.shutdown()
        server.server_close()
    assert result["ledgers"]["local"]["state"] == "confirmed"
    chain = result["ledgers"]["chain"]
    assert chain["state"] == "pending" and "500" in chain["reason"]
    assert "\n" not in chain["reason"]
