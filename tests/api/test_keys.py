"""API keys: scoped, listed by id (never shown again), revoked at once."""

from __future__ import annotations

import json

import redis
from starlette.testclient import TestClient

from tests.conftest import snapshot


def test_read_only_keys_read_and_nothing_else(client: TestClient, auth: dict[str, str],
                                              r: redis.Redis, prefix: str) -> None:
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "bf"})
    res = client.post("/api/v1/keys", headers=auth, json={"scope": "read"})
    assert res.status_code == 201 and res.json()["scope"] == "read"
    read = {"Authorization": f"Bearer {res.json()['api_key']}"}
    assert client.get("/api/v1/campaigns/bf/report", headers=read).status_code == 200
    assert client.get("/api/v1/exports/clicks", headers=read).status_code == 200
    before = snapshot(r, prefix)
    for method, path, body in [
        ("POST", "/api/v1/links", {"url": "https://s.example/", "campaign": "bf"}),
        ("PATCH", "/api/v1/workspace", {"currency": "EUR"}),
        ("POST", "/api/v1/events", []),
        ("GET", "/api/v1/keys", None),
        ("POST", "/api/v1/keys", {"scope": "full"}),
    ]:
        res = client.request(method, path, headers=read, json=body)
        assert res.status_code == 403, (method, path)
        assert res.headers["content-type"] == "application/problem+json"
    assert snapshot(r, prefix) == before


def test_list_revoke_and_rotate(client: TestClient, auth: dict[str, str]) -> None:
    made = client.post("/api/v1/keys", headers=auth, json={"scope": "read"}).json()
    listed = client.get("/api/v1/keys", headers=auth).json()["keys"]
    assert {k["scope"] for k in listed} == {"full", "read"}
    assert made["api_key"] not in json.dumps(listed)  # shown once, never listed
    other = {"Authorization": f"Bearer {made['api_key']}"}
    assert client.get("/api/v1/campaigns", headers=other).status_code == 200
    assert client.delete(f"/api/v1/keys/{made['key_id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/campaigns", headers=other).status_code == 401  # at once
    assert client.delete(f"/api/v1/keys/{made['key_id']}", headers=auth).status_code == 404
    assert client.post("/api/v1/keys", headers=auth,
                       json={"scope": "admin"}).status_code == 422
