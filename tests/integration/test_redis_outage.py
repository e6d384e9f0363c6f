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
    spool = tmp_path / "spool"
    settings = make_settings(server.url, prefix, link_cache_ttl=300.0, spool_dir=str(spool))
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
            # the five clicks are on disk, not only in memory
            # (a replay already waiting for Redis may have set one file aside)
            lines = [x for f in spool.iterdir() for x in f.read_bytes().splitlines()]
            assert len(lines) == 5

            server.start()  # same port, same AOF: the link is still there
            deadline = time.monotonic() + 20
            while any(spool.iterdir()):
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


def test_webhooks_answer_503_while_redis_is_down_so_senders_retry(
    tmp_path: Path, prefix: str
) -> None:
    from tests.api.test_webhooks import APP_SECRET, SHOP_SECRET, raw
    from tracker.webhooks.signatures import meta_signature, shopify_signature

    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = make_settings(server.url, prefix)
    try:
        key = create_workspace(settings, "acme")
        auth = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(settings), follow_redirects=False) as client:
            client.patch("/api/v1/workspace", headers=auth, json={
                "whatsapp_app_secret": APP_SECRET, "shopify_secret": SHOP_SECRET})
            wa = raw("whatsapp/status_sent.json")
            shop = raw("shopify/orders_create.json")

            def deliver() -> tuple[int, int, int]:
                a = client.post("/webhooks/whatsapp/acme", content=wa, headers={
                    "x-hub-signature-256": meta_signature(APP_SECRET, wa)})
                b = client.post("/webhooks/shopify/acme", content=shop, headers={
                    "x-shopify-topic": "orders/create", "x-shopify-webhook-id": "wh-1",
                    "x-shopify-hmac-sha256": shopify_signature(SHOP_SECRET, shop)})
                c = client.post("/api/v1/events", headers=auth, json=[{
                    "id": "e1", "type": "order_cancelled", "time": "2026-11-20T10:00:00Z",
                    "order_id": "1"}])
                return a.status_code, b.status_code, c.status_code

            server.kill()
            assert deliver() == (503, 503, 503)  # never 200 for what was not stored
            server.start()
            assert deliver() == (200, 200, 202)  # the senders' retries land
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        assert conn.xlen(Keys(prefix).event_stream(0)) == 3
        conn.close()
    finally:
        server.stop()


def test_a_new_process_replays_what_a_dead_one_spooled(
    tmp_path: Path, redis_url: str, prefix: str, r: redis.Redis
) -> None:
    import json
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    spool = tmp_path / "spool"
    spool.mkdir()
    stream = Keys(prefix).click_stream(0)
    rows = [json.dumps([stream, "code", "AbCdEfGh", "ts", "1", "id", f"c{i}", "method", "GET",
                        "ua", "", "ref", "", "lang", "", "ip", "", "ws", "acme",
                        "campaign", "bf", "recipient", "r1"]) for i in range(3)]
    torn = rows[0][:20]  # the process died writing this one: its redirect never answered
    (spool / f"clicks-{dead.pid}.spool").write_text("\n".join(rows) + "\n" + torn)
    settings = make_settings(redis_url, prefix, spool_dir=str(spool))
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 10
        while any(spool.iterdir()):
            assert time.monotonic() < deadline, "leftover spool not replayed"
            time.sleep(0.05)
    assert [f["id"] for _, f in r.xrange(stream)] == ["c0", "c1", "c2"]  # in order
