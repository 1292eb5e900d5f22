"""Measurement harness shared by the benchmark suites.

Every measured run happens in a fresh ``spawn``-ed process:

1. the task function (``module:function``) does its setup (load inputs, open
   a database, warm up imports) and returns the step to measure;
2. the child collects garbage, resets the kernel's peak-RSS counter (writes
   ``5`` to ``/proc/self/clear_refs``, Linux >= 4.0) and reads the baseline
   ``VmRSS``;
3. it times the step once with ``time.perf_counter``, then reads ``VmHWM``:
   ``peak = VmHWM - baseline`` is the peak resident memory the step added,
   whoever allocated it (Python, Arrow, polars, SQLite, mmap'd pages touched).

If ``clear_refs`` cannot be written, the fallback is ``ru_maxrss`` minus the
baseline, which undercounts when the setup itself peaked higher. Repeating a
measurement means another fresh process; the suites report the best (min)
time and the largest peak over the runs.

A task returns either ``step`` or ``(step, after)``; ``after(step_result)``
runs outside the timing and returns a JSON-able dict (roots, proof checks...)
that the parent sees as ``extra``.
"""

from __future__ import annotations

import datetime as dt
import gc
import importlib
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
DOC_PATH = ROOT / "docs" / "benchmarks.md"


# -- memory ------------------------------------------------------------------------


def _status_kb(name: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _rss_bytes() -> int:
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # pragma: no cover


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS. False if the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the child ---------------------------------------------------------------------


def _child(conn: Any, target: str, params: dict[str, Any]) -> None:
    try:
        module_name, func_name = target.split(":")
        task = getattr(importlib.import_module(module_name), func_name)
        prepared = task(**params)
        step, after = prepared if isinstance(prepared, tuple) else (prepared, None)
        gc.collect()
        exact = _reset_peak()
        baseline = _rss_bytes()
        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        result = step()
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
        if exact:
            peak = (_status_kb("VmHWM") or 0) * 1024 - baseline
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
        extra = after(result) if after is not None else {}
        conn.send({
            "ok": True,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "peak_bytes": max(peak, 0),
            "baseline_bytes": baseline,
            "memory_method": "VmHWM after clear_refs" if exact else "ru_maxrss - baseline",
            "extra": extra or {},
        })
    except ImportError as exc:
        conn.send({"ok": False, "not_installed": True, "error": f"{type(exc).__name__}: {exc}"})
    except BaseException as exc:
        conn.send({
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        })
    finally:
        conn.close()


@dataclass
class Measurement:
    """The runs of one measured step (each in its own process)."""

    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    not_installed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)

    @property
    def best(self) -> float:
        return min(run["seconds"] for run in self.runs)

    @property
    def peak(self) -> int:
        return max(run["peak_bytes"] for run in self.runs)

    @property
    def cpu(self) -> float:
        """The least CPU time (user + sys, all threads) of a run."""
        return min(run["cpu_seconds"] for run in self.runs)

    @property
    def extra(self) -> dict[str, Any]:
        """The ``extra`` of the fastest run."""
        return min(self.runs, key=lambda run: run["seconds"])["extra"] if self.runs else {}

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "runs": self.runs}
        if self.ok:
            out.update(best_seconds=self.best, min_cpu_seconds=self.cpu, peak_bytes=self.peak,
                       runs_count=len(self.runs))
        if self.error:
            out["error"] = self.error
        if self.not_installed:
            out["status"] = "not installed"
        return out


_SPAWN = mp.get_context("spawn")


