"""Short codes: derived from the link's identity and the workspace's secret,
claimed atomically; a taken code goes to the next candidate, never overwritten."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

import tracker.store
from tracker.keys import Keys
from tracker.models import DELETED
from tracker.settings import Settings

LINK = {"url": "https://s.example/p", "campaign": "bf", "recipient": "r1"}


def _draws(*codes: str) -> object:
    def fake(key: bytes, identity: str, length: int = 8) -> Iterator[str]:
        yield from codes
    return fake


def test_a_taken_code_goes_to_the_next_candidate(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = client.post("/api/v1/links", json=LINK, headers=auth).json()
    keys = Keys(prefix)
    before = r.hget(keys.link_bucket(first["code"]), first["code"])
    # Another identity whose first candidates are the taken code: it takes the next.
    monkeypatch.setattr(tracker.store, "derived_codes",
                        _draws(first["code"], first["code"], "Zzzzzzzz"))
    second = client.post("/api/v1/links", json={**LINK, "recipient": "r2"}, headers=auth).json()
    assert second["code"] == "Zzzzzzzz"
    assert r.hget(keys.link_bucket(first["code"]), first["code"]) == before  # untouched
    assert client.get(f"/api/v1/links/{first['code']}", headers=auth).json()["recipient"] == "r1"
    assert client.get(f"/{first['code']}").headers["location"].startswith(first["url"])
    assert client.get("/api/v1/links/Zzzzzzzz", headers=auth).json()["recipient"] == "r2"


def test_a_code_of_a_link_stored_the_old_way_is_never_taken(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = Keys(prefix)
    r.hset(keys.link("AgedLinkA"), mapping={"w": "acme", "c": "old", "r": "x",
                                           "u": "https://s.example/old", "t": "1"})
    monkeypatch.setattr(tracker.store, "derived_codes", _draws("AgedLinkA", "NewLinkB"))
    made = client.post("/api/v1/links", json=LINK, headers=auth).json()
    assert made["code"] == "NewLinkB"
    assert r.hget(keys.link("AgedLinkA"), "u") == "https://s.example/old"
    assert client.get("/AgedLinkA").headers["location"].startswith("https://s.example/old")


def test_the_same_identity_is_the_same_code_in_its_workspace_only(
    client: TestClient, auth: dict[str, str], redis_url: str, prefix: str,
) -> None:
    from tests.conftest import create_workspace, make_settings

    a = client.post("/api/v1/links", json=LINK, headers=auth).json()
    assert client.post("/api/v1/links", json=LINK, headers=auth).json()["code"] == a["code"]
    other = {"Authorization": "Bearer " + create_workspace(make_settings(redis_url, prefix),
                                                            "other")}
    b = client.post("/api/v1/links", json=LINK, headers=other).json()
    # another workspace's secret: another code (codes cannot be guessed from ids)
    assert b["code"] != a["code"]
    assert client.get(f"/api/v1/links/{a['code']}", headers=auth).json()["recipient"] == "r1"


def test_a_deleted_links_code_is_never_reused(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
) -> None:
    keys = Keys(prefix)
    first = client.post("/api/v1/links", json=LINK, headers=auth).json()["code"]
    assert client.delete(f"/api/v1/links/{first}", headers=auth).status_code == 204
    assert r.hget(keys.link_bucket(first), first) == DELETED
    assert client.get(f"/{first}").status_code == 404
    again = client.post("/api/v1/links", json=LINK, headers=auth).json()["code"]
    assert again != first
    assert client.get(f"/{again}").status_code == 302
    assert client.get(f"/{first}").status_code == 404
    report = client.get("/api/v1/campaigns/bf/report", headers=auth).json()
    assert report["links"] == 1


def test_reserved_words_are_never_codes(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracker.store, "derived_codes", _draws("dashboard", "Yyyyyyyy"))
    assert client.post("/api/v1/links", json=LINK, headers=auth).json()["code"] == "Yyyyyyyy"


def test_concurrent_creates_of_the_same_links_meet_at_one_code_each(
    settings: Settings, api_key: str, r: redis.Redis, prefix: str,
) -> None:
    """Eight requests racing to create the same 300 links (with 4 partitions,
    so codes are drawn into each recipient's partition) make 300 links."""
    import asyncio

    from tracker.store import Store, connect
    from tracker.validation import LinkSpec

    s = Settings(**{**settings.__dict__, "partitions": 4})
    secret = str(r.hget(Keys(prefix).workspace("acme"), "hs"))
    specs = [LinkSpec(destination="https://s.example/p", url="https://s.example/p",
                      campaign="race", recipient=f"r{i}", utm={}, expires_at=None,
                      metadata=None) for i in range(300)]

    async def go() -> list[list[str]]:
        conn = connect(s.effective_redis_url)
        store = Store(conn, s)
        try:
            made = await asyncio.gather(*[store.create_links("acme", specs, secret)
                                          for _ in range(8)])
            counts = await store.campaign_counts("acme", "race")
        finally:
            await conn.aclose()
        assert counts[1] == 300 and counts[2] == 300
        return [[link.code for link in links] for links in made]

    codes = asyncio.run(go())
    assert all(c == codes[0] for c in codes) and len(set(codes[0])) == 300
    keys = Keys(prefix, 4)
    assert sum(int(r.hget(keys.link_counts(p), "acme\x1frace") or 0) for p in range(4)) == 300
