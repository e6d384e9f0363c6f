from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import make_settings
from tracker.app import create_app
from tracker.keys import Keys
from tracker.models import CLICK, Click

LINK = {"url": "https://s.example/p?ref=wa#top", "campaign": "bf24", "recipient": "r1"}
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")


def clicks(r: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """The stream's clicks, each decoded as the worker reads it (one packed field)."""
    out = []
    for _, fields in r.xrange(Keys(prefix).click_stream(0)):
        assert list(fields) == [CLICK]
        out.append(Click.from_entry(fields)._asdict())
    return out


def make_link(client: TestClient, auth: dict[str, str], **extra: object) -> dict[str, str]:
    res = client.post("/api/v1/links", json={**LINK, **extra}, headers=auth)
    assert res.status_code == 201
    body: dict[str, str] = res.json()
    return body


def test_redirect_and_click(client: TestClient, auth: dict[str, str], r: redis.Redis,
                            prefix: str) -> None:
    link = make_link(client, auth)
    res = client.get(f"/{link['code']}", headers={
        "user-agent": PHONE_UA, "referer": "https://wa.me/", "accept-language": "de-DE,de;q=0.9",
    })
    assert res.status_code == 302
    assert res.headers["cache-control"] == "private, no-store"
    location = res.headers["location"]
    assert location.startswith("https://s.example/p?ref=wa&utm_source=whatsapp")
    assert location.endswith("#top")
    click_id = parse_qs(urlsplit(location).query)["trk_id"][0]
    [click] = clicks(r, prefix)
    assert click["id"] == click_id
    assert click["code"] == link["code"]
    assert (click["ws"], click["campaign"], click["recipient"]) == ("acme", "bf24", "r1")
    assert (click["ua"], click["ref"], click["lang"]) == (PHONE_UA, "https://wa.me/",
                                                          "de-DE,de;q=0.9")
    assert click["method"] == "GET"
    assert abs(int(click["ts"]) - time.time() * 1000) < 60_000


def test_every_click_gets_its_own_id_and_cached_links_still_log(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str
) -> None:
    code = make_link(client, auth)["code"]
    ids = set()
    for _ in range(5):  # the first is a cache miss, the rest hit the cache
        res = client.get(f"/{code}")
        ids.add(parse_qs(urlsplit(res.headers["location"]).query)["trk_id"][0])
    logged = clicks(r, prefix)
    assert len(logged) == 5 and {c["id"] for c in logged} == ids
    assert all(c["recipient"] == "r1" for c in logged)


def test_head_redirects_without_a_body(client: TestClient, auth: dict[str, str],
                                       r: redis.Redis, prefix: str) -> None:
    code = make_link(client, auth)["code"]
    res = client.head(f"/{code}")
    assert res.status_code == 302 and res.content == b""
    assert clicks(r, prefix)[0]["method"] == "HEAD"


def test_unknown_codes_are_a_human_404(client: TestClient, r: redis.Redis, prefix: str) -> None:
    for path in ("/abcdefgh", "/abcdefgh2", "/short", "/has0zero", "/favicon.ico", "/a/b/c"):
        res = client.get(path)
        assert res.status_code == 404, path
    res = client.get("/abcdefgh")
    assert res.headers["content-type"].startswith("text/html")
    assert "Link not found" in res.text
    assert clicks(r, prefix) == []


@pytest.fixture
def uncached(redis_url: str, prefix: str, r: redis.Redis) -> Iterator[TestClient]:
    """A web process whose link cache trusts nothing: every request reads Redis."""
    settings = make_settings(redis_url, prefix, link_cache_ttl=0.0)
    with TestClient(create_app(settings), follow_redirects=False) as c:
        yield c


def test_disabled_expired_and_deleted_links(
    uncached: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str
) -> None:
    code = make_link(uncached, auth)["code"]
    assert uncached.get(f"/{code}").status_code == 302
    uncached.patch(f"/api/v1/links/{code}", json={"disabled": True}, headers=auth)
    res = uncached.get(f"/{code}")
    assert res.status_code == 410 and "no longer active" in res.text
    uncached.patch(f"/api/v1/links/{code}",
                   json={"disabled": False, "expires_at": "2001-01-01T00:00:00Z"}, headers=auth)
    assert uncached.get(f"/{code}").status_code == 410
    uncached.patch(f"/api/v1/links/{code}", json={"expires_at": None}, headers=auth)
    assert uncached.get(f"/{code}").status_code == 302
    uncached.delete(f"/api/v1/links/{code}", headers=auth)
    assert uncached.get(f"/{code}").status_code == 404
    assert len(clicks(r, prefix)) == 2  # only the two redirects logged a click


def test_a_cached_link_stops_within_the_cache_ttl(
    redis_url: str, prefix: str, r: redis.Redis, auth: dict[str, str]
) -> None:
    settings = make_settings(redis_url, prefix, link_cache_ttl=0.3)
    with TestClient(create_app(settings), follow_redirects=False) as c:
        code = make_link(c, auth)["code"]
        assert c.get(f"/{code}").status_code == 302  # now cached
        c.patch(f"/api/v1/links/{code}", json={"disabled": True}, headers=auth)
        deadline = time.monotonic() + 0.3 + 1.0
        while c.get(f"/{code}").status_code == 302:
            assert time.monotonic() < deadline, "disabled link still redirects after the TTL"
            time.sleep(0.05)
        assert c.get(f"/{code}").status_code == 410


def test_ip_is_anonymised_and_proxies_believed_only_when_trusted(
    redis_url: str, prefix: str, r: redis.Redis, auth: dict[str, str]
) -> None:
    import ipaddress

    trusted = make_settings(redis_url, prefix,
                            trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
    with TestClient(create_app(trusted), follow_redirects=False,
                    client=("127.0.0.1", 5000)) as c:
        code = make_link(c, auth)["code"]
        c.get(f"/{code}", headers={"x-forwarded-for": "6.6.6.6, 203.0.113.77"})
        c.get(f"/{code}")
    plain = make_settings(redis_url, prefix)
    with TestClient(create_app(plain), follow_redirects=False,
                    client=("198.51.100.23", 5000)) as c:
        c.get(f"/{code}", headers={"x-forwarded-for": "203.0.113.77"})
        c.get(f"/{code}", headers={"x-forwarded-for": "2001:db8::1"})
    assert [x["ip"] for x in clicks(r, prefix)] == ["203.0.113.0", "127.0.0.0",
                                                   "198.51.100.0", "198.51.100.0"]


def test_custom_click_parameter(redis_url: str, prefix: str, r: redis.Redis,
                                auth: dict[str, str]) -> None:
    settings = make_settings(redis_url, prefix, click_param="wa_click")
    with TestClient(create_app(settings), follow_redirects=False) as c:
        code = make_link(c, auth, url="https://s.example/?wa_click=forged")["code"]
        location = c.get(f"/{code}").headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert len(query["wa_click"]) == 1 and query["wa_click"][0] != "forged"


def test_rate_limits(redis_url: str, prefix: str, r: redis.Redis, auth: dict[str, str]) -> None:
    settings = make_settings(redis_url, prefix, ip_rate=1.0, ip_burst=3.0, key_rate=5)
    with TestClient(create_app(settings), follow_redirects=False,
                    client=("203.0.113.9", 5000)) as c:
        code = make_link(c, auth)["code"]  # API request 1 of 5 this minute
        statuses = [c.get(f"/{code}").status_code for _ in range(5)]
        assert statuses == [302, 302, 302, 429, 429]  # a burst of 3, then 1 a second
        limited = c.get(f"/{code}")
        assert limited.headers["retry-after"] == "1" and "Slow down" in limited.text
        assert c.get("/px.gif").status_code == 429
        assert len(clicks(r, prefix)) == 3  # a refused request writes nothing
        api = [c.get("/api/v1/campaigns", headers=auth).status_code for _ in range(5)]
        assert api == [200, 200, 200, 200, 429]
        res = c.get("/api/v1/campaigns", headers=auth)
        assert res.headers["content-type"] == "application/problem+json"
        assert 1 <= int(res.headers["retry-after"]) <= 60
