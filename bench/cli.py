"""The CLI suite: how quickly ``trialproof`` commands answer, and ingest of shuffled input.

1. Command timings. A home holding one version of the generated LB dataset
   (1,000,000 records; 100,000 with ``--quick``) is made once. Then ``vkey``,
   ``versions``, ``checkpoint``, ``verify`` and ``prove`` run as real processes of the
   installed ``trialproof`` script, round-robin so that all sample the same background
   load, each once untimed first (file cache, a first checkpoint signature). Per
   command: the least wall time, the least CPU time (user + sys, from ``wait4``) and the
   largest peak RSS. Each is reported as a ratio to ``vkey`` in the same run, which
   is the cost of starting Python, click and ``cryptography``; ``make bench`` reports
   whether each target is met.
2. A one-shot ingest against the Great Expectations import: ``trialproof ingest`` of
   the pilot's 591-row EX (``examples/deliveries``) into a fresh copy of an empty home,
   round-robin with ``python -c "import great_expectations"``; the target is the import
   alone + 1.5 s, since every ingest and every Airflow validate task pays that import.
3. Sorted against shuffled input: the same rows ingested (``pipeline.ingest.ingest``, in
   fresh processes, as in the ingest suite) once in key order and once shuffled, with
   the time spent sorting into leaf order. Reported; both must give the same root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    Context,
    Spec,
    SuiteReport,
    fmt_bytes,
    fmt_ratio,
    fmt_seconds,
    machine_line,
    markdown_table,
    measure_group,
    now_utc,
    targets_table,
)

NAME = "cli"
N_RECORDS = 1_000_000
PROVE_INDEX_FRACTION = 0.6180
#: Targets: (command, most wall time as a multiple of ``vkey``'s, most peak RSS).
TARGETS: dict[str, tuple[float, int | None]] = {
    "versions": (2.0, None),
    "checkpoint": (2.0, None),
    "verify": (2.0, None),
    "prove": (3.0, 200 * 1024 * 1024),
}
#: The one-shot ingest may take at most this much longer than importing GX alone.
INGEST_OVER_GX_IMPORT = 1.5
REPO = Path(__file__).resolve().parent.parent
EX_DELIVERY = REPO / "examples" / "deliveries" / "CDISCPILOT01" / "ex" / "ex.xpt"
TRIAL = "CDISCPILOT01"
DATASET = "lb"
X = "\u00d7"


@dataclass
class CommandRuns:
    """The runs of one command: wall seconds, CPU seconds, peak RSS bytes."""

    argv: list[str]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"argv": self.argv, "wall_seconds": self.walls,
                               "cpu_seconds": self.cpus, "peak_rss_bytes": self.peaks}
        if self.walls:
            out.update(best_seconds=min(self.walls), min_cpu_seconds=min(self.cpus),
                       peak_bytes=max(self.peaks))
        if self.error:
            out["error"] = self.error
        return out


#: Runs one command and prints its wall time, CPU time, peak RSS and exit status as JSON.
#: A small process of its own starts the command, because a child's peak RSS counts the
#: memory of the process it was forked from (here: the suite, with Arrow tables loaded).
_RUNNER = """
import json, os, sys, tempfile, time
argv = json.loads(sys.argv[1])
with tempfile.TemporaryFile() as err:
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    err.seek(0)
    tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak": usage.ru_maxrss * 1024, "code": os.waitstatus_to_exitcode(status),
                  "stderr": tail[0] if tail else ""}))
"""


def run_command(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run one command; (wall seconds, CPU seconds, peak RSS bytes, stderr if it failed)."""
    done = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argv)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return 0.0, 0.0, 0, done.stderr.strip() or f"runner exited {done.returncode}"
    result = json.loads(done.stdout)
    problem = "" if result["code"] == 0 else (result["stderr"] or f"exit {result['code']}")
    return result["wall"], result["cpu"], result["peak"], problem


def time_commands(commands: dict[str, list[str]], env: dict[str, str], repeats: int,
                  log: Any) -> dict[str, CommandRuns]:
    """Each command once untimed, then ``repeats`` timed rounds, round-robin."""
    runs = {name: CommandRuns(argv) for name, argv in commands.items()}
    for attempt in range(repeats + 1):
        for name, argv in commands.items():
            result = runs[name]
            if result.error:
                continue
            wall, cpu, peak, problem = run_command(argv, env)
            if problem:
                result.error = problem.splitlines()[-1]
                log(f"    {name}: FAILED: {result.error}")
                continue
            if attempt == 0:
                continue
            result.walls.append(wall)
            result.cpus.append(cpu)
            result.peaks.append(peak)
            log(f"    {name}: run {attempt}/{repeats}: {fmt_seconds(wall)} "
                f"(cpu {fmt_seconds(cpu)}), peak RSS {fmt_bytes(peak)}")
    return runs


def shuffled(source: Path, seed: int) -> Path:
    """``source`` (Parquet) with its rows in a seeded random order, written once beside it."""
    target = source.with_name(f"{source.stem}-shuffled{source.suffix}")
    if not target.exists():
        import numpy as np
        import pyarrow.parquet as pq

        table = pq.read_table(source)
        order = np.random.default_rng(seed).permutation(table.num_rows)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pq.write_table(table.take(order), tmp)
        os.replace(tmp, target)
    return target


