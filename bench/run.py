"""Run the benchmark suites: ``python -m bench.run [--only SUITE] [--quick] [--no-doc]``.

Each suite is a module ``bench.<name>`` with ``run(ctx: Context) -> SuiteReport``.
A full run writes ``bench/out/results-<name>.json`` and regenerates the
``<!-- <name>:begin -->`` ... ``<!-- <name>:end -->`` section of
``docs/benchmarks.md``; ``--quick`` (1/10 sizes, a smoke run) writes
``results-<name>-quick.json`` and leaves the document alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from bench.harness import (
    DOC_PATH,
    OUT_DIR,
    Context,
    SuiteReport,
    about_block,
    fmt_seconds,
    machine_info,
    machine_line,
    target_lines,
    update_doc,
    write_json,
)

#: The suites, in the order ``make bench`` runs them.
SUITES = ("core", "ingest", "cli", "serve", "anchors")


def _load(name: str, required: bool) -> object | None:
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{name}" or required:
            raise
        print(f"[{name}] skipped: bench/{name}.py does not exist yet")
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", choices=SUITES, help="run one suite")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run at 1/10 sizes; does not touch docs/benchmarks.md")
    parser.add_argument("--no-doc", action="store_true",
                        help="do not regenerate docs/benchmarks.md")
    args = parser.parse_args(argv)

    machine = machine_info()
    ctx = Context(quick=args.quick, machine=machine)
    print(f"machine: {machine_line(machine)}")
    print(f"mode: {'QUICK (1/10 sizes)' if args.quick else 'full'}; results in {OUT_DIR}")
    names = [args.only] if args.only else list(SUITES)
    reports: list[SuiteReport] = []
    failed = False
    for name in names:
        module = _load(name, required=args.only is not None)
        if module is None:
            continue
        start = time.perf_counter()
        try:
            report: SuiteReport = module.run(ctx)  # type: ignore[attr-defined]
        except Exception as exc:  # one broken suite does not hide the others
            print(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
            failed = True
            continue
        reports.append(report)
        suffix = "-quick" if args.quick else ""
        json_path = OUT_DIR / f"results-{report.name}{suffix}.json"
        write_json(json_path, report.data)
        print()
        print(report.markdown)
        print()
        print(f"[{name}] {fmt_seconds(time.perf_counter() - start)}; JSON: {json_path}")
        for line in target_lines(name, report.data.get("targets", [])):
            print(line)
        if report.failures:
            failed = True
            for failure in report.failures:
                print(f"[{name}] FAILED CHECK: {failure}")

    if reports and not args.quick and not args.no_doc:
        sections = {"about": about_block(machine)}
        sections.update({report.name: report.markdown for report in reports})
        update_doc(sections)
        print(f"updated {DOC_PATH}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
