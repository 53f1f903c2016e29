"""Property: schemathesis over the live ``/openapi.json`` finds no 5xx and no answer that
contradicts the spec (status code, content type, body schema, where the spec documents them).

Every operation of the running server's spec is fuzzed with parameters and bodies that follow
the spec (positive) and that break it (negative); operations with a ``{name}`` path parameter
also run against the served model's real name, so bodies get past the 404 of an unknown model
to validation and the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import MODEL, Served, start_server

pytestmark = pytest.mark.slow

CONFORMANCE = [content_type_conformance, response_schema_conformance]
EXAMPLES = 25  # per operation, generation mode and model name: the file stays under ~40 s
DASHBOARD = "/ui/"  # the dashboard's JSON API (driftloop.ui), mounted on the same app


@pytest.fixture(scope="module")
def operations(served_model: Served) -> Iterator[tuple[str, list[schemathesis.APIOperation]]]:
    srv = start_server(served_model)
    schema = schemathesis.openapi.from_url(srv.url + "/openapi.json")
    yield srv.url, [result.ok() for result in schema.get_all_operations()]
    srv.stop()


def _fuzz(operation: schemathesis.APIOperation, url: str, checks: list) -> None:
    names = [None, {"name": MODEL}] if "{name}" in operation.path else [None]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for path_parameters in names:
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode,
                                              path_parameters=path_parameters))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=url, checks=checks, timeout=30)

            try:
                check()
            except Unsatisfiable:
                # no input of this operation can break the spec (a GET without parameters,
                # string-only path parameters): there is no negative case to send
                if mode is GenerationMode.POSITIVE:
                    raise


def test_serving_api_answers_no_5xx_and_keeps_to_its_spec(operations):
    url, ops = operations
    served = [op for op in ops if not op.path.startswith(DASHBOARD)]
    assert {"/v1/models/{name}/predict", "/v2/models/{name}/infer", "/v1/feedback",
            "/v2/health/live", "/v2/health/ready", "/metrics",
            "/v1/admin/reload"} <= {op.path for op in served}
    for operation in served:
        _fuzz(operation, url, [not_a_server_error, status_code_conformance, *CONFORMANCE])


def test_dashboard_api_answers_no_5xx_and_keeps_to_its_spec(operations):
    url, ops = operations
    dashboard = [op for op in ops if op.path.startswith(DASHBOARD)]
    assert dashboard, "the dashboard's JSON API is in the spec"
    for operation in dashboard:
        _fuzz(operation, url, [not_a_server_error, status_code_conformance, *CONFORMANCE])
