"""The ingest suite: end-to-end ingest, its stages, the read + validate floor, and diff.

Inputs are a generated LB-like (laboratory results) dataset of 12 columns with
a contract (primary key USUBJID + LBSEQ), written once per size as Parquet and
CSV under ``bench/out/ingest-inputs/`` (seeded, so identical across runs) and
reused afterwards. Homes are created fresh for each measured run under a
scratch directory that the suite removes at the end.

What is measured, each step in fresh processes (see :mod:`bench.harness`):

1. ``pipeline.ingest.ingest`` of 1,000,000 rows into a fresh home, Parquet and
   CSV: stage, read, validate (Great Expectations), canonicalize, salt, hash,
   tree, store, log. The child records ``perf_counter`` and CPU time at each
   stage ``ingest()`` announces through its progress callback, and times the
   sub-steps (``read_delivery``, ``validation.validate``,
   ``leaf_order``) with thin wrappers around the
   module functions ``ingest`` calls: the code path is exactly the product's.
   Imports (Great Expectations takes seconds) and one small warm-up ingest
   happen before the timing and are reported as the first-use cost.
2. The floor: ``read_delivery`` + ``validation.validate`` alone, both formats,
   interleaved with (1) so both see the same background load.
3. The same end-to-end ingest at 5,000,000 rows (Parquet; CSV if the time
   budget allows).
4. A second version (1% of records changed, 0.5% removed, 0.5% added) ingested
   into a home holding the first, then ``pipeline.diff.diff_versions`` between
   the two.

Functions named ``task_*`` run inside the measuring child process; :func:`run`
is the suite and runs in the parent.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import (
    Context,
    Measurement,
    Spec,
    SuiteReport,
    fmt_bytes,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    machine_line,
    markdown_table,
    measure,
    measure_group,
    now_utc,
    targets_table,
)

NAME = "ingest"
SEED = 20261130
#: Bump when the generator changes, so that cached inputs are not reused.
GEN_VERSION = 1
N_MAIN = 1_000_000
N_BIG = 5_000_000
N_DIFF = 1_000_000
N_WARMUP = 1_000
TRIAL = "CDISCPILOT01"
DATASET = "lb"
ORIGIN = "bench.trialproof.example/log"
#: A fixed salt key for the benchmark homes, so that every run (and both formats)
#: give the same Merkle root for the same data: the root is then a correctness check.
BENCH_SALT_KEY = "b3" * 32
#: The whole suite should finish within this (full mode); CSV at N_BIG runs only if
#: the estimate says it fits.
BUDGET_S = 600.0

TARGET_RATE = 200_000.0
#: "A few seconds" for diffing two 1,000,000-record versions, read as at most this.
TARGET_DIFF_S = 5.0

_T = "bench.ingest:"
X = "\u00d7"
NA = "n/a"

TESTS = ["ALB", "ALT", "AST", "BILI", "BUN", "CA", "CHOL", "CREAT"]

CONTRACT: dict[str, Any] = {
    "name": "lb",
    "fields": [
        {"name": "STUDYID", "type": "string", "constraints": {"required": True, "maxLength": 12}},
        {"name": "DOMAIN", "type": "string", "constraints": {"enum": ["LB"]}},
        {"name": "USUBJID", "type": "string",
         "constraints": {"required": True, "pattern": "^01-701-\\d+$"}},
        {"name": "LBSEQ", "type": "integer", "constraints": {"required": True, "minimum": 1}},
        {"name": "LBTESTCD", "type": "string", "constraints": {"enum": TESTS, "maxLength": 8}},
        {"name": "LBCAT", "type": "string",
         "constraints": {"enum": ["CHEMISTRY", "HEMATOLOGY", "URINALYSIS"]}},
        {"name": "LBORRES", "type": "string", "constraints": {"maxLength": 20}},
        {"name": "LBORRESU", "type": "string"},
        {"name": "LBSTRESN", "type": "number", "constraints": {"minimum": -1000, "maximum": 1000}},
        {"name": "LBNRIND", "type": "string", "constraints": {"enum": ["NORMAL", "HIGH", "LOW"]}},
        {"name": "VISITNUM", "type": "number"},
        {"name": "LBDTC", "type": "string", "constraints": {"pattern": "^\\d{4}-\\d{2}-\\d{2}$"}},
    ],
    "primaryKey": ["USUBJID", "LBSEQ"],
}

#: The stages of the split, in order: (key, label, ours?). "ours" are the stages
#: after reading and validation (canonicalize through log).
STAGES: tuple[tuple[str, str, bool], ...] = (
    ("stage", "stage: sha256, copy to `raw/`, fsync, re-hash", False),
    ("read", "read: `read_delivery` (typed Arrow table)", False),
    ("validate", "validate: `validation.validate` (Great Expectations)", False),
    ("validate_rest", "validate, rest: report JSON/HTML, `typed.parquet` to `work/` "
     "(our code, before the target's range)", False),
    ("sort", "canonicalize: `leaf_order` (sort indices by primary key)", True),
    ("leaves", "leaves: in chunks on a thread pool, each gathers its rows in leaf order and "
     "hashes canonical JSON, HMAC salts, leaf hashes and its subtree levels; "
     "streamed into `records.parquet`", True),
    ("tree", "tree: the levels above the chunks (`MerkleTree.from_subtree_levels`)", True),
    ("store", "store: `tree.bin`, contract, reports, fsync", True),
    ("log", "log: manifest append (SQLite), publish, clean `work/`", True),
)
OURS = tuple(key for key, _, ours in STAGES if ours)
STAGE_NAMES = {
    "sort": "sorting into leaf order",
    "leaves": "the leaves (canonical JSON, HMAC salts, leaf hashes, records file)",
    "tree": "the Merkle tree", "store": "writing the version files", "log": "the log append",
}


# -- inputs (parent) -------------------------------------------------------------------


def _generate(n: int, seed: int, first_subject: int = 1001) -> Any:
    """An LB-like table of ``n`` rows: 40 results per subject, key (USUBJID, LBSEQ)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    row = np.arange(n, dtype=np.int64)
    subject = pa.array(row // 40 + first_subject).cast(pa.string())

    def pick(values: list[str]) -> Any:
        return pa.array(np.asarray(values)[rng.integers(0, len(values), n)])

    def two_digits(low: int, high: int) -> Any:
        return pc.utf8_lpad(pa.array(rng.integers(low, high + 1, n)).cast(pa.string()), 2, "0")

    return pa.table({
        "STUDYID": pa.array(np.full(n, "CDISCPILOT01")),
        "DOMAIN": pa.array(np.full(n, "LB")),
        "USUBJID": pc.binary_join_element_wise("01-701-", subject, ""),
        "LBSEQ": pa.array(row % 40 + 1),
        "LBTESTCD": pick(TESTS),
        "LBCAT": pick(["CHEMISTRY", "HEMATOLOGY"]),
        "LBORRES": pa.array(np.round(rng.normal(40, 5, n), 1)).cast(pa.string()),
        "LBORRESU": pick(["g/L", "U/L", "mmol/L"]),
        "LBSTRESN": pa.array(np.round(rng.normal(40, 5, n), 2)),
        "LBNRIND": pick(["NORMAL", "HIGH", "LOW"]),
        "VISITNUM": pa.array(rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n)),
        "LBDTC": pc.binary_join_element_wise("2014-", two_digits(1, 12), "-",
                                             two_digits(1, 28), ""),
    })


