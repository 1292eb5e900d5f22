"""``trialproof download`` against a real server: it verifies, remembers checkpoints, and
leaves nothing behind when the served data was tampered with after anchoring."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TRIAL, ServedHome, start_server, stop_server
from trialproof_cli import trialproof

from anchoring._internal.tree import MerkleTree
from anchoring.canonical import canonical_json, leaf_input
from anchoring.checkpoint import Checkpoint
from anchoring.note import COSIGNATURE_V1, Signer, parse_note


def run_download(url: str, out: Path, config: Path, *args: str
                 ) -> subprocess.CompletedProcess[str]:
    return trialproof("download", url, "--trial", TRIAL, "--out", str(out), *args,
                      env={"XDG_CONFIG_HOME": str(config)})


@pytest.fixture
def own_server(own_home: ServedHome) -> Iterator[str]:
    process, url = start_server(own_home.path)
    yield url
    stop_server(process)


def test_download_verifies_and_writes_a_self_checking_records_file(
        server_url: str, served: ServedHome, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_download(server_url, out, tmp_path / "cfg", "--dataset", "dm",
                          "--vkey", served.vkey)
    assert result.returncode == 0, result.stderr
    assert "verified TRIAL01/dm v2: 41 records" in result.stdout
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert (out / "manifest.json").read_bytes() == canonical_json(manifest)
    assert manifest["version"] == 2
    table = pq.read_table(out / "records.parquet")
    assert table.column_names == ["USUBJID", "AGE", "WEIGHT", "RFSTDTC", "SEX", "_salt"]
    assert table.schema.field("AGE").type == pa.int64()
    assert table.schema.field("RFSTDTC").type == pa.date32()
    assert table.schema.field("_salt").type == pa.binary(32)
    # Anyone can recompute the root from the file alone.
    leaves = []
    for row in table.to_pylist():
        salt = row.pop("_salt")
        row["RFSTDTC"] = row["RFSTDTC"].isoformat()
        row["WEIGHT"] = float(row["WEIGHT"])
        leaves.append(leaf_input(salt, canonical_json(row)))
    assert MerkleTree.from_leaf_inputs(leaves).root().hex() == manifest["root"]
    note = (out / "checkpoint.txt").read_text()
    assert Checkpoint.from_body(parse_note(note).text).size == 3
    remembered = tmp_path / "cfg" / "trialproof" / "checkpoints" / "trials.example.org%2Flog"
    assert remembered.read_text() == note


def test_csv_format_and_an_older_version(server_url: str, served: ServedHome,
                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_download(server_url, out, tmp_path / "cfg", "--dataset", "dm", "--version",
                          "1", "--format", "csv", "--vkey", served.vkey)
    assert result.returncode == 0, result.stderr
    lines = (out / "records.csv").read_text().splitlines()
    assert lines[0] == '"USUBJID","AGE","WEIGHT","RFSTDTC","SEX","_salt"'
    assert len(lines) == 41 and not (out / "records.parquet").exists()


def test_untrusted_key_fails_at_the_checkpoint_signature(server_url: str,
                                                         tmp_path: Path) -> None:
    stranger = Signer.generate("trials.example.org/log").verifier.vkey
    out = tmp_path / "out"
    result = run_download(server_url, out, tmp_path / "cfg", "--dataset", "dm",
                          "--vkey", stranger)
    assert result.returncode == 1
    assert "checkpoint signature" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_tampered_records_fail_at_the_dataset_root_and_leave_nothing(
        own_home: ServedHome, own_server: str, tmp_path: Path) -> None:
    records = own_home.path / "datasets" / TRIAL / "dm" / "v2" / "records.parquet"
    table = pq.read_table(records)
    ages = table.column("AGE").to_pylist()
    ages[7] += 1
    pq.write_table(table.set_column(1, "AGE", pa.array(ages, table.schema.field("AGE").type)),
                   records)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run_download(own_server, out, tmp_path / "cfg", "--dataset", "dm",
                          "--vkey", own_home.vkey)
    assert result.returncode == 1
    assert "dataset root" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "cfg" / "trialproof" / "checkpoints").exists()


def test_tampered_manifest_fails_at_log_inclusion(own_home: ServedHome, own_server: str,
                                                  tmp_path: Path) -> None:
    # Rewrite the stored log entry of dm v2 (and its leaf hash, so the log still reads).
    entry = own_home.home.log().entry(1)
    forged = entry.leaf_input.replace(b'"records":41', b'"records":40')
    with own_home.home.log().serialized() as (conn, _size):
        conn.execute("UPDATE log_entries SET leaf_input = ?, leaf_hash = ? WHERE idx = 1",
                     (forged, hashlib.sha256(b"\x00" + forged).digest()))
    out = tmp_path / "out"
    result = run_download(own_server, out, tmp_path / "cfg", "--dataset", "dm",
                          "--vkey", own_home.vkey)
    assert result.returncode == 1
    assert "log inclusion" in result.stderr and not out.exists()


def test_checkpoints_are_remembered_and_checked_for_consistency(
        own_home: ServedHome, own_server: str, tmp_path: Path) -> None:
    from pipeline.anchor import anchor

    config = tmp_path / "cfg"
    first = run_download(own_server, tmp_path / "a", config, "--dataset", "ae",
                         "--vkey", own_home.vkey)
    assert first.returncode == 0, first.stderr
    own_home.home.log().append(b'{"type":"trialproof/document/v1"}')
    anchor(own_home.home)
    grown = run_download(own_server, tmp_path / "b", config, "--dataset", "ae",
                         "--vkey", own_home.vkey)
    assert grown.returncode == 0, grown.stderr
    remembered = config / "trialproof" / "checkpoints" / "trials.example.org%2Flog"
    assert remembered.read_text().startswith("trials.example.org/log\n4\n")
    # A fork: a checkpoint of the same size with another root, signed by the same key.
    forked = Checkpoint("trials.example.org/log", 4, hashlib.sha256(b"fork").digest())
    remembered.write_text(forked.sign([own_home.home.signer]))
    split = run_download(own_server, tmp_path / "c", config, "--dataset", "ae",
                         "--vkey", own_home.vkey)
    assert split.returncode == 1 and "consistency" in split.stderr
    assert not (tmp_path / "c").exists()


def test_witness_policy(own_home: ServedHome, own_server: str, tmp_path: Path) -> None:
    from pipeline.anchor import anchored

    witness = Signer.generate("witness.example.org", COSIGNATURE_V1)
    other = Signer.generate("other.example.org", COSIGNATURE_V1)
    config = tmp_path / "cfg"
    args = ("--dataset", "dm", "--vkey", own_home.vkey, "--witness", witness.verifier.vkey,
            "--witness", other.verifier.vkey, "--witness-threshold", "1")
    uncosigned = run_download(own_server, tmp_path / "a", config, *args)
    assert uncosigned.returncode == 1 and "witness cosignatures" in uncosigned.stderr
    # The witness cosigns the anchored checkpoint (C2SP tlog-cosignature).
    note_file = own_home.path / "anchors" / f"{anchored(own_home.home)[-1]:012d}" / \
        "checkpoint.txt"
    note = note_file.read_text()
    note_file.write_text(note + witness.signature_line(parse_note(note).text))
    cosigned = run_download(own_server, tmp_path / "b", config, *args)
    assert cosigned.returncode == 0, cosigned.stderr
    both = run_download(own_server, tmp_path / "c", config, *args[:-1], "2")
    assert both.returncode == 1 and "1 of the given witnesses" in both.stderr


def test_usage_errors_exit_2(server_url: str, served: ServedHome, tmp_path: Path) -> None:
    unknown = run_download(server_url, tmp_path / "o", tmp_path / "cfg", "--dataset", "lb",
                           "--vkey", served.vkey)
    assert unknown.returncode == 2 and "404" in unknown.stderr
    down = run_download("http://127.0.0.1:9", tmp_path / "o", tmp_path / "cfg", "--dataset",
                        "dm", "--vkey", served.vkey)
    assert down.returncode == 2 and "cannot connect" in down.stderr


def test_download_on_a_terminal_shows_its_progress(server_url: str, served: ServedHome,
                                                   tmp_path: Path) -> None:
    """On a terminal the step (and, for large transfers, a bar) shows on one rich display."""
    import pty
    import threading

    leader, follower = pty.openpty()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "120"}
    chunks: list[bytes] = []

    def drain() -> None:  # a terminal must be read, or the writer blocks
        try:
            while data := os.read(leader, 65536):
                chunks.append(data)
        except OSError:  # the terminal closed
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "download", server_url, "--trial", TRIAL,
         "--dataset", "dm", "--out", str(tmp_path / "out"), "--vkey", served.vkey],
        stdin=follower, stdout=subprocess.PIPE, stderr=follower, env=env)
    stdout, _ = process.communicate(timeout=120)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    shown = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, shown
    assert b"verified TRIAL01/dm v2" in stdout
    assert "download TRIAL01/dm" in shown and "Traceback" not in shown
    assert (tmp_path / "out" / "records.parquet").is_file()
