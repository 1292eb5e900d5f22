"""``trialproof trials`` and ``trialproof datasets``: what a home holds.

Both read the log, the source of truth for which versions exist, and print
one line per trial or dataset (or JSON with ``--json``).
"""

from __future__ import annotations

__all__ = ["datasets", "trials"]

from pathlib import Path
from typing import Any

import click

from pipeline.cli import _emit, _open_home, home_option, json_option
from pipeline.errors import UsageError
from pipeline.home import Home


def _holdings(home: Home) -> dict[str, list[dict[str, Any]]]:
    """For each trial (sorted), its datasets (sorted), each with its latest version."""
    store = home.store()
    held: dict[str, list[dict[str, Any]]] = {}
    for trial, dataset in sorted(store.datasets()):
        versions = store.versions(trial, dataset)
        if not versions:
            continue
        latest = versions[-1]
        held.setdefault(trial, []).append(
            {
                "dataset": dataset,
                "versions": len(versions),
                "latest_version": latest.version,
                "records": latest.manifest["records"],
                "root": latest.manifest["root"],
                "log_index": latest.log_index,
                "ingested_at": latest.manifest["ingested_at"],
            }
        )
    return held


@home_option
@json_option
def _trials(home_dir: Path | None, as_json: bool) -> None:
    """List the trials the home holds, with their datasets and versions."""
    held = _holdings(_open_home(home_dir))
    rows = [
        {
            "trial": trial,
            "datasets": len(sets),
            "versions": sum(d["versions"] for d in sets),
            "last_ingested_at": max(d["ingested_at"] for d in sets),
        }
        for trial, sets in held.items()
    ]
    text = "\n".join(
        f"{r['trial']}  {r['datasets']} dataset{'s' * (r['datasets'] != 1)}  "
        f"{r['versions']} version{'s' * (r['versions'] != 1)}  "
        f"last ingested {r['last_ingested_at']}"
        for r in rows
    )
    _emit(as_json, {"trials": rows}, text or "the home holds no trial yet")


@home_option
@json_option
@click.option("--trial", required=True, help="the trial whose datasets to list")
def _datasets(home_dir: Path | None, as_json: bool, trial: str) -> None:
    """List a trial's datasets, each with its latest version."""
    held = _holdings(_open_home(home_dir))
    if trial not in held:
        known = ", ".join(held) or "none"
        raise UsageError(f"--trial {trial!r}: the home holds no such trial (trials: {known})")
    rows = held[trial]
    text = "\n".join(
        f"{r['dataset']}  v{r['latest_version']}  {r['records']} records  "
        f"root {r['root'][:16]}…  ingested {r['ingested_at']}  "
        f"({r['versions']} version{'s' * (r['versions'] != 1)})"
        for r in rows
    )
    _emit(as_json, {"trial": trial, "datasets": rows}, text)


# Typed here, not inferred through the decorators: pipeline.cli imports this module.
trials: click.Command = click.command("trials")(_trials)
datasets: click.Command = click.command("datasets")(_datasets)
