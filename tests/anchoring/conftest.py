"""Fixtures for the anchoring tests: a fresh PostgreSQL database per test.

The server is ``postgresql+psycopg2://postgres@127.0.0.1:5432`` unless the
environment variable ``TRIALPROOF_TEST_PG_ADMIN_URL`` names another admin URL.
Tests that use :func:`postgres_url` are skipped, saying why, only when that
server cannot be reached, and fail then under CI (``$TRIALPROOF_TEST_REQUIRE_SERVICES``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool
from trialproof_services import service_unreachable

PG_ADMIN_URL = os.environ.get(
    "TRIALPROOF_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test.

    The database is dropped ``WITH (FORCE)``, so connections a test leaves
    open do not keep it alive.
    """
    admin_url = make_url(PG_ADMIN_URL)
    try:
        admin = create_engine(
            admin_url,
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"connect_timeout": 5},
        )
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (DBAPIError, NoSuchModuleError, ImportError) as exc:
        service_unreachable(
            f"PostgreSQL is unreachable at {admin_url.render_as_string()}: "
            f"{str(exc).splitlines()[0]}"
        )
    name = f"tp_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
