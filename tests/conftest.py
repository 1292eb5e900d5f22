"""Shared pytest configuration: the Hypothesis profile, the committed test vectors, and the
``pilot_data`` marker for the few tests that read the CDISC pilot datasets."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from trialproof_paths import PILOT_DIR, VECTORS_DIR

# One profile for local runs and CI: no per-example deadline (CI machines are
# slow and noisy), and a bounded number of examples so the suite stays fast.
# Tests that are expensive per example lower max_examples with @settings.
settings.register_profile("ci", deadline=None, max_examples=100)
settings.load_profile("ci")


#: Where each tool a ``needs`` marker names is looked for.
TOOLS: dict[str, Callable[[], bool]] = {
    "chromium": lambda: shutil.which("chromium") is not None and Path("/usr/bin/chromium").exists(),
    "node": lambda: shutil.which("node") is not None,
    "openssl": lambda: shutil.which("openssl") is not None,
    "anvil": lambda: _anvil().is_file(),
}


def _anvil() -> Path:
    from pipeline.demo_services import ANVIL

    return ANVIL


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of end-to-end tests first (``scaleout``, then ``slow``), each file's tests
    in their order: run a file per worker at a time (``make test``), the longest start
    first and no worker is left alone with one at the end."""
    def rank(item: pytest.Item) -> int:
        return next((n for n, name in enumerate(("scaleout", "slow"))
                     if item.get_closest_marker(name) is not None), 2)

    file_rank: dict[Path, int] = {}
    for item in items:
        file_rank[item.path] = min(file_rank.get(item.path, 2), rank(item))
    items.sort(key=lambda item: file_rank[item.path])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``pilot_data`` test is skipped, by itself and saying why, when the data is absent;
    a ``needs(tool)`` test too when the tool is missing (under CI, where ``.ci/run``
    installs every tool, it fails instead)."""
    if item.get_closest_marker("pilot_data") is not None and not PILOT_DIR.is_dir():
        # The test's name in the reason keeps the summary one line per skipped test.
        pytest.skip(f"{item.name}: pilot_data, the CDISC pilot datasets are not at "
                    f"{PILOT_DIR} (set TRIALPROOF_PILOT_DATA)")
    for marker in item.iter_markers("needs"):
        for tool in marker.args:
            if TOOLS[tool]():
                continue
            message = f"{item.name}: needs {tool}, which is not installed (make install / .ci/run)"
            if os.environ.get("TRIALPROOF_TEST_REQUIRE_SERVICES"):
                pytest.fail(message)
            pytest.skip(message)


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The published test vectors committed under tests/vectors (see SOURCES.md there)."""
    return VECTORS_DIR


@pytest.fixture
def pilot_dir(request: pytest.FixtureRequest) -> Path:
    """The CDISC pilot data directory; only for tests marked ``pilot_data``."""
    if request.node.get_closest_marker("pilot_data") is None:
        pytest.fail("a test that reads the CDISC pilot data must be marked pilot_data")
    return PILOT_DIR


@pytest.fixture(autouse=True)
def _no_sponsor_registry(monkeypatch: pytest.MonkeyPatch,
                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """`trialproof ingest` refuses a trial missing from the sponsor registry, which is
    ./registry/sponsors.yaml when run from the repository. Tests ingest trials of their
    own, so by default they point at no registry (the check is then skipped); a test of
    the registry check sets TRIALPROOF_REGISTRY itself."""
    monkeypatch.setenv("TRIALPROOF_REGISTRY",
                       str(tmp_path_factory.getbasetemp() / "no-sponsor-registry.yaml"))
