"""Real ledger services on loopback for tests: trialproof witnesses, anvil, an openssl TSA."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.demo_services import (
    ANVIL,
    ANVIL_KEY,
    OpensslTsa,
    anvil_process,
    free_port,
    make_tsa_ca,
    witness_process,
)

__all__ = ["ANVIL", "ANVIL_KEY", "OpensslTsa", "anvil_process", "free_port", "make_tsa_ca",
           "trialproof", "witness_process"]


def trialproof(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, check=False, env={**os.environ, **(env or {})})
