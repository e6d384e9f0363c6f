"""tracker on a real 3-master Redis Cluster: the simulated campaign through the
web app and two worker processes, one master SIGKILLed while the workers drain
and brought back; the report still equals the ground truth.

Marked `cluster`: CI runs it; skip it locally with `-m "not cluster"`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster
from starlette.testclient import TestClient

from tests.cluster import Cluster
from tests.conftest import create_workspace, make_settings
from tests.integration.test_simulation import check
from tests.simulation import Simulation, drained, wait_until
from tracker.app import create_app
from tracker.keys import Keys
from tracker.settings import Settings
from tracker.store import connect
from tracker.worker import Worker

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

PARTITIONS = 4
N = 1500


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c
    finally:
        c.stop()


def owner(r: RedisCluster, key: str) -> int:
    """The port of the master serving `key`'s slot."""
    node = r.get_node_from_key(key)
    assert node is not None
    return int(node.port)


def backlog(r: RedisCluster, keys: Keys) -> int:
    """Entries not yet delivered to the group, plus those delivered but not acked
    (Redis 6.2 has no 'lag' in XINFO GROUPS: count past last-delivered-id)."""
    total = 0
    for stream in keys.click_streams() + keys.event_streams():
        for g in r.xinfo_groups(stream):
            total += int(g["pending"])
            total += len(r.xrange(stream, "(" + g["last-delivered-id"], "+"))
    return total


async def _sweep(settings: Settings, now: int) -> int:
    conn = connect(settings.effective_redis_url)
    try:
        return await Worker(settings, conn, "sweeper").sweep_clicks(now)
    finally:
        await conn.aclose()


def test_a_campaign_survives_a_master_going_down(cluster: Cluster, tmp_path: Path) -> None:
    prefix = "cl" + os.urandom(4).hex()
    settings = make_settings(cluster.url, prefix, partitions=PARTITIONS)
    keys = Keys(prefix, PARTITIONS)
    r = RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    # keys of one script or transaction share a slot; the data spreads over all masters
    assert len({owner(r, keys.click_stream(p)) for p in range(PARTITIONS)}) >= 2
    key = create_workspace(settings, "acme")
    auth = {"Authorization": f"Bearer {key}"}
    env = {**os.environ, "REDIS_URL": cluster.url, "TRACKER_KEY_PREFIX": prefix,
           "TRACKER_PARTITIONS": str(PARTITIONS), "TRACKER_RECLAIM_IDLE_MS": "1000",
           "TRACKER_WORKER_BLOCK_MS": "200", "TRACKER_WORKER_BATCH": "100",
           "TRACKER_LOG_LEVEL": "error"}
    workers: list[subprocess.Popen[bytes]] = []
    sim = Simulation(seed=20261125, n=N)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        sim.run(client, auth)
        spare = client.post("/api/v1/links/batch", headers=auth, json={
            "url": "https://shop.example/", "campaign": "outage",
            "recipients": [f"o{i}" for i in range(12)]}).json()["links"]
        pending = backlog(r, keys)
        assert pending > 1000
        try:
            for name in ("w1", "w2"):
                workers.append(subprocess.Popen([sys.executable, "-m", "tracker", "worker"],
                                                env={**env, "TRACKER_CONSUMER": name}))
            # mid-run: the workers have started on the backlog, far from done
            wait_until(lambda: backlog(r, keys) < pending * 0.9, 60, "the workers to start")
            # down goes the master holding the workspace's join state
            victim = owner(r, keys.join_version("acme"))
            assert backlog(r, keys) > 0
            down = [x["code"] for x in spare if owner(r, keys.link(x["code"])) == victim]
            assert down
            ua = {"user-agent": "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36"}
            for code in down:  # a first tap: the link is now in the web process's cache
                assert client.get(f"/{code}", headers=ua).status_code == 302
            cluster.kill(victim)
            # links whose partition lives on the dead master still redirect (their
            # clicks wait in the outage spool)
            for code in down:
                assert client.get(f"/{code}", headers=ua).status_code == 302
            time.sleep(3)  # the workers fail, retry, keep what they have not folded
            assert all(w.poll() is None for w in workers)  # they wait, they do not crash
            cluster.restart(victim)
            r = RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
            wait_until(lambda: drained(r, keys), 240, "the workers to drain after the outage")

            def outage_clicks() -> int:
                rep = client.get("/api/v1/campaigns/outage/report", headers=auth).json()
                return int(rep["clicks"])

            # the spooled clicks were replayed and counted, once
            wait_until(lambda: outage_clicks() == 2 * len(down) and drained(r, keys), 60,
                       "the spooled clicks")
            stats = {name: json.loads(r.hget(keys.worker_stats(), name) or "{}")
                     for name in ("w1", "w2")}
            assert all(s.get("applied") for s in stats.values()), stats  # both took part
            assert sum(s["errors"] for s in stats.values()) > 0, stats  # and felt the outage
            assert r.xlen(keys.dead_letters()) == 0  # nothing set aside
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                assert w.wait(30) == 0
        # the hourly sweep, long after the campaign: every click is forgotten
        # from the join state (one transaction per page, in the join's slot)
        # and no number changes
        far = int(time.time() * 1000) + 400 * 86_400_000
        assert asyncio.run(_sweep(settings, far)) > 0
        assert r.hlen(keys.click_index("acme")) == 0
        check(sim, client, auth)
        outage = client.get("/api/v1/campaigns/outage/report", headers=auth).json()
        assert outage["clicks"] == outage["unique_clickers"] * 2 == 2 * len(down)
