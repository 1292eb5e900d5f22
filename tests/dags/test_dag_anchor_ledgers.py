"""The anchor DAG anchors to the configured external ledgers with the same code as the CLI,
and a later run retries what was pending (a witness that was down)."""

from __future__ import annotations

import pytest
from airflow_sandbox import Sandbox
from ledger_nodes import free_port, trialproof, witness_process

from pipeline.anchor_ledgers import anchorings
from pipeline.home import Home

pytestmark = pytest.mark.usefixtures("execution_api")


def test_anchor_dag_retries_a_pending_witness(sandbox: Sandbox) -> None:
    sandbox.register({})
    home = Home.open(sandbox.tp_home)
    home.log().append(b"an entry to anchor")
    whome = sandbox.root / "witness"
    vkey = trialproof("witness", "init", "--name", "w.example.org", "--home",
                      str(whome)).stdout.strip()
    port = free_port()
    added = trialproof("ledger", "add", "witness", "--name", "w", "--url",
                       f"http://127.0.0.1:{port}", "--vkey", vkey, "--home", str(home.path))
    assert added.returncode == 0, added.stderr

    (first,) = sandbox.dag_test("anchor")
    assert first["state"] == "success", sandbox.outputs[-1][-3000:]
    (row,) = anchorings(Home.open(home.path))
    assert row["ledgers"]["local"]["state"] == "confirmed"
    assert row["ledgers"]["w"]["state"] == "pending"

    with witness_process(whome, [home.verifier.vkey], port):
        (second,) = sandbox.dag_test("anchor")
    assert second["state"] == "success"
    assert "nothing to anchor" in sandbox.outputs[-1]
    (row,) = anchorings(Home.open(home.path))
    assert row["ledgers"]["w"]["state"] == "confirmed" and row["signatures"] == 2
