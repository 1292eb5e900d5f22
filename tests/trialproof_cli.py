"""The trialproof CLI in a process of its own, without paying its imports at every call.

:func:`trialproof` runs ``trialproof ARGS`` as ``python -m pipeline ARGS`` would, in a
child forked from a fork server (``multiprocessing``'s ``forkserver``) that imported the
CLI and its heavy dependencies (pandas, pyarrow, Great Expectations, web3) once per test
worker. The child has its own environment, working directory, umask, exit status and
standard output and error (files, read back whole), like a subprocess; it starts in
milliseconds instead of the seconds those imports take. The fork server is single
threaded, so forking it is safe.

The CLI's start-up itself (which modules a command imports, the ``python -m`` entry
points) is tested with real subprocesses instead.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["trialproof"]

#: Imported once, in the fork server, for every child to inherit.
PRELOAD = ["pipeline.cli", "pipeline.validation.suite", "great_expectations", "web3",
           "trialproof_cli"]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def trialproof(*args: str | Path, env: Mapping[str, str | None] | None = None,
               cwd: str | Path | None = None, timeout: float = 300
               ) -> subprocess.CompletedProcess[str]:
    """``trialproof ARGS`` with this process's environment updated by ``env`` (a None value
    removes the variable), in ``cwd`` (default: this process's); raises
    :class:`subprocess.TimeoutExpired` after ``timeout`` seconds, as ``subprocess.run``
    does."""
    argv = [str(a) for a in args]
    environment = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    umask = os.umask(0o022)
    os.umask(umask)
    with tempfile.TemporaryDirectory(prefix="trialproof-cli-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        child = _context.Process(target=_run_cli, args=(
            argv, environment, str(cwd or Path.cwd()), umask, str(out), str(err)))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(["trialproof", *argv], timeout)
        return subprocess.CompletedProcess(
            ["trialproof", *argv], child.exitcode,
            out.read_text(encoding="utf-8", errors="replace") if out.exists() else "",
            err.read_text(encoding="utf-8", errors="replace") if err.exists() else "")


def _run_cli(argv: Sequence[str], environment: Mapping[str, str], cwd: str, umask: int,
             out: str, err: str) -> None:
    """In the child: become a fresh ``python -m pipeline ARGV`` process, then run it. Its
    exit status is the CLI's (``SystemExit`` ends a multiprocessing child with it)."""
    os.umask(umask)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.argv = ["trialproof", *argv]
    from pipeline.cli import main

    main(list(argv))
