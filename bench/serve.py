"""The HTTP server under load: record proofs, checkpoint and tiles, and a verified download.

Setup (outside the timings): ingest the 1,000,000-row ``lb`` dataset of
:mod:`bench.ingest` into a home (``--quick``: 100,000 rows), add 65,536 further log
entries so that full level-0 and level-1 C2SP tiles exist, anchor, and start
``trialproof serve --workers 2`` on loopback. The load generator is one process of
asyncio connections speaking HTTP/1.1 keep-alive, on the same 2 CPUs as the server,
so the rates below are what the pair achieves together (a lower bound for the server).

Targets: >= 1,000 record proofs/s with p99 < 50 ms; >= 5,000 requests/s for
``/checkpoint`` and tiles; download + verification at >= 200,000 records/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import (
    Context,
    SuiteReport,
    fmt_seconds,
    markdown_table,
    now_utc,
    targets_table,
)

NAME = "serve"
N_RECORDS = 1_000_000
EXTRA_ENTRIES = 65_536
CONNECTIONS = 32
TARGET_PROOFS = 1_000.0
TARGET_P99_S = 0.050
TARGET_STATIC = 5_000.0
TARGET_DOWNLOAD = 200_000.0


# -- a small keep-alive HTTP/1.1 load generator ------------------------------------


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
                   ) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _load(port: int, paths: Callable[[], str], seconds: float, connections: int
                ) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                status = await _request(reader, writer, paths())
                latencies.append(time.perf_counter() - start)
                errors += status != 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "errors": errors,
        "seconds": elapsed,
        "rate": count / elapsed,
        "p50": latencies[count // 2] if count else None,
        "p99": latencies[min(count - 1, int(count * 0.99))] if count else None,
        "mean": statistics.fmean(latencies) if count else None,
        "connections": connections,
    }


def load(port: int, paths: Callable[[], str], seconds: float,
         connections: int = CONNECTIONS) -> dict[str, Any]:
    return asyncio.run(_load(port, paths, seconds, connections))


def _process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc), so that a
    rate can be given per server CPU-second, which other jobs on the machine do not skew."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def measured(pid: int, port: int, paths: Callable[[], str], seconds: float) -> dict[str, Any]:
    """:func:`load`, with the server's CPU seconds over the run."""
    before = _process_tree_cpu(pid)
    result = load(port, paths, seconds)
    cpu = _process_tree_cpu(pid) - before
    return {**result, "server_cpu_seconds": cpu,
            "per_server_cpu_second": result["requests"] / cpu if cpu > 0 else None}


def target(desc: str, shown: str, met: bool, cpu_view: str) -> dict[str, Any]:
    """One target as :func:`bench.harness.targets_table` and ``make bench`` report it."""
    return {"target": desc, "shown": shown, "met": met, "cpu_view": cpu_view}


# -- setup ---------------------------------------------------------------------------