def _run_once(target: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One fresh process: its reply, or ``{"ok": False, "error": ...}``."""
    parent_end, child_end = _SPAWN.Pipe(duplex=False)
    proc = _SPAWN.Process(target=_child, args=(child_end, target, params), daemon=True)
    wall = time.perf_counter()
    proc.start()
    child_end.close()
    reply: dict[str, Any] | None = None
    if parent_end.poll(timeout):
        try:
            reply = parent_end.recv()
        except EOFError:
            reply = None
    proc.join(5)
    if proc.is_alive():
        proc.terminate()  # only the child this function started
        proc.join(5)
    parent_end.close()
    if reply is None:
        took = time.perf_counter() - wall
        error = (f"no result within {timeout:.0f} s" if took >= timeout
                 else f"worker died (exit code {proc.exitcode})")
        return {"ok": False, "error": error}
    return reply


@dataclass
class Spec:
    """One step to measure: ``target`` is ``"module:function"``."""

    key: str
    label: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    repeats: int = 3
    timeout: float = 600.0


def measure_group(
    specs: Sequence[Spec], *, log: Callable[[str], None] = print
) -> dict[str, Measurement]:
    """Measure several steps, interleaving their runs round-robin.

    Interleaving lets steps that are compared with each other sample the same
    periods of background load. A step that fails is not run again.
    """
    out = {spec.key: Measurement(spec.label) for spec in specs}
    rounds = max((spec.repeats for spec in specs), default=0)
    for attempt in range(1, rounds + 1):
        for spec in specs:
            m = out[spec.key]
            if attempt > spec.repeats or m.error:
                continue
            reply = _run_once(spec.target, spec.params, spec.timeout)
            if not reply["ok"]:
                m.error = reply["error"]
                m.not_installed = bool(reply.get("not_installed"))
                log(f"    {spec.label}: run {attempt}/{spec.repeats} FAILED: {m.error}")
                if reply.get("traceback"):
                    log(reply["traceback"])
                continue
            m.runs.append({k: v for k, v in reply.items() if k != "ok"})
            log(f"    {spec.label}: run {attempt}/{spec.repeats}: "
                f"{fmt_seconds(reply['seconds'])} (cpu {fmt_seconds(reply['cpu_seconds'])}), "
                f"peak +{fmt_bytes(reply['peak_bytes'])}")
    return out


def measure(
    label: str,
    target: str,
    params: dict[str, Any] | None = None,
    *,
    repeats: int = 3,
    timeout: float = 600.0,
    log: Callable[[str], None] = print,
) -> Measurement:
    """Run ``target(**params)``'s step ``repeats`` times, each in a fresh process."""
    spec = Spec("_", label, target, params or {}, repeats, timeout)
    return measure_group([spec], log=log)["_"]


# -- formatting --------------------------------------------------------------------


def fmt_seconds(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_bytes(n: float) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def fmt_rate(per_second: float, unit: str) -> str:
    return f"{per_second:,.0f} {unit}/s"


def fmt_ratio(x: float) -> str:
    return f"{x:.1f}\u00d7" if x >= 10 else f"{x:.2f}\u00d7"


def fmt_met(met: bool | None) -> str:
    """A target's verdict in a table: met, not met, or not measured."""
    return "n/a" if met is None else ("**yes**" if met else "**no**")


def targets_table(targets: Sequence[dict[str, Any]]) -> str:
    """The targets of a suite (``target``, ``shown``, ``met``, ``cpu_view``) as one table."""
    return markdown_table(["Target", "Measured", "Met", "CPU-time view"],
                          [[t["target"], t["shown"], fmt_met(t["met"]), t["cpu_view"]]
                           for t in targets])


def target_lines(suite: str, targets: Sequence[dict[str, Any]]) -> list[str]:
    """One line per target, as ``make bench`` reports them at the end of a suite."""
    verdict = {True: "met", False: "NOT MET", None: "not measured"}
    return [f"[{suite}] target {verdict[t['met']]}: {t['target']} ({t['shown']})"
            for t in targets]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- context, machine, reports -------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(flags & {"sha_ni", "avx2", "avx512f"})
    except OSError:
        pass
    return []


def _mem_total() -> int | None:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    import sqlite3

    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "mem_total_bytes": _mem_total(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "sqlite": sqlite3.sqlite_version,
        "packages": {
            name: _version(name)
            for name in ("datafusion", "polars", "pyarrow", "numpy", "cryptography",
                         "sqlalchemy", "psycopg2-binary", "pymerkle", "merkletools")
        },
    }


def machine_line(info: dict[str, Any]) -> str:
    mem = info.get("mem_total_bytes")
    flags = ", ".join(info.get("cpu_flags") or []) or "none of sha_ni/avx2/avx512f"
    return (
        f"{info['nproc']} CPUs (nproc) · {info['cpu_model']} ({flags}) · "
        f"{fmt_bytes(mem) if mem else '? '} RAM · Python {info['python']} · "
        f"SQLite {info['sqlite']} · {info['platform']}"
    )


@dataclass
class Context:
    """What a suite gets from ``bench.run``."""

    quick: bool
    machine: dict[str, Any]
    out_dir: Path = OUT_DIR
    log: Callable[[str], None] = print

    @property
    def scale(self) -> int:
        return 10 if self.quick else 1

    def size(self, n: int) -> int:
        """``n`` in a full run, ``n / 10`` with ``--quick``."""
        return max(1, n // self.scale)


@dataclass
class SuiteReport:
    """What a suite hands back: JSON data, the markdown section, failed checks."""

    name: str
    data: dict[str, Any]
    markdown: str
    failures: list[str] = field(default_factory=list)


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


# -- the document --------------------------------------------------------------------

METHOD = """\
**Method.** Each measured step runs in a fresh process (`multiprocessing`, `spawn`):
the process first does its setup (loads the inputs, opens the database, warms up
imports such as polars), then the step is timed once with `time.perf_counter`.
Peak memory is the growth of the process's peak resident set during the step: the
kernel's high-water mark is reset after setup (`echo 5 > /proc/self/clear_refs`),
and `VmHWM` after the step minus `VmRSS` before it is reported. It therefore counts
native allocations (Arrow, polars, SQLite, OpenSSL) and touched `mmap` pages, not
only Python objects (which is all `tracemalloc` would see). Where `clear_refs` is
not writable the fallback is `ru_maxrss` minus the baseline (recorded per run in
the JSON). The machine is shared and other work runs on it, so every step is
repeated in N fresh processes and the **best (minimum) time** is reported, with the
**largest** peak over those runs. Rates are items divided by that best time.
The **CPU** column is the process's user + system time during the step (all threads,
`getrusage`), the least over the runs: a wall time well above it for single-threaded
code means the step was waiting for a CPU, i.e. the machine was busy."""


def about_block(machine: dict[str, Any]) -> str:
    return "\n".join([
        "Run all suites with `make bench` (it runs `.venv/bin/python -m bench.run`). "
        "`python -m bench.run --only core` (or `--only ingest`, `--only cli`, `--only serve`) "
        "runs one suite; `--quick` is a smoke run at 1/10 of the sizes, which writes "
        "`bench/out/results-<suite>-quick.json` and leaves this document alone. Full runs "
        "write `bench/out/results-<suite>.json` "
        "(git-ignored) and regenerate the sections between the `<!-- <suite>:begin -->` / "
        "`<!-- <suite>:end -->` markers; text outside the markers is kept.",
        "",
        f"**Machine** (last full run, {now_utc()}): {machine_line(machine)}.",
        "",
        METHOD,
    ])


_DOC_TITLE = "# Benchmarks\n\nGenerated in part by `bench/run.py`: edit outside the markers only.\n"


def replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return head + block + tail
    return text.rstrip() + "\n\n" + block + "\n"


def update_doc(sections: dict[str, str], path: Path = DOC_PATH) -> None:
    """Replace (or append) the marked sections of the benchmarks document."""
    text = path.read_text() if path.exists() else _DOC_TITLE
    for name, body in sections.items():
        text = replace_section(text, name, body)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")

