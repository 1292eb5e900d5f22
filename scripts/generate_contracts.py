#!/usr/bin/env python3
"""Regenerate schemas/contracts/cdiscpilot01/ from the CDISC pilot define.xml files.

This script is the only way those contracts are written: edit pipeline/define_xml.py and
run it again, never the JSON. Each contract is checked against the pilot data beside its
define.xml; the deviations (constraints of define.xml the data breaks, dropped one by one)
are printed and kept in the contract under trialproof.deviations.

    python scripts/generate_contracts.py [SHARED_DIR]   # default: ../shared beside the repo
    python scripts/generate_contracts.py --check        # exit 1 if the committed files differ
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.define_xml import write_contracts  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402

OUT_ROOT = REPO / "schemas" / "contracts" / "cdiscpilot01"
# define.xml (relative to the shared data dir) -> output directory under OUT_ROOT
TARGETS = {
    "data/cdisc_pilot/sdtm_cdiscpilot01/define.xml": "sdtm",
    "data/cdisc_pilot/adam_cdiscpilot01/define.xml": "adam",
    "data/cdisc_pilot/sdtm_cdiscpilot01_update2/define.xml": "sdtm_update2",
}


def generate(shared: Path, out_root: Path) -> dict[str, list[Path]]:
    """Write every target's contracts under ``out_root``, removing stale ones; return them."""
    written: dict[str, list[Path]] = {}
    for define, subdir in TARGETS.items():
        out_dir = out_root / subdir
        paths = write_contracts(shared / define, out_dir)
        for stale in sorted(set(out_dir.glob("*.json")) - set(paths)):
            stale.unlink()
        written[subdir] = paths
    return written


def _report(written: dict[str, list[Path]]) -> int:
    count = 0
    for subdir, paths in written.items():
        print(f"{subdir}: {len(paths)} contracts")
        for path in paths:
            options = json.loads(path.read_text(encoding="utf-8"))["trialproof"]
            for deviation in options.get("deviations", []):
                print(f"  {path.stem}: {deviation}")
                count += 1
    print(f"{count} deviation(s) of the data from define.xml")
    return count


def _differences(expected_root: Path, actual_root: Path) -> list[str]:
    expected = {p.relative_to(expected_root): p for p in expected_root.rglob("*.json")}
    actual = {p.relative_to(actual_root): p for p in actual_root.rglob("*.json")}
    problems = [f"missing: {p}" for p in sorted(set(expected) - set(actual))]
    problems += [f"not generated: {p}" for p in sorted(set(actual) - set(expected))]
    problems += [f"differs: {p}" for p in sorted(set(expected) & set(actual))
                 if expected[p].read_bytes() != actual[p].read_bytes()]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared",
                        help="the shared directory holding data/cdisc_pilot (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="only compare with the committed contracts; exit 1 on any difference")
    args = parser.parse_args(argv)
    try:
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                generate(args.shared, Path(tmp))
                problems = _differences(Path(tmp), OUT_ROOT)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
        _report(generate(args.shared, OUT_ROOT))
    except (PipelineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
