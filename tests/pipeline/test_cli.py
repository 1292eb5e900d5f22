"""The trialproof CLI end to end: init, vkey, checkpoint, consistency, verify and its exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trialproof_cli import trialproof
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring.merkle.verify import verify_consistency
from anchoring.note import Verifier
from anchoring.record_proof import RECORD_PROOF_FIELDS
from pipeline.cli import main
from pipeline.home import Home


def run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    return trialproof(*args, env={"TRIALPROOF_HOME": str(home)} if home is not None else None)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    result = run("init", "--origin", ORIGIN, "--home", str(tmp_path / "home"))
    assert result.returncode == 0, result.stderr
    Verifier.from_vkey(result.stdout.strip())
    return Home.open(tmp_path / "home")


@pytest.fixture
def built(home: Home) -> BuiltDataset:
    log = home.log()
    build_dataset(log, home.signer, home.trial_salt_key("CDISCPILOT01"), dataset="ae", rows=4)
    return build_dataset(log, home.signer, home.trial_salt_key("CDISCPILOT01"), rows=9)


def test_init_refuses_to_overwrite_keys(home: Home) -> None:
    result = run("init", "--origin", ORIGIN, "--home", str(home.path))
    assert result.returncode == 2
    assert "already" in result.stderr and "Traceback" not in result.stderr


def test_vkey_defaults_to_the_environment_home(home: Home) -> None:
    result = run("vkey", home=home.path)
    assert result.returncode == 0
    assert result.stdout.strip() == home.verifier.vkey


def test_commands_on_a_missing_home_exit_2(tmp_path: Path) -> None:
    result = run("vkey", "--home", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "trialproof init" in result.stderr


def test_checkpoint_and_consistency(home: Home, built: BuiltDataset) -> None:
    first = run("checkpoint", "--home", str(home.path))
    assert first.returncode == 0
    assert first.stdout.startswith(f"{ORIGIN}\n2\n")
    build_dataset(home.log(), home.signer, home.trial_salt_key("T2"), trial="T2", rows=3)
    second = run("checkpoint", "--home", str(home.path))
    assert second.stdout.startswith(f"{ORIGIN}\n3\n")
    result = run("consistency", "--from", "2", "--home", str(home.path), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    verify_consistency(
        2,
        3,
        bytes.fromhex(payload["old_root"]),
        bytes.fromhex(payload["new_root"]),
        [bytes.fromhex(h) for h in payload["proof"]],
    )
    bad = run("consistency", "--from", "5", "--home", str(home.path))
    assert bad.returncode == 2 and "log size 3" in bad.stderr


def test_verify_exit_codes(home: Home, built: BuiltDataset, tmp_path: Path) -> None:
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(built.record_proof(4).to_json())
    ok = run("verify", str(proof_file), "--vkey", home.verifier.vkey)
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout

    obj = json.loads(proof_file.read_text())
    obj["record"]["AGE"] += 1
    proof_file.write_text(json.dumps(obj))
    failed = run("verify", str(proof_file), "--vkey", home.verifier.vkey, "--json")
    assert failed.returncode == 1
    payload = json.loads(failed.stdout)
    assert {k: payload.pop(k) for k in ("verified", "step", "reason")} == {
        "verified": False,
        "step": "dataset path",
        "reason": failed.stderr.split(": ", 2)[2].strip(),
    }
    assert payload["expected_root"] == obj["manifest"]["root"]
    assert sorted(payload) == ["computed_root", "expected_root", "leaf_hash"]
    assert len(failed.stderr.strip().splitlines()) == 1

    proof_file.write_text("{not json")
    malformed = run("verify", str(proof_file), "--vkey", home.verifier.vkey)
    assert malformed.returncode == 2
    assert "Traceback" not in malformed.stderr and "not valid JSON" in malformed.stderr


def test_verify_with_a_vkey_file_and_an_untrusted_key(
    home: Home, built: BuiltDataset, tmp_path: Path
) -> None:
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(built.record_proof(0).to_json())
    keys = tmp_path / "trusted.vkeys"
    keys.write_text(home.verifier.vkey + "\n")
    assert run("verify", str(proof_file), "--vkey", str(keys)).returncode == 0
    other = Home.init(tmp_path / "other", ORIGIN)
    result = run("verify", str(proof_file), "--vkey", other.verifier.vkey)
    assert result.returncode == 1
    assert "checkpoint signature" in result.stderr
    garbage = run("verify", str(proof_file), "--vkey", "not-a-vkey")
    assert garbage.returncode == 2


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    field=st.sampled_from([*RECORD_PROOF_FIELDS, "type"]),
    value=_json_values,
    drop=st.booleans(),
    junk=st.binary(max_size=40),
)
def test_fuzzed_proofs_exit_1_or_2_never_crash(
    home: Home,
    built: BuiltDataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: object,
    drop: bool,
    junk: bytes,
) -> None:
    original = built.record_proof(2)
    obj = json.loads(original.to_json())
    if drop:
        obj.pop(field)
    else:
        obj[field] = value
    proof_file = tmp_path / "fuzz.json"
    proof_file.write_bytes(json.dumps(obj).encode() + (junk if len(junk) % 3 == 0 else b""))
    with pytest.raises(SystemExit) as info:
        main(["verify", str(proof_file), "--vkey", home.verifier.vkey])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    if info.value.code == 0:  # only a mutation that changed nothing may verify
        from anchoring.record_proof import parse_record_proof

        assert parse_record_proof(proof_file.read_bytes()) == original
        return
    assert info.value.code in (1, 2), err
    assert len(err.strip().splitlines()) == 1
