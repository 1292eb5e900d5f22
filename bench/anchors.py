"""Benchmark: anchoring one checkpoint to every kind of ledger on loopback.

Starts anvil, two witnesses (``trialproof witness serve``) and an openssl TSA, configures
them with the local ledger on a fresh home, then times :func:`pipeline.anchor.anchor`
in this process: the first anchoring (imports web3 and rfc3161-client, opens the
connections) apart, then N more, each after one more log entry. Reports the gas each
anchoring transaction used. ``python -m bench.run --only anchors`` or
``python -m bench.anchors``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.harness import Context, SuiteReport, fmt_seconds, machine_info, machine_line, now_utc

TARGET_SECONDS = 2.0


def _timed_anchorings(home_path: Path, runs: int) -> dict[str, Any]:
    from pipeline.anchor import anchor
    from pipeline.home import Home

    def once(tag: int) -> tuple[float, dict[str, Any]]:
        home = Home.open(home_path)
        home.log().append(f"bench entry {tag}".encode())
        start = time.perf_counter()
        result = anchor(home)
        elapsed = time.perf_counter() - start
        assert result is not None
        states = {name: state["state"] for name, state in result.ledgers.items()}
        if set(states.values()) != {"confirmed"}:
            raise RuntimeError(f"an anchoring did not confirm everywhere: {states}")
        return elapsed, result.receipts

    first, _ = once(0)
    times, gas = [], []
    for i in range(1, runs + 1):
        elapsed, receipts = once(i)
        times.append(elapsed)
        gas.append(int(receipts["anvil"]["gas_used"]))
    return {"first": first, "times": times, "gas": gas}


def run(ctx: Context) -> SuiteReport:
    from anchoring._internal.witness_service import init_witness
    from pipeline.demo_services import (
        ANVIL_KEY,
        OpensslTsa,
        anvil_process,
        free_port,
        make_tsa_ca,
        witness_process,
    )
    from pipeline.home import Home
    from pipeline.ledger_config import add_ledger

    runs = 3 if ctx.quick else 20
    started = now_utc()
    with tempfile.TemporaryDirectory(prefix="bench-anchors-") as scratch, ExitStack() as stack:
        base = Path(scratch)
        home = Home.init(base / "home", "bench.example.org/log")
        os.environ["TRIALPROOF_BENCH_CHAIN_KEY"] = ANVIL_KEY
        rpc = stack.enter_context(anvil_process(free_port()))
        add_ledger(home, {"name": "anvil", "type": "ethereum", "rpc": rpc, "chain_id": 31337,
                          "key_env": "TRIALPROOF_BENCH_CHAIN_KEY", "confirmations": 1})
        for name in ("w1", "w2"):
            vkey = init_witness(base / name, f"{name}.example.org").verifier.vkey
            url = stack.enter_context(witness_process(base / name, [home.verifier.vkey],
                                                      free_port()))
            add_ledger(home, {"name": name, "type": "witness", "url": url, "vkey": vkey})
        ca = make_tsa_ca(base / "tsa")
        tsa = stack.enter_context(OpensslTsa(ca))
        add_ledger(home, {"name": "tsa", "type": "tsa", "url": tsa.url,
                          "ca_file": str(ca / "ca.pem")})
        ctx.log(f"[anchors] anvil, 2 witnesses and a TSA up; {runs} anchorings")
        measured = _timed_anchorings(home.path, runs)
    times = measured["times"]
    median = statistics.median(times)
    data = {"started": started, "runs": runs, "first_seconds": measured["first"],
            "seconds": times, "median_seconds": median, "best_seconds": min(times),
            "worst_seconds": max(times), "gas_used": measured["gas"]}
    failures = []
    if median > TARGET_SECONDS:
        failures.append(f"median anchoring to all ledgers took {median:.2f} s "
                        f"(target {TARGET_SECONDS:.0f} s)")
    gas = sorted(set(measured["gas"]))
    markdown = "\n".join([
        f"_Measured {started} on {machine_line(ctx.machine)}._",
        "",
        "### Anchoring one checkpoint to all ledgers on loopback",
        "",
        "Ledgers: local, ethereum (anvil, 1 confirmation, instant mining), two witnesses "
        "(`trialproof witness serve`), one RFC 3161 TSA (`openssl ts -reply`). Time of "
        "`pipeline.anchor.anchor` in one process, after one more log entry each run.",
        "",
        "| anchorings | first (cold) | best | median | worst | target |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {runs} | {fmt_seconds(measured['first'])} | {fmt_seconds(min(times))} | "
        f"{fmt_seconds(median)} | {fmt_seconds(max(times))} | < {TARGET_SECONDS:.0f} s |",
        "",
        f"Gas per anchoring transaction: {', '.join(f'{g:,}' for g in gas)} "
        "(76 bytes of calldata; the same whatever the number of records).",
    ])
    return SuiteReport("anchors", data, markdown, failures)


if __name__ == "__main__":
    report = run(Context(quick="--quick" in sys.argv, machine=machine_info()))
    print(report.markdown)
    for failure in report.failures:
        print(f"FAILED CHECK: {failure}")
    sys.exit(1 if report.failures else 0)
