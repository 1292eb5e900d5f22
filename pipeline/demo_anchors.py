"""``make demo-anchors``: external anchors end to end, on loopback.

1. starts an EVM node (anvil), two witnesses (``trialproof witness serve``) and an
   RFC 3161 time-stamping authority (``openssl ts -reply`` with a throwaway CA);
2. creates a scratch home, ingests the example DM delivery, and configures the
   three kinds of ledger beside the local one;
3. anchors to all of them, and lists each ledger's state;
4. writes a record proof and verifies it with the log's vkey under a 2-of-2
   witness policy, the TSA's CA, and online against the chain.

Everything runs through the ``trialproof`` command line, as an operator would.
"""

from __future__ import annotations

__all__ = ["ORIGIN", "REPO", "main"]

import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "trials.example.org/log"


def _say(text: str) -> None:
    print(text, flush=True)


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, check=False, cwd=REPO,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise SystemExit(f"demo-anchors: `trialproof {args[0]}` failed: {done.stderr.strip()}")
    return done.stdout


def main() -> int:
    from pipeline.demo_services import (
        ANVIL,
        ANVIL_KEY,
        OpensslTsa,
        anvil_process,
        free_port,
        make_tsa_ca,
        witness_process,
    )

    if not ANVIL.is_file():
        raise SystemExit(f"demo-anchors: anvil is missing at {ANVIL}; run `make install`")
    scratch = Path(tempfile.mkdtemp(prefix="trialproof-anchors-"))
    home = scratch / "home"
    chain_env = {"TRIALPROOF_DEMO_CHAIN_KEY": ANVIL_KEY}  # anvil's public test key
    vkey = _run("init", "--origin", ORIGIN, "--home", str(home)).strip()
    _say(f"scratch home: {home}\nlog vkey: {vkey}")
    delivery = REPO / "examples" / "deliveries" / "CDISCPILOT01" / "dm" / "dm.xpt"
    _run("ingest", str(delivery), "--trial", "CDISCPILOT01", "--dataset", "dm", "--contract",
         "cdiscpilot01/sdtm/dm", "--home", str(home))
    _say("ingested CDISCPILOT01/dm v1")

    with ExitStack() as stack:
        rpc = stack.enter_context(anvil_process(free_port()))
        _say(f"anvil (chain 31337) at {rpc}")
        witness_keys = []
        for name in ("regulator", "cro"):
            whome = scratch / f"witness-{name}"
            wkey = _run("witness", "init", "--name", f"{name}.example.org", "--home",
                        str(whome)).strip()
            url = stack.enter_context(witness_process(whome, [vkey], free_port()))
            _run("ledger", "add", "witness", "--name", name, "--url", url, "--vkey", wkey,
                 "--home", str(home))
            witness_keys.append(wkey)
            _say(f"witness {name} at {url}: {wkey}")
        ca = make_tsa_ca(scratch / "tsa")
        tsa = stack.enter_context(OpensslTsa(ca))
        _say(f"time-stamping authority at {tsa.url}")
        _run("ledger", "add", "ethereum", "--name", "anvil", "--rpc", rpc, "--chain-id",
             "31337", "--key-env", "TRIALPROOF_DEMO_CHAIN_KEY", "--home", str(home))
        _run("ledger", "add", "tsa", "--name", "tsa", "--url", tsa.url, "--ca-file",
             str(ca / "ca.pem"), "--home", str(home))
        _say(_run("ledger", "list", "--home", str(home)).rstrip())

        started = time.perf_counter()
        _say(_run("anchor", "--home", str(home), env=chain_env).rstrip()
             + f"  [{time.perf_counter() - started:.2f} s]")
        _say(_run("anchors", "--home", str(home)).rstrip())

        proof = scratch / "proof.json"
        _run("prove", "--trial", "CDISCPILOT01", "--dataset", "dm", "--key",
             "STUDYID=CDISCPILOT01,USUBJID=01-701-1015", "--out", str(proof), "--home",
             str(home))
        policy = [arg for key in witness_keys for arg in ("--witness", key)]
        _say(_run("verify", str(proof), "--vkey", vkey, *policy, "--witness-threshold", "2",
                  "--tsa-ca", str(ca / "ca.pem"), "--online", "--rpc", rpc).rstrip())
        _say("  (2-of-2 witness policy, TSA chain to its CA, and the chain checked online)")
        _say(_run("audit", "--online", "--home", str(home)).rstrip())
    _say(f"\nrecord proof: {proof}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