def _second_version(table: Any, seed: int) -> tuple[Any, dict[str, int]]:
    """``table`` with 1% of records changed (LBSTRESN; every other one LBORRES too),
    0.5% removed and 0.5% added (new subjects)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed + 1)
    n = table.num_rows
    k_change, k_remove, k_add = n // 100, n // 200, n // 200
    order = rng.permutation(n)
    removed, changed = order[:k_remove], order[k_remove : k_remove + k_change]
    stresn = table.column("LBSTRESN").to_numpy().copy()
    stresn[changed] = np.round(stresn[changed] + 0.5, 2)
    orres = np.asarray(table.column("LBORRES").to_pylist(), dtype=object)
    orres[changed[::2]] = "CHANGED"
    keep = np.ones(n, dtype=bool)
    keep[removed] = False
    new = table.set_column(table.schema.get_field_index("LBSTRESN"), "LBSTRESN",
                           pa.array(stresn))
    new = new.set_column(new.schema.get_field_index("LBORRES"), "LBORRES",
                         pa.array(orres, pa.string()))
    new = new.filter(pa.array(keep))
    last = int(pc.max(pc.cast(pc.utf8_slice_codeunits(table.column("USUBJID"), 7),
                              pa.int64())).as_py())
    added = _generate(k_add, seed + 2, first_subject=last + 1)
    return pa.concat_tables([new, added]), {"changed": k_change, "removed": k_remove,
                                            "added": k_add}


def _write(table: Any, path: Path) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.suffix == ".csv":
        pcsv.write_csv(table, tmp)
    else:
        pq.write_table(table, tmp)
    os.replace(tmp, path)


class Inputs:
    """Generated input files, written once and reused."""

    def __init__(self, base: Path, log: Callable[[str], None]) -> None:
        self.dir = base / "ingest-inputs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.contract = self.dir / "lb.json"
        text = json.dumps(CONTRACT, indent=1) + "\n"
        if not self.contract.exists() or self.contract.read_text() != text:
            self.contract.write_text(text)

    def _name(self, n: int, suffix: str) -> Path:
        return self.dir / f"lb-{n}-seed{SEED}-g{GEN_VERSION}{suffix}"

    def path(self, n: int, fmt: str) -> Path:
        """Where the ``n``-row dataset as ``fmt`` is (or will be) written."""
        return self._name(n, f".{fmt}")

    def data(self, n: int, fmt: str) -> Path:
        """The ``n``-row dataset as ``fmt`` (``parquet`` or ``csv``), generated if needed."""
        path = self.path(n, fmt)
        if not path.exists():
            start = time.perf_counter()
            parquet = self._name(n, ".parquet")
            if fmt != "parquet" and parquet.exists():
                import pyarrow.parquet as pq

                table = pq.read_table(parquet)
            else:
                table = _generate(n, SEED)
            _write(table, path)
            self.log(f"[ingest] generated {path.name} ({fmt_bytes(path.stat().st_size)}) "
                     f"in {fmt_seconds(time.perf_counter() - start)}")
        return path

    def second(self, n: int) -> tuple[Path, dict[str, int]]:
        """Version 2 of the ``n``-row dataset (Parquet) and the expected diff counts."""
        path = self._name(n, "-v2.parquet")
        expected_path = self._name(n, "-v2.expected.json")
        if not path.exists() or not expected_path.exists():
            import pyarrow.parquet as pq

            start = time.perf_counter()
            table, expected = _second_version(pq.read_table(self.data(n, "parquet")), SEED)
            _write(table, path)
            expected_path.write_text(json.dumps(expected) + "\n")
            self.log(f"[ingest] generated {path.name} ({fmt_bytes(path.stat().st_size)}) "
                     f"in {fmt_seconds(time.perf_counter() - start)}")
        return path, json.loads(expected_path.read_text())


# -- child helpers ----------------------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Clock:
    """Stage marks from ``ingest``'s progress callback, plus timed wrapped calls."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float, float]] = []
        self.calls: dict[str, list[tuple[float, float]]] = {}

    def reset(self) -> None:
        self.marks.clear()
        self.calls.clear()

    def progress(self, name: str) -> None:
        self.marks.append((name, time.perf_counter(), _cpu()))

    def wrap(self, module: Any, attr: str, key: str) -> None:
        original = getattr(module, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), _cpu()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls.setdefault(key, []).append(
                    (time.perf_counter() - wall, _cpu() - cpu))

        setattr(module, attr, timed)

    def call(self, key: str) -> tuple[float, float]:
        spent = self.calls.get(key, [])
        return sum(s for s, _ in spent), sum(c for _, c in spent)

    def split(self, end: tuple[float, float]) -> dict[str, dict[str, float]]:
        """Seconds and CPU seconds per stage of one ingest (see :data:`STAGES`)."""
        marks = [*self.marks, ("end", *end)]
        span: dict[str, tuple[float, float]] = {}
        for (name, wall, cpu), (_, wall2, cpu2) in itertools.pairwise(marks):
            w, c = span.get(name, (0.0, 0.0))
            span[name] = (w + wall2 - wall, c + cpu2 - cpu)
        read, gx = self.call("read"), self.call("validate")
        sort = self.call("sort")
        zero = (0.0, 0.0)

        def minus(a: tuple[float, float], *b: tuple[float, float]) -> tuple[float, float]:
            return (a[0] - sum(x[0] for x in b), a[1] - sum(x[1] for x in b))

        # "read" and "validate" marks: read_delivery, then GX, then reports and typed.parquet
        # (and, in commit, the recover/already-committed check before "canonicalize").
        reading = (span.get("read", zero)[0] + span.get("validate", zero)[0],
                   span.get("read", zero)[1] + span.get("validate", zero)[1])
        canonicalize = span.get("canonicalize", zero)
        parts = {
            "stage": span.get("stage", zero),
            "read": read,
            "validate": gx,
            "validate_rest": minus(reading, read, gx),
            "sort": sort,
            "leaves": minus(canonicalize, sort),
            "tree": span.get("tree", zero),
            "store": span.get("store", zero),
            "log": span.get("log", zero),
        }
        return {k: {"seconds": w, "cpu_seconds": c} for k, (w, c) in parts.items()}


