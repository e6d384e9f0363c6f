"""The redirect makes at most one Redis round trip: counted on the real server."""

from __future__ import annotations

import redis
from starlette.testclient import TestClient


def command_calls(r: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in r.info("commandstats").items()}


def delta(r: redis.Redis, before: dict[str, int]) -> dict[str, int]:
    after = command_calls(r)
    out = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    out.pop("info", None)  # our own measuring
    return out


def test_one_round_trip_per_redirect(client: TestClient, auth: dict[str, str],
                                     r: redis.Redis) -> None:
    codes = [x["code"] for x in client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipients": ["a", "b"]}).json()["links"]]
    # A miss: one script call, which reads the link's record (from its bucket)
    # and its template (kept once per partition) and appends the click inside Redis.
    before = command_calls(r)
    assert client.get(f"/{codes[0]}").status_code == 302
    assert delta(r, before) == {"evalsha": 1, "hget": 2, "xadd": 1}
    # Hits: one XADD each, nothing else.
    before = command_calls(r)
    for _ in range(10):
        assert client.get(f"/{codes[0]}").status_code == 302
    assert delta(r, before) == {"xadd": 10}
    # Junk paths and codes outside the alphabet never reach Redis.
    before = command_calls(r)
    for path in ("/favicon.ico", "/robots.txt", "/x", "/0000000000"):
        assert client.get(path).status_code == 404
    assert delta(r, before) == {}
