"""Short codes: reserved atomically; a collision draws again and never overwrites."""

from __future__ import annotations

import pytest
import redis
from starlette.testclient import TestClient

import tracker.store
from tracker.keys import Keys

LINK = {"url": "https://s.example/p", "campaign": "bf", "recipient": "r1"}


def test_a_colliding_code_is_drawn_again(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = client.post("/api/v1/links", json=LINK, headers=auth).json()
    before = r.hgetall(Keys(prefix).link(first["code"]))
    # The generator draws the taken code twice, then a free one.
    draws = iter([first["code"], first["code"], "Zzzzzzzz"])
    monkeypatch.setattr(tracker.store, "new_code", lambda length: next(draws))
    second = client.post("/api/v1/links", json={**LINK, "recipient": "r2"}, headers=auth).json()
    assert second["code"] == "Zzzzzzzz"
    assert r.hgetall(Keys(prefix).link(first["code"])) == before  # untouched
    assert client.get(f"/api/v1/links/{first['code']}", headers=auth).json()["recipient"] == "r1"
    assert client.get(f"/{first['code']}").headers["location"].startswith(first["url"])


def test_reserved_words_are_never_codes(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter(["dashboard", "Yyyyyyyy"])
    monkeypatch.setattr(tracker.store, "new_code", lambda length: next(draws))
    assert client.post("/api/v1/links", json=LINK, headers=auth).json()["code"] == "Yyyyyyyy"
