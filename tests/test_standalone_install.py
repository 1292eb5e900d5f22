"""``pip install trialproof`` is the verifier alone: a wheel installed with only its base
dependencies (pinned by the lock; from uv's cache when it holds them) verifies a record
proof, and a sponsor-side command exits 2 with one line naming the extra to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trialproof_paths import REPO_ROOT
from trialproof_testkit import ORIGIN, build_dataset

from pipeline.home import Home

UV = Path(sys.executable).with_name("uv")
EXTRA_HINT = "pip install 'trialproof[pipeline]'"


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          check=False, timeout=300, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def verifier_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the trialproof wheel and its base dependencies."""
    if not UV.is_file():
        pytest.fail(f"uv is not installed beside {sys.executable}; run make install")
    base = tmp_path_factory.mktemp("standalone")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in ("anchoring", "pipeline"):
        shutil.copytree(REPO_ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    built = _run(UV, "build", "--wheel", "--offline", "-o", base / "dist", source)
    assert built.returncode == 0, built.stderr
    wheel = next((base / "dist").glob("trialproof-*.whl"))
    venv = base / "venv"
    made = _run(UV, "venv", "--offline", "--python", sys.executable, venv)
    assert made.returncode == 0, made.stderr
    install = (UV, "pip", "install", "--python", venv / "bin" / "python",
               "--constraint", REPO_ROOT / "requirements.lock", wheel)
    installed = _run(*install, "--offline")
    if installed.returncode != 0:  # uv's cache lacks a wheel (installed before): fetch it
        installed = _run(*install)
    assert installed.returncode == 0, installed.stderr
    return venv


def _installed(venv: Path) -> set[str]:
    listed = _run(UV, "pip", "freeze", "--python", venv / "bin" / "python")
    assert listed.returncode == 0, listed.stderr
    return {re.split(r"==| @ ", line)[0].lower() for line in listed.stdout.splitlines()
            if line.strip()}


def _trialproof(venv: Path, *args: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALPROOF_", "PYTHON"))}
    return _run(venv / "bin" / "trialproof", *args, env={**env, "TRIALPROOF_HOME": str(home)},
                cwd=home.parent)


@pytest.mark.slow
def test_the_base_install_is_the_verifier_alone(verifier_venv: Path, tmp_path: Path) -> None:
    assert _installed(verifier_venv) == {"trialproof", "cryptography", "cffi", "pycparser",
                                         "click"}
    home = Home.init(tmp_path / "home", ORIGIN)
    built = build_dataset(home.log(), home.signer, home.trial_salt_key("CDISCPILOT01"), rows=5)
    proof = tmp_path / "proof.json"
    proof.write_text(built.record_proof(3).to_json())

    verified = _trialproof(verifier_venv, "verify", proof, "--vkey", home.verifier.vkey,
                           home=home.path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("verified: record 3 of ")
    vkey = _trialproof(verifier_venv, "vkey", home=home.path)
    assert (vkey.returncode, vkey.stdout.strip()) == (0, home.verifier.vkey)

    tampered = tmp_path / "tampered.json"
    tampered.write_text(proof.read_text().replace('"leaf_index": 3', '"leaf_index": 2'))
    assert _trialproof(verifier_venv, "verify", tampered, "--vkey", home.verifier.vkey,
                       home=home.path).returncode == 1


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ("ingest", "dm.csv", "--trial", "T1", "--dataset", "dm"),
    ("versions", "--trial", "T1", "--dataset", "dm"),
    ("checkpoint",),
    ("prove", "--trial", "T1", "--dataset", "dm", "--index", "0", "--out", "p.json"),
    ("audit",),
    ("registry", "check"),
    ("init", "--origin", ORIGIN),
])
def test_pipeline_commands_name_the_extra(verifier_venv: Path, tmp_path: Path,
                                          command: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    if command[0] != "init":
        Home.init(home, ORIGIN)
    (tmp_path / "dm.csv").write_text("USUBJID\nS1\n")
    done = _trialproof(verifier_venv, *command, home=home)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and EXTRA_HINT in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    if command[0] == "init":
        assert not home.exists()  # nothing half made