def task_make_home(source: str, contract: str, home: str) -> Any:
    """A home holding one version of ``source`` (run in a fresh process)."""
    from bench.ingest import BENCH_SALT_KEY, ORIGIN
    from pipeline.contract import load_contract
    from pipeline.home import Home
    from pipeline.ingest import ingest

    path = Path(home)
    shutil.rmtree(path, ignore_errors=True)
    made = Home.init(path, ORIGIN)
    (path / "keys" / "salt.key").write_text(BENCH_SALT_KEY + "\n")

    def step() -> Any:
        return ingest(made, Path(source), TRIAL, DATASET, load_contract(Path(contract)))

    return step, lambda result: {"records": result.manifest["records"]}


class _Suite:
    def __init__(self, ctx: Context) -> None:
        from bench.ingest import N_WARMUP, SEED, Inputs

        self.ctx = ctx
        self.n = ctx.size(N_RECORDS)
        self.repeats = 3 if ctx.quick else 7
        self.work = ctx.out_dir / "cli-work"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.inputs = Inputs(ctx.out_dir, ctx.log)
        self.sorted = self.inputs.data(self.n, "parquet")
        self.shuffled = shuffled(self.sorted, SEED)
        self.warmup = self.inputs.data(N_WARMUP, "parquet")
        self.failures: list[str] = []

    def commands(self) -> dict[str, CommandRuns]:
        home = self.work / "home"
        self.ctx.log(f"[cli] a home with {self.n:,} records of {TRIAL}/{DATASET}")
        made = measure_group([Spec("home", "make the home", "bench.cli:task_make_home",
                                   {"source": str(self.sorted),
                                    "contract": str(self.inputs.contract),
                                    "home": str(home)}, repeats=1)], log=self.ctx.log)["home"]
        if not made.ok:
            raise RuntimeError(f"could not make the home: {made.error}")
        script = str(Path(sys.executable).with_name("trialproof"))
        env = {**os.environ, "TRIALPROOF_HOME": str(home)}
        env.pop("TRIALPROOF_LOG_URL", None)
        vkey = subprocess.run([script, "vkey"], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()
        proof = self.work / "proof.json"
        index = str(int(self.n * PROVE_INDEX_FRACTION))
        select = ["--trial", TRIAL, "--dataset", DATASET]
        commands = {
            "vkey": [script, "vkey"],
            "versions": [script, "versions", *select],
            "checkpoint": [script, "checkpoint"],
            "prove": [script, "prove", *select, "--index", index, "--out", str(proof)],
            "verify": [script, "verify", str(proof), "--vkey", vkey],
        }
        return time_commands(commands, env, self.repeats, self.ctx.log)

    def one_shot_ingest(self) -> dict[str, CommandRuns]:
        """``trialproof ingest`` of the pilot EX into a fresh home, against the GX import."""
        self.ctx.log("[cli] one-shot ingest of the pilot EX against `import great_expectations`")
        template, home = self.work / "empty-home", self.work / "ex-home"
        script = str(Path(sys.executable).with_name("trialproof"))
        subprocess.run([script, "init", "--home", str(template), "--origin", "bench/log"],
                       check=True, capture_output=True)
        env = {**os.environ, "TRIALPROOF_REGISTRY": str(REPO / "registry" / "sponsors.yaml")}
        env.pop("TRIALPROOF_LOG_URL", None)
        # A fresh copy of the empty home for each run: a second ingest of the same bytes
        # would commit nothing. The copy (a few small files) is counted in the ingest.
        fresh_ingest = ('rm -rf "$1" && cp -a "$2" "$1" && exec "$3" ingest --home "$1" '
                        f'--trial {TRIAL} --dataset ex "$4"')
        commands = {
            "import great_expectations": [sys.executable, "-c", "import great_expectations"],
            "ingest (EX, 591 rows)": ["/bin/sh", "-c", fresh_ingest, "sh", str(home),
                                      str(template), script, str(EX_DELIVERY)],
        }
        return time_commands(commands, env, 3 if self.ctx.quick else 5, self.ctx.log)

    def ingest_target(self, runs: dict[str, CommandRuns]) -> dict[str, Any]:
        gx, ingest = runs["import great_expectations"], runs["ingest (EX, 591 rows)"]
        desc = f"one-shot `ingest` of the 591-row EX <= `import great_expectations` + " \
               f"{INGEST_OVER_GX_IMPORT:g} s"
        if not gx.walls or not ingest.walls:
            return {"target": desc, "value": None, "threshold": INGEST_OVER_GX_IMPORT,
                    "shown": "n/a", "met": None, "cpu_view": "n/a"}
        over = min(ingest.walls) - min(gx.walls)
        return {"target": desc, "value": over, "threshold": INGEST_OVER_GX_IMPORT,
                "shown": f"{fmt_seconds(min(ingest.walls))} = import "
                         f"{fmt_seconds(min(gx.walls))} + {fmt_seconds(over)}",
                "met": over <= INGEST_OVER_GX_IMPORT,
                "cpu_view": f"+{fmt_seconds(min(ingest.cpus) - min(gx.cpus))} in CPU time"}

    def ingests(self) -> dict[str, Any]:
        self.ctx.log(f"[cli] ingest of {self.n:,} rows, sorted and shuffled")
        params = {"contract": str(self.inputs.contract), "warmup": str(self.warmup),
                  "work": str(self.work / "ingest")}
        specs = [Spec(kind, f"ingest {kind} ({self.n:,} rows)", "bench.ingest:task_ingest",
                      {**params, "source": str(path)}, repeats=1 if self.ctx.quick else 2)
                 for kind, path in (("sorted", self.sorted), ("shuffled", self.shuffled))]
        return measure_group(specs, log=self.ctx.log)

    def target(self, name: str, result: CommandRuns, base: CommandRuns) -> dict[str, Any]:
        """The command's target, judged on wall time as a multiple of ``vkey``'s."""
        most, rss = TARGETS[name]
        desc = f"`{name}` <= {most:g}{X} `vkey`" + (f", <= {fmt_bytes(rss)} RSS" if rss else "")
        if not result.walls or not base.walls:
            return {"target": desc, "value": None, "threshold": most, "shown": "n/a",
                    "met": None, "cpu_view": "n/a"}
        ratio = min(result.walls) / min(base.walls)
        peak = max(result.peaks)
        shown = fmt_ratio(ratio) + (f", {fmt_bytes(peak)}" if rss else "")
        return {"target": desc, "value": ratio, "threshold": most, "shown": shown,
                "met": ratio <= most and (rss is None or peak <= rss),
                "cpu_view": f"{fmt_ratio(min(result.cpus) / min(base.cpus))} in CPU time"}

    def report(self, runs: dict[str, CommandRuns], one_shot: dict[str, CommandRuns],
               ingests: dict[str, Any]) -> SuiteReport:
        base = runs["vkey"]
        rows = []
        for name, result in {**runs, **one_shot}.items():
            if not result.walls or not base.walls:
                rows.append([f"`{name}`", "failed", "", "", "", "", result.error or ""])
                self.failures.append(f"{name}: {result.error or 'no run'}")
                continue
            wall, cpu, peak = min(result.walls), min(result.cpus), max(result.peaks)
            rows.append([f"`{name}`", fmt_seconds(wall), fmt_ratio(wall / min(base.walls)),
                         fmt_seconds(cpu), fmt_ratio(cpu / min(base.cpus)), fmt_bytes(peak)])
        targets = [self.target(name, runs[name], base) for name in TARGETS]
        targets.append(self.ingest_target(one_shot))
        lines = [
            f"### CLI commands ({self.n:,}-record version)",
            "",
            f"Machine: {machine_line(self.ctx.machine)}; {now_utc()}; best of "
            f"{self.repeats} runs of each command as a real process, round-robin.",
            "",
            markdown_table(["command", "wall", f"{X} vkey", "CPU", f"CPU {X} vkey",
                            "peak RSS"], rows),
            "",
            "### CLI targets",
            "",
            "Judged on wall time (best run) as a multiple of `vkey`'s in the same run; the "
            "one-shot ingest against the Great Expectations import in the same run.",
            "",
            targets_table(targets),
            "",
        ]
        ingest_rows = []
        data_ingests: dict[str, Any] = {}
        for kind, m in ingests.items():
            data_ingests[kind] = m.as_json()
            if not m.ok:
                ingest_rows.append([kind, "failed", "", "", m.error or ""])
                self.failures.append(f"ingest {kind}: {m.error}")
                continue
            stages = m.extra.get("stages", {})
            sort = stages.get("sort", {}).get("seconds", 0.0)
            ingest_rows.append([kind, fmt_seconds(m.best), fmt_seconds(m.cpu),
                                fmt_seconds(sort), m.extra.get("root", "")[:16]])
        roots = {m.extra.get("root") for m in ingests.values() if m.ok}
        if len(roots) > 1:
            self.failures.append("sorted and shuffled input gave different roots")
        lines += [
            f"### Ingest of {self.n:,} rows: in key order and shuffled",
            "",
            markdown_table(["input", "ingest (wall)", "CPU", "sorting into leaf order",
                            "root (same data, same root)"], ingest_rows),
        ]
        data = {"records": self.n,
                "commands": {k: v.as_json() for k, v in {**runs, **one_shot}.items()},
                "ingests": data_ingests, "targets": targets}
        return SuiteReport(NAME, data, "\n".join(lines) + "\n", list(self.failures))


def run(ctx: Context) -> SuiteReport:
    """The CLI suite (``python -m bench.run --only cli``)."""
    suite = _Suite(ctx)
    try:
        runs = suite.commands()
        one_shot = suite.one_shot_ingest()
        ingests = suite.ingests()
        return suite.report(runs, one_shot, ingests)
    finally:
        shutil.rmtree(suite.work, ignore_errors=True)
