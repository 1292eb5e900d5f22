"""A schemathesis run against the served OpenAPI spec: no 5xx, no response that breaks it."""

from __future__ import annotations

from typing import Any

import schemathesis
from conftest import ServedHome
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pipeline.server import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_api_conforms_to_its_openapi_spec(served: ServedHome) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(served.path))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, suppress_health_check=list(HealthCheck), deadline=None,
                  database=None)
        def run(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        run()
