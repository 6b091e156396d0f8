"""Schemathesis against the query API's own ``/openapi.json``: generated requests (valid and invalid) to every
operation, with a real token and purpose, find no 5xx, no undocumented status and no response that violates the
published schema. Bounded: 30 valid and 30 invalid examples per operation.

The database holds the catalogue's example residents, so the schema's examples (a real citizen ID, household,
region) exercise the 200 paths too, not only the refusals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from events.examples import CITIZENS, example_events
from services.grants import GRANTABLE_SECTIONS
from tests.support.infra import Endpoints
from tests.support.query_api import grant, headers, project, running_query_api
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
async def fuzzed_api(infra: Endpoints) -> AsyncIterator[tuple[str, dict[str, str]]]:
    databases = Databases(infra)
    db = await databases.create()
    history: list[dict[str, Any]] = sorted(example_events().values(), key=lambda e: str(e["occurred_at"]))
    await project(db, history)
    token = await grant(db, "fuzzer", GRANTABLE_SECTIONS, ["audit"])
    try:
        async with running_query_api(db) as api:
            yield api.url, headers(token, "audit")
    finally:
        await databases.drop_all()


def _check(case: Any, auth: dict[str, str], url: str) -> None:
    response = case.call(headers=auth, base_url=url)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        body = orjson.loads(response.content)
        assert set(body) == {"error"} and {"code", "message", "details"} == set(body["error"]), body


def test_no_server_error_and_no_schema_violation(fuzzed_api: tuple[str, dict[str, str]]) -> None:
    # Driven through schemathesis' Python API: its lazy pytest integration does not run under pytest 9.
    url, auth = fuzzed_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 8
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def fuzz(case: Any) -> None:
                _check(case, auth, url)

            try:
                fuzz()
            except Unsatisfiable:
                # Nothing to make invalid (an operation without parameters or body, e.g. /healthz).
                assert mode is GenerationMode.NEGATIVE, operation.label


def test_the_200_paths_conform_to_the_schema(fuzzed_api: tuple[str, dict[str, str]]) -> None:
    url, auth = fuzzed_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    child, migrant = CITIZENS["child"], CITIZENS["migrant"]
    cases = [
        ("GET", "/v1/residents/{citizen_id}", {"path_parameters": {"citizen_id": child}}),
        (
            "GET",
            "/v1/residents/{citizen_id}",
            {"path_parameters": {"citizen_id": migrant}, "query": {"as_of": "2020-01-01"}},
        ),
        ("POST", "/v1/residents:batchGet", {"body": {"citizen_ids": [child, migrant]}}),
        ("GET", "/v1/residents/{citizen_id}/events", {"path_parameters": {"citizen_id": migrant}}),
        ("GET", "/v1/residents/{citizen_id}/access-log", {"path_parameters": {"citizen_id": child}}),
        ("GET", "/v1/households/{household_id}", {"path_parameters": {"household_id": "510107-00012345"}}),
        ("GET", "/v1/statistics/population", {"query": {"region_code": "5101", "as_of": "2025-01-01"}}),
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {}),
    ]
    for method, path, parts in cases:
        case = schema[path][method].Case(**parts)  # type: ignore[arg-type]
        response = case.call(headers=auth, base_url=url)
        assert response.status_code == 200, (path, response.text)
        case.validate_response(response, checks=CHECKS)
