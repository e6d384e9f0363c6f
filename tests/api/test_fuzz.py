"""Fuzz the whole API from its OpenAPI document (schemathesis, bounded examples):
no 5xx, no traceback in a response, and no write from a rejected request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from tests.conftest import snapshot
from tracker.openapi import document

EXAMPLES = 25


def test_no_server_errors_and_no_writes_from_rejected_requests(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str
) -> None:
    # something to find, so paths with real ids are exercised too
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "bf", "recipient": "r1"})
    seen: set[tuple[str, str]] = set()

    def fuzz(operation: Any) -> Callable[[], None]:
        path = operation.path

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy())
        def run(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            headers = {**(kwargs.get("headers") or {}), **auth}
            before = snapshot(r, prefix)
            res = client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                                 json=kwargs.get("json"), headers=headers)
            seen.add((kwargs["method"], path))
            assert res.status_code < 500, (kwargs, res.status_code, res.text[:500])
            assert "Traceback" not in res.text
            if 400 <= res.status_code < 500:
                if path.startswith("/api"):
                    assert res.headers["content-type"] == "application/problem+json"
                assert snapshot(r, prefix) == before, (kwargs, res.status_code)

        return run

    for result in schemathesis.openapi.from_dict(document()).get_all_operations():
        fuzz(result.ok())()
    assert len(seen) >= 25  # every operation was exercised