def _imports() -> dict[str, float]:
    """Import what ingest needs; the seconds each group took (first-use cost)."""
    os.environ.pop("TRIALPROOF_LOG_URL", None)  # the bench homes use their own SQLite log
    start = time.perf_counter()
    import datafusion  # noqa: F401
    import pandas  # noqa: F401
    import polars  # noqa: F401
    import pyarrow.compute
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    import anchoring._internal.log  # noqa: F401
    import pipeline.diff
    import pipeline.ingest
    import pipeline.readers
    import pipeline.records
    import pipeline.validation

    libraries = time.perf_counter() - start
    pipeline.validation.import_great_expectations()  # imported on first validate otherwise
    gx = time.perf_counter() - start - libraries
    return {"libraries_seconds": libraries, "gx_import_seconds": gx}


def _new_home(path: Path) -> Any:
    from pipeline.home import Home

    shutil.rmtree(path, ignore_errors=True)
    home = Home.init(path, ORIGIN)
    salt = path / "keys" / "salt.key"
    salt.write_text(BENCH_SALT_KEY + "\n")  # a benchmark home: fixed salt, comparable roots
    return home


def _contract(path: str) -> Any:
    from pipeline.contract import load_contract

    return load_contract(Path(path))


def _result_extra(result: Any) -> dict[str, Any]:
    return {"status": result.status, "records": result.manifest["records"],
            "root": result.manifest["root"], "version": result.version}


# -- tasks --------------------------------------------------------------------------------


def task_ingest(source: str, contract: str, warmup: str, work: str,
                keep: bool = False, first: str | None = None) -> Any:
    """``ingest(source)`` into a fresh home (holding ``first`` already, if given)."""
    cost = _imports()
    import pipeline.ingest as ingest_mod
    from pipeline import readers, validation

    spec = _contract(contract)
    clock = _Clock()
    clock.wrap(readers, "read_delivery", "read")
    clock.wrap(validation, "validate", "validate")
    clock.wrap(ingest_mod, "leaf_order", "sort")
    base = Path(work)
    base.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()  # warm-up: GX context, SQLite engine, Arrow/polars kernels
    scratch = base / f"warmup-{os.getpid()}"
    ingest_mod.ingest(_new_home(scratch), Path(warmup), TRIAL, DATASET, spec)
    shutil.rmtree(scratch, ignore_errors=True)
    cost["warmup_ingest_seconds"] = time.perf_counter() - start

    home_dir = base / f"home-{os.getpid()}"
    home = _new_home(home_dir)
    if first is not None:
        ingest_mod.ingest(home, Path(first), TRIAL, DATASET, spec)
    clock.reset()
    end: list[tuple[float, float]] = []

    def step() -> Any:
        result = ingest_mod.ingest(home, Path(source), TRIAL, DATASET, spec,
                                   progress=clock.progress)
        end.append((time.perf_counter(), _cpu()))
        return result

    def after(result: Any) -> dict[str, Any]:
        extra = _result_extra(result)
        extra.update(stages=clock.split(end[0]), first_use=cost, home=str(home_dir),
                     sha256_blocks=_sha256_blocks(result, spec))
        if not keep:
            shutil.rmtree(home_dir, ignore_errors=True)
        return extra

    return step, after


