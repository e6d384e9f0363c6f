from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import create_workspace
from tracker.settings import Settings

LINK = {"url": "https://s.example/p", "campaign": "bf", "recipient": "r1"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer trk_not-a-real-key"},
    ],
)
def test_no_valid_key_is_a_401_problem(client: TestClient, api_key: str,
                                       headers: dict[str, str]) -> None:
    for method, path in [("POST", "/api/v1/links"), ("POST", "/api/v1/links/batch"),
                         ("GET", "/api/v1/links/abcdefgh"),
                         ("GET", "/api/v1/campaigns/bf/report")]:
        res = client.request(method, path, json=LINK, headers=headers)
        assert res.status_code == 401, (method, path)
        assert res.headers["content-type"] == "application/problem+json"
        assert res.json()["status"] == 401
        assert "www-authenticate" in res.headers


def test_a_key_sees_only_its_own_workspace(
    client: TestClient, settings: Settings, auth: dict[str, str]
) -> None:
    other = {"Authorization": f"Bearer {create_workspace(settings, 'rival')}"}
    mine = client.post("/api/v1/links", json=LINK, headers=auth).json()
    code = mine["code"]
    for method in ("GET", "PATCH", "DELETE"):
        res = client.request(method, f"/api/v1/links/{code}", headers=other,
                             json={"disabled": True} if method == "PATCH" else None)
        assert res.status_code == 404, method
    assert client.get("/api/v1/campaigns/bf/report", headers=other).status_code == 404
    # nothing the other key tried changed the link
    assert client.get(f"/api/v1/links/{code}", headers=auth).json() == mine
    # the same (campaign, recipient, url) in another workspace is another link
    theirs = client.post("/api/v1/links", json=LINK, headers=other).json()
    assert theirs["code"] != code


def test_keys_are_stored_only_as_hashes(
    client: TestClient, api_key: str, r: object, prefix: str
) -> None:
    import redis

    assert isinstance(r, redis.Redis)
    for key in r.scan_iter(match=f"{prefix}:*"):
        assert api_key not in key
        if r.type(key) == "string":
            assert r.get(key) != api_key
