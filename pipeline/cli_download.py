"""``trialproof download``: fetch an anchored version from a server; it verifies itself."""

from __future__ import annotations

__all__ = ["download"]

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

Stage = Callable[[str], None]
Transfer = Callable[[int, int | None], None]


@contextmanager
def _progress(title: str, enabled: bool) -> Iterator[tuple[Stage, Transfer | None]]:
    """One display on stderr: the current step, and a bar for large transfers (see
    PROGRESS_FROM_BYTES). Off a terminal, one line per step and no bar."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TransferSpeedColumn,
    )

    from pipeline.cli_progress import stage_progress
    from pipeline.download import PROGRESS_FROM_BYTES

    if not enabled or not sys.stderr.isatty():
        with stage_progress(title, enabled=enabled) as stage:
            yield stage, None
        return
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                  DownloadColumn(), TransferSpeedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(title, total=None)

        def stage(name: str) -> None:
            bar.update(task, description=f"{title}: {name}")

        def transfer(done: int, total: int | None) -> None:
            if total is None or total >= PROGRESS_FROM_BYTES:
                bar.update(task, completed=done, total=total)

        yield stage, transfer


@click.command()
@click.argument("url")
@click.option("--trial", required=True)
@click.option("--dataset", required=True)
@click.option("--version", "version", type=click.IntRange(1), default=None,
              help="default: the latest")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="folder for records.<format>, manifest.json, checkpoint.txt")
@click.option("--vkey", "vkeys", multiple=True, required=True,
              help="the trusted log key (vkey text, or a file of vkeys); repeatable")
@click.option("--witness", "witness_keys", multiple=True,
              help="a witness's vkey (text or file); repeatable")
@click.option("--witness-threshold", type=click.IntRange(0), default=None,
              help="cosignatures needed from --witness keys (default: all of them)")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON for machines")
def download(url: str, trial: str, dataset: str, version: int | None, out_dir: Path,
             vkeys: tuple[str, ...], witness_keys: tuple[str, ...],
             witness_threshold: int | None, fmt: str, as_json: bool) -> None:
    """Download a version from a trialproof server and verify it against VKEY.

    Exit 0 verified and written, 1 a verification step failed (nothing is left
    behind), 2 usage or input error.
    """
    from pipeline.cli import _read_vkeys
    from pipeline.download import download as run_download

    trusted = _read_vkeys(vkeys)
    witnesses = _read_vkeys(witness_keys)
    threshold = len(witnesses) if witness_threshold is None else witness_threshold
    with _progress(f"download {trial}/{dataset}", not as_json) as (stage, transfer):
        result = run_download(url, trial, dataset, out_dir, trusted, version=version,
                              witnesses=witnesses, witness_threshold=threshold, fmt=fmt,
                              progress=transfer, stage=stage)
    text = (f"verified {trial}/{dataset} v{result.version}: {result.records} records, root "
            f"{result.root[:16]}…, log entry {result.log_index} in a checkpoint of size "
            f"{result.checkpoint_size}\nwrote {', '.join(str(f) for f in result.files)}")
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else text)
