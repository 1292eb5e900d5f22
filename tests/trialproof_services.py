"""What a test does when a server it needs (PostgreSQL, Redis) cannot be reached."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: Set by CI (.ci/run), where the servers must be up: then an unreachable server fails the
#: test instead of skipping it.
REQUIRE_SERVICES = "TRIALPROOF_TEST_REQUIRE_SERVICES"


def service_unreachable(message: str) -> NoReturn:
    """Skip the test saying why; fail it instead when ``$TRIALPROOF_TEST_REQUIRE_SERVICES``
    is set."""
    if os.environ.get(REQUIRE_SERVICES):
        pytest.fail(f"{message} (and {REQUIRE_SERVICES} is set)")
    pytest.skip(message)