def _sha256_blocks(result: Any, spec: Any) -> dict[str, int]:
    """The SHA-256 compressions the formats require for the committed version: per record
    an HMAC salt (RFC 2104: an inner pass over the key block and the message, an outer one
    over the key block and the inner digest) and a leaf hash; one per tree node."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.records import canonical_records, salt_messages

    def compressions(lengths: Any, extra: int) -> int:
        # FIPS 180-4 padding adds at least 9 bytes; SHA-256 compresses 64-byte blocks.
        blocks = pc.divide(pc.add(lengths, extra + 9 + 63), 64)
        return int(pc.sum(blocks).as_py() or 0)

    table = pq.read_table(result.version_dir / "records.parquet")
    n = table.num_rows
    each = pa.array([0] * n, pa.int64())  # one fixed-length message per record
    return {"records": n,
            "salt": compressions(pc.binary_length(
                salt_messages(table, spec, TRIAL, DATASET, version=result.version)),
                                 64) + compressions(each, 64 + 32),
            "leaf": compressions(pc.binary_length(canonical_records(table, spec)), 1 + 32),
            "node": compressions(each.slice(1), 1 + 64)}


def task_sha_floor(blocks: int) -> Any:
    """One ``hashlib.sha256`` call over ``blocks`` * 64 bytes: SHA-256 at full speed on one
    CPU, the floor of the hashing the formats require."""
    data = bytes(blocks * 64)
    return (lambda: hashlib.sha256(data).digest()), lambda _digest: {"bytes": len(data)}


def task_floor(source: str, contract: str, warmup: str) -> Any:
    """``read_delivery`` + ``validation.validate`` alone: what any validating ingest pays."""
    cost = _imports()
    from pipeline.readers import read_delivery
    from pipeline.validation import validate

    spec = _contract(contract)

    def read_and_validate(path: Path) -> tuple[Any, dict[str, float]]:
        t0, c0 = time.perf_counter(), _cpu()
        delivery = read_delivery(path, spec)
        t1, c1 = time.perf_counter(), _cpu()
        report = validate(delivery.table, spec, type_issues=delivery.type_errors,
                          missing_columns=delivery.missing_columns, source_name=path.name)
        t2, c2 = time.perf_counter(), _cpu()
        times = {"read_seconds": t1 - t0, "read_cpu_seconds": c1 - c0,
                 "validate_seconds": t2 - t1, "validate_cpu_seconds": c2 - c1}
        return (report, delivery.rows), times

    start = time.perf_counter()
    read_and_validate(Path(warmup))
    cost["warmup_seconds"] = time.perf_counter() - start
    split: dict[str, float] = {}

    def step() -> Any:
        out, times = read_and_validate(Path(source))
        split.update(times)
        return out

    def after(out: Any) -> dict[str, Any]:
        report, rows = out
        return {"success": report.success, "rows": rows, "checks": len(report.results),
                "split": split, "first_use": cost}

    return step, after


def task_diff(home: str, expected: dict[str, int]) -> Any:
    """``diff_versions`` between versions 1 and 2 of the home's dataset."""
    os.environ.pop("TRIALPROOF_LOG_URL", None)
    import polars  # noqa: F401

    from pipeline.diff import diff_versions
    from pipeline.home import Home

    store = Home.open(Path(home)).store()
    store.versions(TRIAL, DATASET)  # opens the log outside the timing

    def step() -> Any:
        return diff_versions(store, TRIAL, DATASET, 1, 2)

    def after(diff: Any) -> dict[str, Any]:
        summary = diff.summary()
        columns: dict[str, int] = {}
        for names in diff.changed.get_column("__columns").to_list():
            key = ",".join(names)
            columns[key] = columns.get(key, 0) + 1
        return {"summary": summary, "expected": expected, "matches": summary == expected,
                "changed_columns": columns}

    return step, after


# -- the suite (parent) -------------------------------------------------------------------


def _stage_best(m: Measurement) -> dict[str, dict[str, float]]:
    """Per stage, the least seconds and the least CPU seconds over the runs."""
    out: dict[str, dict[str, float]] = {}
    for run in m.runs:
        for key, value in run["extra"].get("stages", {}).items():
            best = out.setdefault(key, {"seconds": value["seconds"],
                                        "cpu_seconds": value["cpu_seconds"]})
            best["seconds"] = min(best["seconds"], value["seconds"])
            best["cpu_seconds"] = min(best["cpu_seconds"], value["cpu_seconds"])
    return out


def _stage_rows(best: dict[str, dict[str, Any]], totals: dict[str, float]) -> list[list[str]]:
    """One row per stage: its time, CPU and share of the total, per format."""
    rows = []
    for key, label, ours in STAGES:
        row = [f"**{label}** (ours)" if ours else label]
        for fmt in ("parquet", "csv"):
            value = best[fmt].get(key)
            if value is None:
                row += [NA, NA, NA]
                continue
            row += [fmt_seconds(value["seconds"]), fmt_seconds(value["cpu_seconds"]),
                    f"{value['seconds'] / totals[fmt]:.0%}" if totals[fmt] else NA]
        rows.append(row)
    return rows


def _stage_summary(best: dict[str, dict[str, Any]],
                   totals: dict[str, float]) -> dict[str, Any]:
    """Per format: the stages, the time and CPU of ours, and the largest of ours."""
    summary: dict[str, Any] = {}
    for fmt in ("parquet", "csv"):
        if not best[fmt]:
            continue
        ours = {k: best[fmt][k] for k in OURS if k in best[fmt]}
        own = sum(max(v["seconds"], 0) for v in ours.values())
        own_cpu = sum(max(v["cpu_seconds"], 0) for v in ours.values())
        top = max(OURS, key=lambda k, fmt=fmt: best[fmt].get(k, {"seconds": 0})["seconds"])
        summary[fmt] = {"stages": best[fmt], "ours_seconds": own, "ours_cpu_seconds": own_cpu,
                        "sum_of_stages_seconds": totals[fmt], "dominant_own_stage": top}
    return summary


def _stage_summary_rows(summary: dict[str, Any], totals: dict[str, float]) -> list[list[str]]:
    """The closing rows of the stage table: our stages together, and all of them."""
    rows = []
    for label, key in (("**ours, canonicalize through log**", "ours_seconds"),
                       ("sum of stages", "sum_of_stages_seconds")):
        row = [label]
        for fmt in ("parquet", "csv"):
            if fmt in summary:
                cpu = (fmt_seconds(summary[fmt]["ours_cpu_seconds"])
                       if key == "ours_seconds" else "")
                share = summary[fmt][key] / totals[fmt] if totals[fmt] else 0
                row += [fmt_seconds(summary[fmt][key]), cpu, f"{share:.0%}"]
            else:
                row += [NA, NA, NA]
        rows.append(row)
    return rows


