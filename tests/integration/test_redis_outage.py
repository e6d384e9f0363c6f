"""The redirect through a Redis outage: a real redis-server, killed and restarted."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from starlette.testclient import TestClient

from tests.conftest import create_workspace, make_settings
from tracker.app import create_app
from tracker.embedded import EmbeddedRedis
from tracker.keys import Keys


def test_cached_links_redirect_through_an_outage_and_their_clicks_arrive(
    tmp_path: Path, prefix: str
) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = make_settings(server.url, prefix, link_cache_ttl=300.0)
    try:
        key = create_workspace(settings, "acme")
        auth = {"Authorization": f"Bearer {key}"}
        app = create_app(settings)
        with TestClient(app, follow_redirects=False) as client:
            res = client.post("/api/v1/links/batch", headers=auth, json={
                "url": "https://s.example/", "campaign": "bf", "recipients": ["a", "b"]})
            cached, uncached = (x["code"] for x in res.json()["links"])
            assert client.get(f"/{cached}").status_code == 302  # now in the cache

            server.kill()
            started = time.monotonic()
            for _ in range(5):
                assert client.get(f"/{cached}").status_code == 302
            res = client.get(f"/{uncached}")
            assert res.status_code == 503
            assert res.headers["retry-after"] == "5"
            assert "try again" in res.text
            assert time.monotonic() - started < 10, "an outage must not make requests hang"
            redirector = app.app.state.redirector
            assert len(redirector.pending) == 5

            server.start()  # same port, same AOF: the link is still there
            deadline = time.monotonic() + 20
            while redirector.pending:
                assert time.monotonic() < deadline, "spooled clicks were not written back"
                time.sleep(0.05)
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        entries = conn.xrange(Keys(prefix).click_stream(0))
        conn.close()
        assert len(entries) == 6  # one before the outage, five during it
        assert len({fields["id"] for _, fields in entries}) == 6
        assert all(fields["code"] == cached for _, fields in entries)
    finally:
        server.stop()
