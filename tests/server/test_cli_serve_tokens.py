"""``trialproof tokens`` and ``trialproof serve`` as commands."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from conftest import ORIGIN, ServedHome, start_server, stop_server
from trialproof_cli import trialproof

from pipeline.home import Home
from pipeline.server.tokens import TokenStore


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return trialproof(*args, env={"TRIALPROOF_HOME": str(home)})


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    made = run(home.path, "tokens", "create", "--name", "uploader", "--trial", "TRIAL01")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tpt_") and len(token) > 40
    assert TokenStore(home.path).find(token) is not None
    assert token not in (home.path / "tokens.json").read_text()
    assert oct((home.path / "tokens.json").stat().st_mode & 0o777) == "0o600"
    listed = run(home.path, "tokens", "list", "--json")
    assert json.loads(listed.stdout)["tokens"][0]["name"] == "uploader"
    assert token not in listed.stdout
    again = run(home.path, "tokens", "create", "--name", "uploader", "--trial", "TRIAL01")
    assert again.returncode == 2 and "exists" in again.stderr
    bad = run(home.path, "tokens", "create", "--name", "x", "--trial", "../etc")
    assert bad.returncode == 2
    assert run(home.path, "tokens", "revoke", "uploader").returncode == 0
    assert TokenStore(home.path).find(token) is None
    missing = run(home.path, "tokens", "revoke", "uploader")
    assert missing.returncode == 2 and "no token" in missing.stderr


def test_serve_with_two_workers_answers_from_each(served: ServedHome) -> None:
    process, url = start_server(served.path, "--workers", "2")
    try:
        for _ in range(6):
            with urllib.request.urlopen(f"{url}/api/v1/vkeys", timeout=10) as response:
                assert json.loads(response.read())["log"] == served.vkey
    finally:
        stop_server(process)


def test_serve_refuses_a_missing_home(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere", "serve", "--port", "0")
    assert result.returncode == 2 and "trialproof init" in result.stderr