def _largest_own_stages(best: dict[str, dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """Per format, the largest of our stages and its share of ours."""
    tops = []
    labels = dict(STAGE_NAMES)
    for fmt in ("parquet", "csv"):
        if fmt in summary:
            top = summary[fmt]["dominant_own_stage"]
            value = best[fmt][top]["seconds"]
            tops.append(f"{fmt}: {labels[top]} ({fmt_seconds(value)}, "
                        f"{value / summary[fmt]['ours_seconds']:.0%} of ours)")
    return tops


def _first_use(m: Measurement) -> dict[str, float]:
    out: dict[str, float] = {}
    for run in m.runs:
        for key, value in run["extra"].get("first_use", {}).items():
            out[key] = min(out.get(key, value), value)
    return out



class _Suite:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.started = time.perf_counter()
        self.inputs = Inputs(ctx.out_dir, ctx.log)
        self.work = ctx.out_dir / f"ingest-work-{os.getpid()}"
        self.n = ctx.size(N_MAIN)
        self.n_big = ctx.size(N_BIG)
        self.n_diff = ctx.size(N_DIFF)
        self.reps = 2 if ctx.quick else 3
        self.r: dict[str, Measurement] = {}
        self.wall: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.checks: dict[str, bool] = {}
        self.failures: list[str] = []
        self.expected: dict[str, int] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.sha_blocks: dict[str, int] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks[name] = ok
        if not ok:
            self.failures.append(f"{name}{': ' + detail if detail else ''}")

    def ok(self, key: str) -> bool:
        return key in self.r and self.r[key].ok

    def _file(self, path: Path, rows: int) -> str:
        self.files[path.name] = {"rows": rows, "bytes": path.stat().st_size}
        return str(path)

    def ingest_params(self, n: int, fmt: str, **more: Any) -> dict[str, Any]:
        return {"source": self._file(self.inputs.data(n, fmt), n),
                "contract": str(self.inputs.contract),
                "warmup": str(self.inputs.data(N_WARMUP, fmt)),
                "work": str(self.work), **more}

    # -- 1 + 2: end to end and floor, interleaved ---------------------------------------------

    def bench_main(self) -> None:
        n = self.n
        self.log(f"[ingest] 1/4 end-to-end ingest of {n:,} rows (Parquet, CSV) and the "
                 f"read + validate floor, interleaved, {self.reps} fresh processes each")
        specs = []
        for fmt in ("parquet", "csv"):
            params = self.ingest_params(n, fmt)
            specs.append(Spec(f"e2e_{fmt}", f"ingest {n:,} ({fmt})", _T + "task_ingest",
                              params, self.reps))
            specs.append(Spec(f"floor_{fmt}", f"read + validate {n:,} ({fmt})",
                              _T + "task_floor",
                              {k: params[k] for k in ("source", "contract", "warmup")},
                              self.reps))
        start = time.perf_counter()
        self.r.update(measure_group(specs, log=self.log))
        self.wall["main"] = time.perf_counter() - start
        for fmt in ("parquet", "csv"):
            self._check_ingest(f"e2e_{fmt}", n)
            if self.ok(f"floor_{fmt}"):
                extra = self.r[f"floor_{fmt}"].extra
                self.check(f"floor ({fmt}) validation passed", bool(extra.get("success")))
        if self.ok("e2e_parquet"):
            self.sha_blocks = self.r["e2e_parquet"].extra["sha256_blocks"]
            total = sum(v for k, v in self.sha_blocks.items() if k != "records")
            self.r["sha_floor"] = measure(
                f"one sha256 over {total:,} blocks", _T + "task_sha_floor", {"blocks": total},
                repeats=self.reps, log=self.log)
        if self.ok("e2e_parquet") and self.ok("e2e_csv"):
            roots = {run["extra"]["root"] for key in ("e2e_parquet", "e2e_csv")
                     for run in self.r[key].runs}
            self.check("same root from Parquet and CSV, every run", len(roots) == 1,
                       f"roots: {sorted(roots)}")

    def _check_ingest(self, key: str, n: int) -> None:
        if not self.ok(key):
            return
        for run in self.r[key].runs:
            extra = run["extra"]
            self.check(f"{key}: committed {n:,} records",
                       extra.get("status") == "committed" and extra.get("records") == n,
                       f"{extra.get('status')}, {extra.get('records')} records")

    # -- 3: diff ---------------------------------------------------------------------------------

    def bench_diff(self) -> None:
        n = self.n_diff
        v2, self.expected = self.inputs.second(n)
        self.log(f"[ingest] 2/4 diff: version 2 of {n:,} records ({self.expected['changed']:,} "
                 f"changed, {self.expected['removed']:,} removed, {self.expected['added']:,} "
                 "added) ingested into a home holding version 1, then diff_versions")
        rows = n - self.expected["removed"] + self.expected["added"]
        params = self.ingest_params(n, "parquet", keep=True)
        params["first"] = params.pop("source")
        params["source"] = self._file(v2, rows)
        second = measure(f"ingest v2 ({rows:,}) into a home with v1", _T + "task_ingest",
                         params, repeats=1, timeout=900, log=self.log)
        self.r["second"] = second
        if not second.ok:
            return
        extra = second.extra
        self.check("v2 committed as version 2",
                   extra.get("status") == "committed" and extra.get("version") == 2
                   and extra.get("records") == rows)
        home = extra["home"]
        try:
            diff = measure(f"diff_versions v1..v2 ({n:,} records each)", _T + "task_diff",
                           {"home": home, "expected": self.expected}, repeats=self.reps,
                           log=self.log)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        self.r["diff"] = diff
        if diff.ok:
            self.check("diff found exactly the generated changes",
                       all(run["extra"].get("matches") for run in diff.runs),
                       f"{diff.extra.get('summary')} != {self.expected}")

    # -- 4: the larger size ----------------------------------------------------------------------

    def bench_big(self) -> None:
        n = self.n_big
        self.log(f"[ingest] 3/4 end-to-end ingest of {n:,} rows (Parquet)")
        start = time.perf_counter()
        big = measure(f"ingest {n:,} (parquet)", _T + "task_ingest",
                      self.ingest_params(n, "parquet"), repeats=1, timeout=1200, log=self.log)
        self.wall["big_parquet"] = time.perf_counter() - start
        self.r["big_parquet"] = big
        self._check_ingest("big_parquet", n)

        self.log(f"[ingest] 4/4 end-to-end ingest of {n:,} rows (CSV), if the budget allows")
        if not (big.ok and self.ok("e2e_parquet") and self.ok("e2e_csv")):
            self.notes["big_csv"] = "skipped: a run it is estimated from failed"
            return
        ratio = self.r["e2e_csv"].best / self.r["e2e_parquet"].best
        csv_bytes = self.files[self.inputs.path(self.n, "csv").name]["bytes"] * n // self.n
        estimate = self.wall["big_parquet"] * ratio + csv_bytes / 50e6  # + generation
        budget = BUDGET_S  # also in --quick, where it always fits: the smoke run covers it
        if self.elapsed() + estimate > budget:
            self.notes["big_csv"] = (f"skipped: estimated {fmt_seconds(estimate)} would take "
                                     f"the suite past its {fmt_seconds(budget)} budget")
            self.log(f"[ingest] {self.notes['big_csv']}")
            return
        self.r["big_csv"] = measure(f"ingest {n:,} (csv)", _T + "task_ingest",
                                    self.ingest_params(n, "csv"), repeats=1, timeout=1200,
                                    log=self.log)
        self._check_ingest("big_csv", n)

    def run_all(self) -> None:
        try:
            for fmt in ("parquet", "csv"):
                self.inputs.data(N_WARMUP, fmt)
            self.bench_main()
            self.bench_diff()
            self.bench_big()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        for res in self.r.values():
            if res.error:
                self.failures.append(f"{res.label}: {res.error}")

    # -- reporting ---------------------------------------------------------------------------------

    def gx_checks(self) -> str:
        for key in ("floor_parquet", "floor_csv"):
            if self.ok(key):
                return str(self.r[key].extra.get("checks", "?"))
        return "?"

    def runs(self, key: str) -> str:
        return f"best of {len(self.r[key].runs)}"

    def rate(self, key: str) -> float | None:
        if not self.ok(key):
            return None
        return float(self.r[key].extra["records"]) / self.r[key].best

    def md_e2e(self) -> tuple[list[str], dict[str, Any]]:
        lines = [f"### 1. End-to-end ingest (`pipeline.ingest.ingest` into a fresh home), "
                 f"{self.n:,} and {self.n_big:,} rows {X} 12 columns", ""]
        rows, table = [], {}
        spec = (
            ("e2e_parquet", f"Parquet, {self.n:,} rows", self.n, "parquet"),
            ("e2e_csv", f"CSV, {self.n:,} rows", self.n, "csv"),
            ("big_parquet", f"Parquet, {self.n_big:,} rows", self.n_big, "parquet"),
            ("big_csv", f"CSV, {self.n_big:,} rows", self.n_big, "csv"),
        )
        for key, label, n, fmt in spec:
            if key not in self.r:
                rows.append([label, NA, NA, NA, NA, NA, self.notes.get(key, "not run")])
                table[key] = {"status": self.notes.get(key, "not run")}
                continue
            m = self.r[key]
            if not m.ok:
                rows.append([label, NA, NA, NA, NA, NA, str(m.error)])
                table[key] = {"status": m.error}
                continue
            size = self.files.get(self.inputs.path(n, fmt).name, {}).get("bytes", 0)
            rate = n / m.best
            rows.append([label, f"{fmt_seconds(m.best)} ({self.runs(key)})", fmt_seconds(m.cpu),
                         f"**{fmt_rate(rate, 'records')}** ({n / m.cpu:,.0f} per CPU-second)",
                         fmt_bytes(m.peak), fmt_bytes(size),
                         f"root {m.extra['root'][:16]}…"])
            table[key] = {"rows": n, "seconds": m.best, "cpu_seconds": m.cpu,
                          "records_per_s": rate, "records_per_cpu_s": n / m.cpu,
                          "peak_bytes": m.peak, "input_bytes": size, "root": m.extra["root"]}
        lines += [markdown_table(["Input", "Time", "CPU", "Records/s", "Peak memory",
                                  "Input size", "Notes"], rows), ""]
        per_record = [f"{table[k]['peak_bytes'] / table[k]['rows']:,.0f} B ({k.split('_')[1]}, "
                      f"{table[k]['rows']:,} rows)" for k, *_ in spec if "peak_bytes" in table[k]]
        if per_record:
            lines += ["Peak memory per record: " + "; ".join(per_record) + ". The typed table, "
                      "the pandas frame GX validates and the tree levels are whole in memory, "
                      "so memory grows linearly with the delivery; the rows in leaf order, "
                      "their JSON pieces and salts exist only for the few chunks in flight "
                      "(the canonical records themselves are never joined).", ""]
        if "same root from Parquet and CSV, every run" in self.checks:
            same = self.checks["same root from Parquet and CSV, every run"]
            lines += ["Root check (outside the timing): every Parquet and CSV run of the same "
                      f"{self.n:,} rows committed the {'**same**' if same else '**DIFFERENT**'} "
                      "Merkle root (the benchmark homes share a fixed salt key).", ""]
        return lines, table

    def md_stages(self) -> tuple[list[str], dict[str, Any]]:
        lines = [f"### 2. Where the time goes: stages of the {self.n:,}-row ingest", "",
                 "Each stage's least wall time and least CPU time over the runs (so a column "
                 "adds up to a little less than the best total). Stages are timed inside the "
                 "measured `ingest()` call: marks from its progress callback, and wrappers "
                 "around `read_delivery`, `validation.validate` and `leaf_order`. "
                 "**Ours** are the stages after reading and validation.", ""]
        best = {fmt: _stage_best(self.r[f"e2e_{fmt}"]) if self.ok(f"e2e_{fmt}") else {}
                for fmt in ("parquet", "csv")}
        header = ["Stage"]
        for fmt in ("Parquet", "CSV"):
            header += [f"{fmt}: time", "CPU", "share"]
        totals = {fmt: sum(v["seconds"] for v in best[fmt].values()) for fmt in best}
        summary = _stage_summary(best, totals)
        rows = _stage_rows(best, totals) + _stage_summary_rows(summary, totals)
        lines += [markdown_table(header, rows), ""]
        tops = _largest_own_stages(best, summary)
        if tops:
            lines += ["Largest of our stages: " + "; ".join(tops) + ".", ""]
        return lines, summary

    def md_floor(self) -> tuple[list[str], dict[str, Any]]:
        lines = [f"### 3. The floor: `read_delivery` + `validation.validate` alone, "
                 f"{self.n:,} rows", "",
                 "What any ingest that reads and validates with Great Expectations pays; "
                 "measured interleaved with the end-to-end runs.", ""]
        rows, table = [], {}
        for fmt, label in (("parquet", "Parquet"), ("csv", "CSV")):
            key = f"floor_{fmt}"
            if not self.ok(key):
                rows.append([label, NA, NA, NA, NA, str(self.r[key].error if key in self.r
                                                        else "not run")])
                continue
            m = self.r[key]
            reads = [run["extra"]["split"] for run in m.runs]
            read = min(s["read_seconds"] for s in reads)
            gx = min(s["validate_seconds"] for s in reads)
            rows.append([label, f"{fmt_seconds(m.best)} ({self.runs(key)})", fmt_seconds(m.cpu),
                         fmt_rate(self.n / m.best, "records"), fmt_bytes(m.peak),
                         f"read {fmt_seconds(read)}, validate {fmt_seconds(gx)} (least of each)"])
            table[fmt] = {"seconds": m.best, "cpu_seconds": m.cpu, "peak_bytes": m.peak,
                          "read_seconds": read, "validate_seconds": gx,
                          "records_per_s": self.n / m.best}
        lines += [markdown_table(["Format", "Time", "CPU", "Records/s", "Peak memory",
                                  "Split"], rows), ""]
        lines += self.md_sha_floor(table)
        return lines, table

    def md_sha_floor(self, table: dict[str, Any]) -> list[str]:
        """The hashing the formats require, at full SHA-256 speed (adds to ``table``)."""
        if not self.ok("sha_floor"):
            return []
        blocks = self.sha_blocks
        n, total = blocks["records"], blocks["salt"] + blocks["leaf"] + blocks["node"]
        m, nproc = self.r["sha_floor"], self.ctx.machine.get("nproc") or 1
        table["sha256_floor"] = {**blocks, "seconds_one_cpu": m.best,
                                 "seconds_all_cpus": m.best / nproc}
        ours = [v for v in (self.r.get("e2e_parquet"),) if v is not None and v.ok]
        own_cpu = ""
        if ours:
            spent = ours[0].extra["stages"]
            cpu = sum(max(spent[k]["cpu_seconds"], 0) for k in OURS if k in spent)
            own_cpu = (f" Our stages spent {fmt_seconds(cpu)} of CPU in the fastest Parquet "
                       f"run ({fmt_ratio(cpu / m.best)} this floor).")
        return [f"**The hashing the formats require** (docs/formats.md §3-§4, RFC 9162): per "
                f"record an HMAC-SHA256 salt ({blocks['salt'] / n:.1f} SHA-256 compressions), "
                f"a leaf hash ({blocks['leaf'] / n:.1f}) and a tree node (2): {total:,} "
                f"compressions for {n:,} records. One `hashlib.sha256` call over as many "
                f"bytes takes {fmt_seconds(m.best)} on one CPU, so at best "
                f"{fmt_seconds(m.best / nproc)} on all {nproc}: that, with no JSON, sorting or "
                f"writing, is the floor of our stages' hashing alone.{own_cpu}", ""]

    def md_diff(self) -> tuple[list[str], dict[str, Any]]:
        e = self.expected
        lines = [f"### 4. A second version and `diff_versions`, {self.n_diff:,} records each", ""]
        if e:
            lines += [f"Version 2 changes {e['changed']:,} records (LBSTRESN; every other one "
                      f"LBORRES too), removes {e['removed']:,} and adds {e['added']:,} (new "
                      "subjects).", ""]
        rows, table = [], {}
        if "second" in self.r:
            m = self.r["second"]
            if m.ok:
                records = m.extra["records"]
                rows.append(["`ingest` of version 2 into a home holding version 1 (Parquet)",
                             f"{fmt_seconds(m.best)} ({self.runs('second')})", fmt_seconds(m.cpu),
                             fmt_rate(records / m.best, "records"), fmt_bytes(m.peak),
                             f"committed as version {m.extra['version']}"])
                table["second_version"] = {"seconds": m.best, "cpu_seconds": m.cpu,
                                           "peak_bytes": m.peak, "records": records}
            else:
                rows.append(["ingest of version 2", NA, NA, NA, NA, str(m.error)])
        if "diff" in self.r:
            m = self.r["diff"]
            if m.ok:
                s = m.extra["summary"]
                found = ", ".join(f"{v:,} {k}" for k, v in s.items())
                rows.append([f"`diff_versions(v1, v2)` ({self.n_diff:,} records each)",
                             f"{fmt_seconds(m.best)} ({self.runs('diff')})", fmt_seconds(m.cpu),
                             fmt_rate(self.n_diff / m.best, "records"), fmt_bytes(m.peak),
                             f"found {found}: "
                             + ("**as generated**" if m.extra.get("matches")
                                else "**NOT as generated**")])
                table["diff"] = {"seconds": m.best, "cpu_seconds": m.cpu, "peak_bytes": m.peak,
                                 "summary": s, "expected": e,
                                 "changed_columns": m.extra.get("changed_columns")}
            else:
                rows.append(["diff_versions", NA, NA, NA, NA, str(m.error)])
        lines += [markdown_table(["Step", "Time", "CPU", "Rate", "Peak memory", "Notes"], rows),
                  ""]
        return lines, table

    def md_targets(self, stages: dict[str, Any],
                   floor: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        targets: list[dict[str, Any]] = []
        for key, label, n in (("e2e_parquet", "Parquet", self.n), ("e2e_csv", "CSV", self.n),
                              ("big_parquet", "Parquet", self.n_big),
                              ("big_csv", "CSV", self.n_big)):
            if key not in self.r:
                continue
            rate = self.rate(key)
            cpu_view = (f"{n / self.r[key].cpu:,.0f} records per CPU-second"
                        if self.ok(key) else NA)
            targets.append({"target": f"end to end >= 200,000 records/s ({label}, "
                                      f"{n:,} rows)",
                            "value": rate, "threshold": TARGET_RATE,
                            "shown": fmt_rate(rate, "records") if rate else NA,
                            "met": None if rate is None else rate >= TARGET_RATE,
                            "cpu_view": cpu_view})
        for fmt, label in (("parquet", "Parquet"), ("csv", "CSV")):
            if fmt in stages and fmt in floor:
                own, base = stages[fmt]["ours_seconds"], floor[fmt]["seconds"]
                own_cpu, base_cpu = stages[fmt]["ours_cpu_seconds"], floor[fmt]["cpu_seconds"]
                targets.append({
                    "target": f"our stages (canonicalize through log) <= read + validate "
                              f"({label})",
                    "value": own / base, "threshold": 1.0,
                    "shown": f"{fmt_seconds(own)} vs {fmt_seconds(base)} "
                             f"({fmt_ratio(own / base)})",
                    "met": own <= base,
                    "cpu_view": f"{fmt_seconds(own_cpu)} vs {fmt_seconds(base_cpu)} CPU "
                                f"({fmt_ratio(own_cpu / base_cpu)})",
                })
            else:
                targets.append({"target": f"our stages <= read + validate ({label})",
                                "value": None, "threshold": 1.0, "shown": NA, "met": None,
                                "cpu_view": NA})
        if self.ok("diff"):
            m = self.r["diff"]
            targets.append({"target": f"`diff_versions` of two {self.n_diff:,}-record versions "
                                      f"in a few seconds (<= {TARGET_DIFF_S:.0f} s)",
                            "value": m.best, "threshold": TARGET_DIFF_S,
                            "shown": fmt_seconds(m.best), "met": m.best <= TARGET_DIFF_S,
                            "cpu_view": f"{fmt_seconds(m.cpu)} CPU"})
        lines = ["### Targets", "",
                 "Judged on wall time (best run; for our stages, the sum of each stage's best). "
                 "The last column is the same measurement seen through CPU time, which the "
                 "background load disturbs much less.", "",
                 targets_table(targets), ""]
        return lines, targets

    def md_first_use(self) -> tuple[list[str], dict[str, float]]:
        cost = _first_use(self.r["e2e_parquet"]) if self.ok("e2e_parquet") else {}
        if not cost:
            return [], {}
        total = sum(cost.values())
        lines = ["### First-use cost (not in the times above)", "",
                 f"A fresh process pays, before its first ingest: imports of pyarrow, "
                 f"DataFusion, polars, pandas and the pipeline "
                 f"{fmt_seconds(cost['libraries_seconds'])}, "
                 f"the Great Expectations import {fmt_seconds(cost['gx_import_seconds'])}, and "
                 f"a first {N_WARMUP:,}-row ingest (first GX context, SQLite engine, kernels) "
                 f"{fmt_seconds(cost['warmup_ingest_seconds'])}: about {fmt_seconds(total)} in "
                 "all (least over the Parquet runs). A one-shot `trialproof ingest` of "
                 f"{self.n:,} rows pays it on top of the end-to-end time.", ""]
        return lines, cost

    def report(self) -> SuiteReport:
        machine = self.ctx.machine
        start = ", ".join(f"{x:.2f}" for x in machine.get("loadavg_at_start") or [])
        load_end = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
        end = ", ".join(f"{x:.2f}" for x in load_end)
        lines = [f"_Measured {now_utc()}{' (QUICK: 1/10 sizes)' if self.ctx.quick else ''} on "
                 f"{machine_line(machine)}. Load average (1, 5, 15 min) at start {start}, "
                 f"at end {end}: other jobs shared the {machine.get('nproc')} CPUs, so wall "
                 "times are the best of the runs and the CPU column (user + sys over all "
                 "threads, least over the runs) is the steadier view._", "",
                 f"Input: a generated LB-like dataset, 12 columns (8 strings, 1 integer, "
                 f"3 numbers), primary key (USUBJID, LBSEQ), 40 results per subject, as "
                 f"Parquet and CSV (seed {SEED}); a contract with required, enum, pattern, "
                 f"range and length constraints: {self.gx_checks()} validation checks.", ""]
        e2e, e2e_table = self.md_e2e()
        stages_md, stages = self.md_stages()
        floor_md, floor = self.md_floor()
        diff_md, diff = self.md_diff()
        targets_md, targets = self.md_targets(stages, floor)
        first_md, first_use = self.md_first_use()
        lines += e2e + stages_md + floor_md + diff_md + targets_md + first_md
        if self.ctx.quick:
            lines.append("_Quick run: sizes are 1/10 of the real benchmark; "
                         "the targets are indicative only._")
        data = {
            "suite": NAME,
            "quick": self.ctx.quick,
            "generated_at": now_utc(),
            "machine": machine,
            "method": {
                "timing": "time.perf_counter around the step, one step per fresh spawned "
                          "process; best (min) of N runs; stage split: least per stage over "
                          "the runs, from ingest()'s progress marks and wrappers",
                "memory": "peak RSS growth during the step: /proc/self/clear_refs=5 after setup, "
                          "VmHWM after the step minus VmRSS before it (fallback: ru_maxrss)",
                "excluded": "imports (incl. Great Expectations) and a warm-up ingest of "
                            f"{N_WARMUP:,} rows run in the child before the timing",
            },
            "sizes": {"main": self.n, "big": self.n_big, "diff": self.n_diff,
                      "warmup": N_WARMUP, "columns": len(CONTRACT["fields"])},
            "inputs": self.files,
            "benchmarks": {key: res.as_json() for key, res in self.r.items()},
            "end_to_end": e2e_table,
            "stages": stages,
            "floor": floor,
            "diff": diff,
            "first_use": first_use,
            "targets": targets,
            "checks": self.checks,
            "notes": self.notes,
            "loadavg_at_end": load_end,
        }
        return SuiteReport(NAME, data, "\n".join(lines).rstrip() + "\n", list(self.failures))


def run(ctx: Context) -> SuiteReport:
    """The ingest suite (``python -m bench.run --only ingest``)."""
    suite = _Suite(ctx)
    ctx.log(f"[ingest] {suite.n:,} rows (diff {suite.n_diff:,}, large {suite.n_big:,}); "
            f"inputs in {suite.inputs.dir}; scratch {suite.work}")
    suite.run_all()
    report = suite.report()
    report.data["duration_seconds"] = suite.elapsed()
    ctx.log(f"[ingest] done in {fmt_seconds(suite.elapsed())}")
    return report
