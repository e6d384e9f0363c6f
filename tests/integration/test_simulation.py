"""The acceptance test of attribution: a seeded campaign of several thousand
recipients through the real endpoints and the real worker, checked exactly
against the simulation's own ground truth; then again with the worker killed
(SIGKILL) at random points and restarted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import redis
from starlette.testclient import TestClient

from tests.conftest import drain_worker
from tests.simulation import CAMPAIGN, Simulation, drained, iso, wait_until
from tracker.keys import Keys
from tracker.settings import Settings

N = 3000


def report(client: TestClient, auth: dict[str, str], window: str = "") -> dict[str, Any]:
    res = client.get(f"/api/v1/campaigns/{CAMPAIGN}/report" + (f"?window={window}" if window
                                                                 else ""), headers=auth)
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


ADDITIVE = ("messages", "sent", "delivered", "read", "failed", "clicks", "unique_clickers",
            "anonymous_clicks", "non_human_clicks", "orders", "converters")


def ranged(client: TestClient, auth: dict[str, str], start: str, end: str,
           window: str = "") -> dict[str, Any]:
    params = {"from": start, "to": end, **({"window": window} if window else {})}
    res = client.get(f"/api/v1/campaigns/{CAMPAIGN}/report", headers=auth, params=params)
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def check_ranges(sim: Simulation, client: TestClient, auth: dict[str, str],
                 rep: dict[str, Any], window: str = "") -> None:
    """A range holding everything equals the totals; adjacent ranges add up to them."""
    whole = ranged(client, auth, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z", window)
    assert {k: whole[k] for k in ADDITIVE} == {k: rep[k] for k in ADDITIVE}
    assert whole["revenue"] == rep["revenue"] and whole["orders_by"] == rep["orders_by"]
    assert whole["non_human"] == rep["non_human"]
    assert whole["from"] == "2000-01-01T00:00:00.000Z"
    for hours in (0, 1, 3, 30):
        cut = iso(sim.start + hours * 3600)
        a = ranged(client, auth, "2000-01-01T00:00:00Z", cut, window)
        b = ranged(client, auth, cut, "2100-01-01T00:00:00Z", window)
        assert {k: a[k] + b[k] for k in ADDITIVE} == {k: rep[k] for k in ADDITIVE}, hours


def check(sim: Simulation, client: TestClient, auth: dict[str, str]) -> None:
    rep = report(client, auth)
    assert Simulation.actual(rep) == sim.expected()
    check_ranges(sim, client, auth, rep)
    check_ranges(sim, client, auth, report(client, auth, "24h"), "24h")
    assert report(client, auth, "24h")["orders"] == sim.truth.orders_24h
    # the seed material's typical rates, as a sanity check of the simulation itself
    assert 0.95 < rep["delivery_rate"]["value"] < 0.99
    assert 0.80 < rep["read_rate"]["value"] < 0.90
    assert 0.20 < rep["ctr"]["value"] < 0.30


def test_simulation_matches_ground_truth(client: TestClient, auth: dict[str, str],
                                         settings: Settings, r: redis.Redis,
                                         prefix: str) -> None:
    sim = Simulation(seed=20261123, n=N)
    sim.run(client, auth)

    drain_worker(settings)
    assert drained(r, Keys(prefix))
    check(sim, client, auth)


def test_sigkilled_workers_change_no_number(client: TestClient, auth: dict[str, str],
                                            settings: Settings, r: redis.Redis,
                                            prefix: str) -> None:
    env = {**os.environ, "REDIS_URL": settings.effective_redis_url, "TRACKER_KEY_PREFIX": prefix,
           "TRACKER_CONSUMER": "sim-worker", "TRACKER_RECLAIM_IDLE_MS": "300",
           "TRACKER_WORKER_BLOCK_MS": "100", "TRACKER_WORKER_BATCH": "50",
           "TRACKER_LOG_LEVEL": "error"}
    rng = random.Random(7)
    done = threading.Event()
    kills = 0

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "tracker", "worker"], env=env)

    def killer() -> None:
        nonlocal kills
        while not done.is_set():
            proc = worker()
            time.sleep(rng.uniform(0.4, 1.5))
            proc.send_signal(signal.SIGKILL)  # no goodbye: mid-batch, mid-join, anywhere
            proc.wait()
            kills += 1

    thread = threading.Thread(target=killer)
    thread.start()
    sim = Simulation(seed=20261124, n=N)
    try:
        sim.run(client, auth)
        time.sleep(2)  # a few more kills while the backlog drains
    finally:
        done.set()
        thread.join()
    assert kills >= 3
    keys = Keys(prefix)
    final = subprocess.Popen([sys.executable, "-m", "tracker", "worker"],
                             env={**env, "TRACKER_LOG_LEVEL": "info"},
                             stderr=subprocess.PIPE, text=True)
    try:
        assert final.stderr is not None
        for line in final.stderr:  # started: its signal handlers are in place
            if " reading " in line:
                break
        wait_until(lambda: drained(r, keys), 180, "the restarted worker to drain")
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(20) == 0
    # every crash took the entries in flight with it: none of them is poison
    assert r.xlen(keys.dead_letters()) == 0
    check(sim, client, auth)
