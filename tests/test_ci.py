"""CI refuses to run without its servers: ``.ci/services`` fails when PostgreSQL or Redis is
down, and under ``$TRIALPROOF_TEST_REQUIRE_SERVICES`` a test whose server is unreachable
fails instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from trialproof_paths import REPO_ROOT
from trialproof_services import REQUIRE_SERVICES

SERVICES = REPO_ROOT / ".ci" / "services"
NOTHING_LISTENS = "1"  # a privileged port no server here uses


def services(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SERVICES)], capture_output=True, text=True, check=False,
                          env={**os.environ, "CI_START": "0", "CI_WAIT_SECONDS": "0", **env},
                          timeout=60)


def test_ci_run_checks_the_services_before_testing() -> None:
    run = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert run.index(".ci/services") < run.index("make test")
    assert f"export {REQUIRE_SERVICES}=1" in run


@pytest.mark.postgres
def test_services_pass_when_both_are_up() -> None:
    done = services()
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("variable", "name"), [("CI_PG_PORT", "PostgreSQL"),
                                                 ("CI_REDIS_PORT", "Redis")])
def test_services_fail_naming_the_one_that_is_down(variable: str, name: str) -> None:
    done = services(**{variable: NOTHING_LISTENS})
    assert done.returncode == 1
    assert f"{name} is not running on 127.0.0.1:{NOTHING_LISTENS}" in done.stderr


@pytest.mark.parametrize(("required", "outcome"), [("", "1 skipped"), ("1", "1 failed")])
def test_an_unreachable_postgres_skips_or_fails(tmp_path: Path, required: str,
                                                outcome: str) -> None:
    test = tmp_path / "anchoring" / "test_needs_pg.py"
    test.parent.mkdir()
    (tmp_path / "anchoring" / "conftest.py").write_text(
        (REPO_ROOT / "tests" / "anchoring" / "conftest.py").read_text(encoding="utf-8"))
    test.write_text("def test_pg(postgres_url):\n    pass\n")
    env = {**os.environ, REQUIRE_SERVICES: required,
           "TRIALPROOF_TEST_PG_ADMIN_URL":
               f"postgresql+psycopg2://postgres@127.0.0.1:{NOTHING_LISTENS}/postgres",
           "PYTHONPATH": str(REPO_ROOT / "tests")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-c", os.devnull, "--rootdir", str(tmp_path), str(test)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
                          timeout=120)
    assert outcome in done.stdout, done.stdout + done.stderr
