"""Shared pytest configuration: the Hypothesis profile and the shared test-vector directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# One profile for local runs and CI: no per-example deadline (CI machines are
# slow and noisy), and a bounded number of examples so the suite stays fast.
# Tests that are expensive per example lower max_examples with @settings.
settings.register_profile("ci", deadline=None, max_examples=100)
settings.load_profile("ci")

#: The repository root (this file lives in <root>/tests/).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Test vectors and design notes live beside the repository, in ../shared.
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared`` directory beside the repository root; skips when it is absent."""
    if not (SHARED_DIR / "vectors").is_dir():
        pytest.skip(
            f"shared test vectors not found at {SHARED_DIR}/vectors "
            "(expected a 'shared' directory beside the repository root)"
        )
    return SHARED_DIR
