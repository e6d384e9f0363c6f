"""Numbers in query parameters are ASCII digits: '¹' passes str.isdigit() but
int() refuses it (found by the fuzz test as a 500)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/campaigns/bf/report?window=%C2%B9", "window"),
    ("/api/v1/campaigns/bf/timeseries?window=%C2%B9", "window"),
    ("/api/v1/campaigns?limit=%C2%B9", "limit"),
    ("/api/v1/campaigns?cursor=%C2%B9", "cursor"),
    ("/api/v1/exports/clicks?cursor=%C2%B9:bf", "cursor"),
])
def test_superscript_digits_are_a_named_422(client: TestClient, auth: dict[str, str],
                                            path: str, field: str) -> None:
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "bf"})
    r = client.get(path, headers=auth)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]
