"""Progress display for long CLI work, on stderr: the step that is running, and the time
each step took once it has finished (so a slow step is the one that says so)."""

from __future__ import annotations

__all__ = ["stage_progress"]

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _Steps:
    """Times the current step; reports each one as it starts and when it finishes."""

    def __init__(self, title: str, started: Callable[[str], None],
                 finished: Callable[[str], None]) -> None:
        self.title = title
        self.started = started
        self.finished = finished
        self.current: str | None = None
        self.since = time.perf_counter()

    def begin(self, step: str) -> None:
        self.end()
        self.current, self.since = step, time.perf_counter()
        self.started(f"{self.title}: {step} …")

    def end(self, outcome: str = "took") -> None:
        if self.current is not None:
            seconds = time.perf_counter() - self.since
            self.finished(f"{self.title}: {self.current} {outcome} {seconds:.1f}s")
            self.current = None


@contextmanager
def _timed(steps: _Steps) -> Iterator[Callable[[str], None]]:
    """Yield ``steps.begin``; the last step is reported as finished, or as stopped."""
    try:
        yield steps.begin
    except BaseException:
        steps.end("stopped after")
        raise
    steps.end()


@contextmanager
def stage_progress(title: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Yield a callback that announces each step. Off a terminal, a line when a step starts
    and one with its time when it finishes; on a terminal, a spinner with the running step
    and its own elapsed time, above which each finished step stays with its time."""
    if not enabled:
        yield lambda _stage: None
        return
    # rich is part of the pipeline extra; only commands that show progress load it.
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not sys.stderr.isatty():
        def line(text: str) -> None:
            console.print(text, highlight=False)

        with _timed(_Steps(title, line, line)) as begin:
            yield begin
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(title)

        def running(text: str) -> None:
            progress.reset(task, description=text)  # restarts the elapsed time

        def done(text: str) -> None:
            progress.console.print(text, highlight=False)

        with _timed(_Steps(title, running, done)) as begin:
            yield begin
