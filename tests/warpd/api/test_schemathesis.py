"""Schemathesis against the served OpenAPI document: generated requests, the whole daemon.

Every operation gets a bounded number of generated requests with working
credentials (an admin token, an API key on an account with a rate plan, a
route and the demo simulator behind it). Each answer must be documented
(status, content type, schema), never a 5xx, and schema-invalid requests must
be refused. Schema-valid requests may still be refused: whether a number is
allocated, a balance covers the price or a CSV row parses is not something a
JSON Schema can say, so the "positive data accepted" check is left out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.warpd.api.conftest import ADMIN_TOKEN, Http

EXAMPLES = 10


def check_operation(base: str, operation: Any, token: str) -> str | None:
    headers = {"Authorization": f"Bearer {token}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=base, headers=headers, timeout=10, excluded_checks=[positive_data_acceptance]
        )

    try:
        check()
    except Exception as exc:
        return f"{operation.label}: {str(exc)[:3000]}"
    return None


def run_operations(base: str, doc: dict[str, Any], key: str) -> list[str]:
    failures = []
    for result in schemathesis.openapi.from_dict(doc).get_all_operations():
        operation = result.ok()
        security = doc["paths"][operation.path][operation.method.lower()]["security"]
        token = ADMIN_TOKEN if security == [{"adminToken": []}] else key
        failure = check_operation(base, operation, token)
        if failure:
            failures.append(failure)
    return failures


async def test_generated_requests_get_documented_answers(http: Http) -> None:
    _, (key,) = await http.customer(balance=10**12)
    status, doc = await http.call("GET", "/v1/openapi.json")
    assert status == 200
    failures = await asyncio.to_thread(run_operations, http.base, doc, key)
    assert not failures, "\n\n".join(failures)