def _home(ctx: Context, n: int) -> Path:
    """A home with the ``n``-row version and extra entries, anchored; reused when complete."""
    from bench.ingest import DATASET, TRIAL, Inputs, _new_home
    from pipeline.anchor import anchor, anchored
    from pipeline.contract import load_contract
    from pipeline.home import Home
    from pipeline.ingest import ingest

    path = ctx.out_dir / f"serve-home-{n}"
    done = path / ".complete"
    if done.exists():
        return path
    inputs = Inputs(ctx.out_dir, ctx.log)
    source = inputs.data(n, "parquet")
    home = _new_home(path)
    start = time.perf_counter()
    ingest(home, source, TRIAL, DATASET, load_contract(inputs.contract))
    home.log().append_many(
        json.dumps({"type": "trialproof/document/v1", "n": i}).encode()
        for i in range(EXTRA_ENTRIES))
    anchor(home)
    assert anchored(Home.open(path))
    done.write_text("ok\n")
    ctx.log(f"[serve] built {path.name} in {fmt_seconds(time.perf_counter() - start)}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(home: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "TRIALPROOF_LOG_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--home", str(home), "--port", str(port),
         "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def _download(port: int, n: int, vkey: str) -> dict[str, Any]:
    from anchoring.note import Verifier
    from bench.ingest import DATASET, TRIAL
    from pipeline.download import download

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CONFIG_HOME"] = tmp
        start = time.perf_counter()
        result = download(f"http://127.0.0.1:{port}", TRIAL, DATASET, Path(tmp) / "out",
                          [Verifier.from_vkey(vkey)])
        seconds = time.perf_counter() - start
    assert result.records == n
    return {"seconds": seconds, "rate": n / seconds, "records": n}


# -- the suite -------------------------------------------------------------------------


def run(ctx: Context) -> SuiteReport:
    from bench.ingest import DATASET, TRIAL
    from pipeline.home import Home

    n = ctx.size(N_RECORDS)
    seconds = 3.0 if ctx.quick else 10.0
    home_path = _home(ctx, n)
    vkey = Home.open(home_path).verifier.vkey
    started = now_utc()
    load_before = os.getloadavg()
    process, port = _start(home_path, workers=2)
    rng = random.Random(13)
    base = f"/api/v1/trials/{TRIAL}/datasets/{DATASET}/versions/1"
    results: dict[str, Any] = {}
    try:
        # Warm each worker: imports, the version's row groups, the key columns.
        load(port, lambda: f"{base}/proof?index={rng.randrange(n)}", 2.0 if ctx.quick else 5.0)
        results["proofs"] = measured(process.pid, port,
                                     lambda: f"{base}/proof?index={rng.randrange(n)}", seconds)
        results["checkpoint"] = measured(process.pid, port, lambda: "/checkpoint", seconds)
        full_tiles = EXTRA_ENTRIES // 256

        def tile() -> str:
            return rng.choice((f"/tile/0/{rng.randrange(full_tiles):03d}",
                               f"/tile/entries/{rng.randrange(full_tiles):03d}", "/tile/1/000"))

        load(port, tile, 2.0)  # a mirror's first pass: each worker reads tiles from the log once
        results["tiles"] = measured(process.pid, port, tile, seconds)
        # Best of two: the first run in this process also pays its imports.
        downloads = [_download(port, n, vkey) for _ in range(2)]
        results["download"] = min(downloads, key=lambda d: d["seconds"])
    finally:
        process.terminate()
        process.wait(timeout=30)
    load_after = os.getloadavg()
    for kind in ("proofs", "checkpoint", "tiles"):
        if results[kind]["errors"]:
            raise RuntimeError(f"{kind}: {results[kind]['errors']} responses were not 200")

    def ms(x: float | None) -> str:
        return "n/a" if x is None else f"{x * 1e3:.1f} ms"

    def per_cpu(r: dict[str, Any]) -> str:
        rate = r.get("per_server_cpu_second")
        return "n/a" if rate is None else f"{rate:,.0f}"

    p, c, t, d = (results[k] for k in ("proofs", "checkpoint", "tiles", "download"))
    targets = [
        target(">= 1,000 record proofs/s, p99 < 50 ms",
               f"{p['rate']:,.0f}/s, p99 {ms(p['p99'])}",
               p["rate"] >= TARGET_PROOFS and (p["p99"] or 1.0) < TARGET_P99_S,
               f"{per_cpu(p)} per server CPU-second"),
        target(">= 5,000 `/checkpoint` requests/s", f"{c['rate']:,.0f}/s",
               c["rate"] >= TARGET_STATIC, f"{per_cpu(c)} per server CPU-second"),
        target(">= 5,000 tile requests/s", f"{t['rate']:,.0f}/s",
               t["rate"] >= TARGET_STATIC, f"{per_cpu(t)} per server CPU-second"),
        target(f">= 200,000 records/s downloaded and verified ({n:,} records)",
               f"{d['rate']:,.0f}/s", d["rate"] >= TARGET_DOWNLOAD, "n/a"),
    ]
    rows = [[label, f"{r['rate']:,.0f} req/s", per_cpu(r), ms(r["p50"]), ms(r["p99"]),
             f"{r['requests']:,}"]
            for label, r in (("record proofs (`.../proof?index=N`, random N)", p),
                             ("`/checkpoint`", c),
                             ("tiles (`/tile/0/N`, `/tile/entries/N`, `/tile/1/000`)", t))]
    markdown = "\n".join([
        f"_Measured {started}; load average at start {load_before[0]:.2f}, at end "
        f"{load_after[0]:.2f}. {n:,} records in the version; the log holds "
        f"{EXTRA_ENTRIES + 1:,} entries. Server: `trialproof serve --workers 2`; load: "
        f"{CONNECTIONS} keep-alive connections from one asyncio process on the same 2 CPUs, "
        f"{seconds:.0f} s per row after a warm-up._",
        "",
        "### 1. Requests on loopback",
        "",
        markdown_table(["Route", "Rate", "Per server CPU-second", "p50", "p99", "Requests"],
                       rows),
        "",
        "_Per server CPU-second_: requests divided by the CPU time the server's processes "
        "used during the run. With 2 CPUs to itself the server could reach about twice "
        "that, less what a load generator takes.",
        "",
        "### 2. Download and verification",
        "",
        markdown_table(
            ["What", "Time", "Rate"],
            [[f"`trialproof download` of {n:,} records (Parquet): fetch, recompute every "
              "leaf and the root, check the manifest's inclusion and the signature, write",
              fmt_seconds(d["seconds"]), f"{d['rate']:,.0f} records/s"]]),
        "",
        "### Serve targets",
        "",
        targets_table(targets),
    ])
    data = {"measured_at": started, "records": n, "load_before": load_before,
            "load_after": load_after, **results, "targets": targets}
    shutil.rmtree(ctx.out_dir / "serve-tmp", ignore_errors=True)
    return SuiteReport(NAME, data, markdown)
