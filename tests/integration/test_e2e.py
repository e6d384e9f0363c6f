"""End to end over real HTTP: real uvicorn and worker processes, as deployed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tracker.embedded import free_port

pytestmark = pytest.mark.e2e

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def tracker(*args: str, env: dict[str, str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tracker", *args], env=env, text=True, **kw)


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.fixture
def env(redis_url: str, prefix: str, r: object) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "TRACKER_KEY_PREFIX": prefix,
        "TRACKER_PORT": str(port),
        "TRACKER_WORKER_BLOCK_MS": "100",
        "TRACKER_WORKER_LANES": "3",  # lanes fold concurrently: the same numbers
        "TRACKER_LOG_LEVEL": "warning",
    }


@pytest.fixture
def processes(env: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[str]]]:
    procs = {"web": tracker("serve", "--workers", "2", env=env),
             "worker": tracker("worker", env=env)}
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_link_click_worker_report(env: dict[str, str],
                                  processes: dict[str, subprocess.Popen[str]]) -> None:
    created = subprocess.run([sys.executable, "-m", "tracker", "workspace", "create", "acme"],
                             env=env, capture_output=True, text=True, check=True)
    key = json.loads(created.stdout)["api_key"]
    base = f"http://127.0.0.1:{env['TRACKER_PORT']}"
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=5) as http:
        wait_for(lambda: http.get("/readyz").status_code == 200, what="web process")
        res = http.post("/api/v1/links/batch", headers=auth, json={
            "url": "https://shop.example/sale", "campaign": "bf", "recipients": ["a", "b", "c"]})
        assert res.status_code == 201
        codes = [x["code"] for x in res.json()["links"]]
        for code in codes[:2]:
            # a forwarded-for header from a peer that is not a trusted proxy is
            # ignored, by uvicorn too (it would believe one from 127.0.0.1)
            hit = http.get(f"/{code}", headers={"user-agent": PHONE,
                                                "x-forwarded-for": "203.0.113.9"})
            assert hit.status_code == 302
            assert hit.headers["location"].startswith("https://shop.example/sale?utm_source=")
        assert http.get(f"/{codes[2]}", headers={"user-agent": "WhatsApp/2.23.20.0 A"}
                        ).status_code == 302

        def counted() -> dict[str, Any] | None:
            rep: dict[str, Any] = http.get("/api/v1/campaigns/bf/report", headers=auth).json()
            return rep if rep["clicks"] + rep["non_human_clicks"] == 3 else None

        rep = wait_for(counted, what="the worker to fold three clicks")
    assert (rep["clicks"], rep["unique_clickers"], rep["non_human_clicks"]) == (2, 2, 1)
    assert rep["ctr_recipients"]["value"] == round(2 / 3, 6)
    report_cli = subprocess.run(
        [sys.executable, "-m", "tracker", "report", "bf", "--workspace", "acme", "--json"],
        env=env, capture_output=True, text=True, check=True)
    assert json.loads(report_cli.stdout)["clicks"] == 2
    ips = {row["ip"] for row in httpx.get(f"{base}/api/v1/exports/clicks", headers=auth,
                                          params={"campaign": "bf"}).iter_lines()
           for row in [json.loads(row)] if row}
    assert ips == {"127.0.0.0"}, ips
    # SIGTERM: both drain and exit cleanly
    assert stop(processes["worker"]) == 0
    assert stop(processes["web"]) == 0


def test_quick_start_up_keeps_data_across_restarts(tmp_path: Path, env: dict[str, str]) -> None:
    """`tracker up`: embedded redis-server with AOF, web and worker, a ready workspace."""
    up_env = {k: v for k, v in env.items() if k != "REDIS_URL"}
    up_env["TRACKER_DATA_DIR"] = str(tmp_path / "data")
    base = f"http://127.0.0.1:{env['TRACKER_PORT']}"

    def start() -> tuple[subprocess.Popen[str], str, str]:
        proc = tracker("up", env=up_env, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        lines, key = [], ""
        for line in proc.stdout:
            lines.append(line)
            if "api key" in line:
                key = line.split()[-1]
            if "dashboard" in line:
                return proc, key, line.split()[-1].rstrip(")")
        raise AssertionError("tracker up printed no API key: " + "".join(lines))

    proc, key, read_key = start()
    auth = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            wait_for(lambda: http.get("/readyz").status_code == 200, what="tracker up")
            code = http.post("/api/v1/links", headers=auth, json={
                "url": "https://shop.example/", "campaign": "demo", "recipient": "r1"}
            ).json()["code"]
            assert http.get(f"/{code}", headers={"user-agent": PHONE}).status_code == 302
            wait_for(lambda: http.get("/api/v1/campaigns/demo/report",
                                      headers=auth).json()["clicks"] == 1, what="the click")
            # the printed read-only key signs in to the dashboard
            res = http.post("/dashboard/signin", data={"key": read_key})
            assert res.status_code == 303 and "trk_dashboard" in res.headers["set-cookie"]
        # the README's next step, in another shell: no REDIS_URL, the same data
        # directory, and the command finds up's embedded Redis
        report_cli = tracker("report", "demo", "--json", env=up_env, stdout=subprocess.PIPE)
        out, _ = report_cli.communicate(timeout=60)
        assert report_cli.returncode == 0 and json.loads(out)["clicks"] == 1
    finally:
        assert stop(proc) == 0
    assert (tmp_path / "data" / "redis").is_dir()
    assert not (tmp_path / "data" / "redis-url").exists()  # up is gone: so is its address

    proc, key_again, _ = start()
    try:
        assert key_again == key  # the default workspace and its key survive
        with httpx.Client(base_url=base, timeout=5) as http:
            wait_for(lambda: http.get("/readyz").status_code == 200, what="tracker up again")
            assert http.get(f"/{code}").status_code == 302  # the link survived
            rep = http.get("/api/v1/campaigns/demo/report", headers=auth).json()
            assert rep["clicks"] == 1 and rep["links"] == 1
    finally:
        assert stop(proc) == 0
