"""A real home for the server tests: two datasets ingested from CSV, two versions, anchored."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.home import Home

ORIGIN = "trials.example.org/log"
TRIAL = "TRIAL01"
CONTRACT = {
    "name": "dm",
    "fields": [
        {"name": "USUBJID", "type": "string"},
        {"name": "AGE", "type": "integer"},
        {"name": "WEIGHT", "type": "number"},
        {"name": "RFSTDTC", "type": "date"},
        {"name": "SEX", "type": "string"},
    ],
    "primaryKey": ["USUBJID"],
}


def dm_csv(rows: int, changed: int | None = None) -> str:
    lines = ["USUBJID,AGE,WEIGHT,RFSTDTC,SEX"]
    for i in range(rows):
        age = 99 if i == changed else 40 + i % 40
        lines.append(f"S-{1000 + i},{age},{60 + i / 4},2024-01-{1 + i % 28:02d},"
                     f"{'F' if i % 2 else 'M'}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ServedHome:
    home: Home
    vkey: str

    @property
    def path(self) -> Path:
        return self.home.path


def build_home(base: Path, rows: int = 40) -> ServedHome:
    """Ingest dm v1 (rows), dm v2 (one changed, one added) and ae v1; anchor; ingest nothing
    more, so the anchored checkpoint covers everything."""
    from pipeline.anchor import anchor
    from pipeline.contract import load_contract
    from pipeline.ingest import ingest

    home = Home.init(base / "home", ORIGIN)
    contract_path = base / "dm.json"
    contract_path.write_text(json.dumps(CONTRACT))
    contract = load_contract(contract_path)
    deliveries = base / "deliveries"
    deliveries.mkdir()
    for name, text, dataset in (("dm1.csv", dm_csv(rows), "dm"),
                                ("dm2.csv", dm_csv(rows + 1, changed=3), "dm"),
                                ("ae1.csv", dm_csv(5), "ae")):
        (deliveries / name).write_text(text)
        ingest(home, deliveries / name, TRIAL, dataset, contract)
    anchor(home)
    return ServedHome(home, home.verifier.vkey)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedHome:
    """One home shared by the read-only tests (never modify it)."""
    return build_home(tmp_path_factory.mktemp("served"))


@pytest.fixture
def own_home(tmp_path: Path) -> ServedHome:
    """A home of the test's own, free to tamper with."""
    return build_home(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """``trialproof serve`` on a free loopback port, once it answers."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--home", str(home), "--port", str(port),
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"serve exited: {error}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("serve did not start within 30 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server_url(served: ServedHome) -> Iterator[str]:
    """A real ``trialproof serve`` over the shared home."""
    process, url = start_server(served.path)
    yield url
    stop_server(process)
