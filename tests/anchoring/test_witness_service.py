"""``trialproof witness serve`` as a real process: C2SP tlog-witness add-checkpoint answers,
durable state across a restart, and refusal to start without state."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ledger_nodes import free_port, trialproof, witness_process

from anchoring._internal.ledgers.witness_client import add_checkpoint_body
from anchoring._internal.log import TransparencyLog
from anchoring.checkpoint import Checkpoint
from anchoring.ledgers.witness import valid_cosigners
from anchoring.note import Signer, Verifier, parse_note

ORIGIN = "trials.example.org/log"


def post(url: str, body: bytes) -> tuple[int, str, str]:
    request = urllib.request.Request(f"{url}/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read().decode()


def grow(log: TransparencyLog, tag: str, count: int) -> None:
    for i in range(count):
        log.append(f"{tag}-{log.size()}-{i}".encode())


@pytest.fixture
def logs(tmp_path: Path) -> tuple[TransparencyLog, TransparencyLog, Signer]:
    """The honest log and a fork of it (same key, other entries after the first two)."""
    signer = Signer.generate(ORIGIN)
    honest = TransparencyLog(f"sqlite:///{tmp_path / 'honest.db'}", ORIGIN)
    fork = TransparencyLog(f"sqlite:///{tmp_path / 'fork.db'}", ORIGIN)
    grow(honest, "same", 2)
    grow(fork, "same", 2)
    return honest, fork, signer


@pytest.fixture
def witness_home(tmp_path: Path) -> tuple[Path, Verifier]:
    home = tmp_path / "witness"
    made = trialproof("witness", "init", "--name", "w1.example.org", "--home", str(home))
    assert made.returncode == 0, made.stderr
    vkey = made.stdout.strip()
    shown = trialproof("witness", "vkey", "--home", str(home))
    assert shown.stdout.strip() == vkey
    assert (home / "witness.skey").stat().st_mode & 0o077 == 0
    return home, Verifier.from_vkey(vkey)


def test_add_checkpoint_answers_as_the_spec_says(
    logs: tuple[TransparencyLog, TransparencyLog, Signer], witness_home: tuple[Path, Verifier],
) -> None:
    honest, fork, signer = logs
    home, witness = witness_home
    with witness_process(home, [signer.verifier.vkey], free_port()) as url:
        grow(honest, "honest", 1)
        first = honest.sign_checkpoint(signer)
        status, _, text = post(url, add_checkpoint_body(0, [], first))
        assert status == 200 and text.startswith("\u2014 w1.example.org ")
        assert valid_cosigners(first + text, [witness]) == [witness]

        # The same request again: the witness is at 3 now, and says so.
        assert post(url, add_checkpoint_body(0, [], first)) == (409, "text/x.tlog.size", "3\n")

        # A second root at the same size is a fork: 409.
        grow(fork, "forked", 1)
        forked = fork.sign_checkpoint(signer)
        assert post(url, add_checkpoint_body(3, [], forked))[:2] == (409, "text/x.tlog.size")

        # The fork grows on: its consistency proof from 3 does not lead from the root
        # the witness holds, so 422.
        grow(fork, "forked", 2)
        bad = add_checkpoint_body(3, fork.consistency_proof(3, 5), fork.sign_checkpoint(signer))
        assert post(url, bad)[0] == 422

        # The honest log extends what was cosigned: 200.
        grow(honest, "honest", 2)
        second = honest.sign_checkpoint(signer)
        status, _, text = post(url, add_checkpoint_body(3, honest.consistency_proof(3, 5), second))
        assert status == 200 and valid_cosigners(second + text, [witness]) == [witness]

        # Malformed, old past the checkpoint, a proof from 0, unknown key, unknown origin.
        assert post(url, b"nonsense")[0] == 400
        assert post(url, add_checkpoint_body(9, [], second))[0] == 400
        assert post(url, add_checkpoint_body(0, [b"\0" * 32], second))[0] == 400
        stranger = Checkpoint.from_body(parse_note(second).text).sign([Signer.generate(ORIGIN)])
        assert post(url, add_checkpoint_body(5, [], stranger))[0] == 403
        other = Checkpoint("other.example.org/log", 5, honest.root(5))
        signed_other = other.sign([Signer.generate("other.example.org/log")])
        assert post(url, add_checkpoint_body(0, [], signed_other))[0] == 404

    # Restarted from its state, it still refuses a rollback and a fork.
    with witness_process(home, [signer.verifier.vkey], free_port()) as url:
        assert post(url, add_checkpoint_body(3, [], first)) == (409, "text/x.tlog.size", "5\n")
        assert post(url, add_checkpoint_body(5, [], fork.sign_checkpoint(signer)))[0] == 409
        status, _, _ = post(url, add_checkpoint_body(5, [], second))
        assert status == 200

    # The signed checkpoints it refused as a fork or a bad proof are kept as evidence.
    with sqlite3.connect(home / "witness.db") as db:
        kept = db.execute("SELECT status, reason FROM refused ORDER BY id").fetchall()
    assert [status for status, _ in kept] == [409, 422, 409]
    assert kept[0][1] == "fork"


def test_a_witness_without_its_state_refuses_to_start(
    witness_home: tuple[Path, Verifier],
) -> None:
    home, _ = witness_home
    (home / "witness.db").unlink()
    started = subprocess.run(
        [sys.executable, "-m", "pipeline", "witness", "serve", "--home", str(home), "--log",
         Signer.generate(ORIGIN).verifier.vkey, "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert started.returncode == 2
    assert "missing" in started.stderr and "Traceback" not in started.stderr


def test_witness_init_refuses_to_replace_a_witness(witness_home: tuple[Path, Verifier]) -> None:
    home, _ = witness_home
    again = trialproof("witness", "init", "--name", "w2", "--home", str(home))
    assert again.returncode == 2 and "refusing" in again.stderr
    key = (home / "witness.skey").read_text()
    assert key.strip() not in again.stdout + again.stderr
