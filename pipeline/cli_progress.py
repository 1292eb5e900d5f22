"""Progress display for long CLI work: a rich spinner with the current stage, on stderr."""

from __future__ import annotations

__all__ = ["stage_progress"]

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stage_progress(title: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Yield a callback that announces each stage. Off a terminal, one line per stage."""
    if not enabled:
        yield lambda _stage: None
        return
    # rich is part of the pipeline extra; only commands that show progress load it.
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not sys.stderr.isatty():
        started = time.perf_counter()

        def line(stage: str) -> None:
            console.print(
                f"{title}: {stage} ({time.perf_counter() - started:.1f}s)", highlight=False
            )

        yield line
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(title)

        def update(stage: str) -> None:
            progress.update(task, description=f"{title}: {stage}")

        yield update
