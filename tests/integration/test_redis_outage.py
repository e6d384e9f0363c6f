"""The redirect through a Redis outage: a real redis-server, killed and restarted."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from starlette.testclient import TestClient

from tests.conftest import create_workspace, drain_worker, make_settings
from tracker.app import create_app
from tracker.embedded import EmbeddedRedis
from tracker.keys import Keys
from tracker.models import Click, entry_clicks


def replayed(spool: Path, timeout: float, what: str) -> None:
    """Wait until the web process has written its spool back to Redis."""
    deadline = time.monotonic() + timeout
    while any(spool.iterdir()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


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
            replayed(spool, 20, "spooled clicks were not written back")
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        entries = conn.xrange(Keys(prefix).click_stream(0))
        conn.close()
        got = [Click.from_entry(c) for _, fields in entries for c in entry_clicks(fields)]
        assert len({c.id for c in got}) == 6  # one before, five during
        assert all(c.code == cached for c in got)
        # ... and the worker counts each of them in the report, none twice
        drain_worker(settings)
        with TestClient(create_app(settings)) as client:
            rep = client.get("/api/v1/campaigns/bf/report", headers=auth).json()
        assert rep["clicks"] + rep["non_human_clicks"] == 6
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
        replayed(spool, 10, "leftover spool not replayed")
    assert [f["id"] for _, f in r.xrange(stream)] == ["c0", "c1", "c2"]  # in order


def test_a_steady_stream_of_clicks_through_a_redis_restart(tmp_path: Path, prefix: str) -> None:
    """A real web process, a real redis-server killed and restarted mid-stream:
    no failed redirect for a cached link, and every click counted once."""
    import os
    import subprocess
    import sys
    import threading

    import httpx2 as httpx

    from tracker.embedded import free_port

    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = make_settings(server.url, prefix, spool_dir=str(tmp_path / "spool"))
    port = free_port()
    env = {**os.environ, "REDIS_URL": server.url, "TRACKER_KEY_PREFIX": prefix,
           "TRACKER_PORT": str(port), "TRACKER_LINK_CACHE_TTL": "600",
           "TRACKER_SPOOL_DIR": str(tmp_path / "spool"), "TRACKER_LOG_LEVEL": "error"}
    web = subprocess.Popen([sys.executable, "-m", "tracker", "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        key = create_workspace(settings, "acme")
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 15
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            code = http.post("/api/v1/links", headers={"Authorization": f"Bearer {key}"},
                             json={"url": "https://s.example/", "campaign": "bf",
                                   "recipient": "r1"}).json()["code"]
            assert http.get(f"/{code}").status_code == 302  # cached from here on
        statuses: list[int] = []
        stop = threading.Event()

        def clicker() -> None:
            with httpx.Client(base_url=base, timeout=5) as c:
                while not stop.is_set():
                    statuses.append(c.get(f"/{code}").status_code)
                    time.sleep(0.002)

        thread = threading.Thread(target=clicker)
        thread.start()
        time.sleep(0.4)
        server.kill()
        time.sleep(0.8)  # an outage under load
        server.start()
        time.sleep(0.8)
        stop.set()
        thread.join()
        assert len(statuses) > 100 and set(statuses) == {302}  # not one failed redirect
        spool = tmp_path / "spool"
        deadline = time.monotonic() + 20
        while spool.exists() and any(spool.iterdir()):
            assert time.monotonic() < deadline, "the spool was not replayed"
            time.sleep(0.05)
    finally:
        web.terminate()
        web.wait(10)
    try:
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        late = [f for i, f in conn.xrange(Keys(prefix).click_stream(0))
                if int(i.split("-")[0]) - Click.from_entry(f).ts > 300]
        conn.close()
        assert late, "no click went through the spool: was there an outage at all?"
        drain_worker(settings)
        with TestClient(create_app(settings)) as client:
            rep = client.get("/api/v1/campaigns/bf/report",
                             headers={"Authorization": f"Bearer {key}"}).json()
        assert rep["clicks"] + rep["non_human_clicks"] == len(statuses) + 1  # each once
    finally:
        server.stop()


def test_fire_and_forget_redirects_first_and_still_keeps_every_click(
    tmp_path: Path, prefix: str
) -> None:
    """A workspace that opts into fire-and-forget gets its 302 before Redis
    answers; its clicks still arrive, and during an outage they are spooled."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    spool = tmp_path / "spool"
    settings = make_settings(server.url, prefix, link_cache_ttl=300.0, spool_dir=str(spool))
    try:
        key = create_workspace(settings, "acme")
        auth = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(settings)) as client:
            res = client.patch("/api/v1/workspace", headers=auth,
                               json={"fire_and_forget": True})
            assert res.json()["fire_and_forget"] is True
            code = client.post("/api/v1/links", headers=auth, json={
                "url": "https://s.example/", "campaign": "ff"}).json()["code"]
        # a web process started now knows the workspace's mode
        with TestClient(create_app(settings), follow_redirects=False) as client:
            assert client.app.redirector.fire_and_forget == {"acme"}  # type: ignore[attr-defined]
            for _ in range(3):  # a miss (the link's one round trip), then cached hits
                assert client.get(f"/{code}").status_code == 302
            server.kill()
            for _ in range(4):
                assert client.get(f"/{code}").status_code == 302
            deadline = time.monotonic() + 10
            while sum(len(f.read_bytes().splitlines()) for f in spool.iterdir()) < 4:
                assert time.monotonic() < deadline, "the forgotten clicks were not spooled"
                time.sleep(0.05)
            server.start()
            replayed(spool, 20, "spooled clicks were not written back")
        drain_worker(settings)
        with TestClient(create_app(settings)) as client:
            rep = client.get("/api/v1/campaigns/ff/report", headers=auth).json()
            assert rep["anonymous_clicks"] == rep["clicks"] == 7
            # and off again: the set the web processes read is kept in step
            client.patch("/api/v1/workspace", headers=auth, json={"fire_and_forget": False})
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        assert conn.smembers(Keys(prefix).fire_and_forget()) == set()
        conn.close()
    finally:
        server.stop()
