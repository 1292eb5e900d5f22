"""Progress lines name the running step and, once it has finished, the time it took."""

from __future__ import annotations

import re
import time

import pytest

from pipeline.cli_progress import stage_progress


def test_each_step_reports_its_own_time(capsys: pytest.CaptureFixture[str]) -> None:
    with stage_progress("ingest dm.xpt") as progress:
        progress("read")
        progress("validate")
        time.sleep(0.5)
        progress("canonicalize")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "ingest dm.xpt: read …"
    assert lines[2] == "ingest dm.xpt: validate …"
    took = {m.group(1): float(m.group(2)) for m in
            (re.fullmatch(r"ingest dm\.xpt: (\w+) took ([\d.]+)s", ln) for ln in lines) if m}
    assert set(took) == {"read", "validate", "canonicalize"}
    assert took["validate"] >= 0.5 and took["canonicalize"] < 0.5 and took["read"] < 0.5
    assert lines.index("ingest dm.xpt: validate …") < lines.index(
        next(ln for ln in lines if ln.startswith("ingest dm.xpt: validate took")))


def test_a_failed_step_says_when_it_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), stage_progress("ingest x") as progress:
        progress("commit")
        raise RuntimeError("disk full")
    assert re.search(r"ingest x: commit stopped after [\d.]+s", capsys.readouterr().err)


def test_disabled_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with stage_progress("ingest x", enabled=False) as progress:
        progress("read")
    assert capsys.readouterr().err == ""
