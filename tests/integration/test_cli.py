"""The `tracker` command, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tracker.keys import Keys
from tracker.store import hash_key


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def env(redis_url: str, prefix: str, r: redis.Redis) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "TRACKER_KEY_PREFIX": prefix}


def test_workspace_create(env: dict[str, str], r: redis.Redis, prefix: str) -> None:
    out = run("workspace", "create", "shop-1", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["workspace"] == "shop-1" and doc["api_key"].startswith("trk_")
    record = r.hgetall(Keys(prefix).api_key(hash_key(doc["api_key"])))
    assert (record["ws"], record["scope"]) == ("shop-1", "full")
    again = run("workspace", "create", "shop-1", env=env)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = run("workspace", "create", "Shop 1!", env=env)
    assert bad.returncode == 2 and "workspace name" in bad.stderr


@pytest.mark.parametrize(
    ("var", "value"),
    [("TRACKER_PORT", "eighty"), ("REDIS_URL", "localhost:6379"), ("TRACKER_WORKERS", "-1")],
)
@pytest.mark.parametrize("command", [["serve"], ["worker"], ["up"], ["workspace", "create", "x"]])
def test_a_bad_setting_stops_start_up_naming_it(
    env: dict[str, str], var: str, value: str, command: list[str]
) -> None:
    out = run(*command, env={**env, var: value})
    assert out.returncode == 2
    assert f"configuration error: {var}:" in out.stderr


@pytest.mark.parametrize(("started_at", "setting", "runs_at"), [(0, 7, 7), (10, 5, 10)])
def test_the_worker_lowers_its_priority_never_raises_it(
    env: dict[str, str], r: redis.Redis, prefix: str,
    started_at: int, setting: int, runs_at: int,
) -> None:
    proc = subprocess.Popen(["nice", "-n", str(started_at), sys.executable, "-m", "tracker",
                             "worker"], env={**env, "TRACKER_WORKER_NICE": str(setting)})
    try:
        deadline = time.monotonic() + 30
        while not r.hlen(Keys(prefix).worker_stats()):  # it has started its rounds
            assert proc.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == runs_at
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_commands_ignore_the_address_a_crashed_up_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tracker up` leaves its embedded Redis's address in the data directory
    for the commands of another shell; one whose Redis no longer answers
    (`up` was killed) is not followed."""
    from tracker.cli import EMBEDDED_URL_FILE, _admin_settings
    from tracker.embedded import free_port

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("TRACKER_DATA_DIR", str(tmp_path))
    (tmp_path / EMBEDDED_URL_FILE).write_text(f"redis://127.0.0.1:{free_port()}/0\n")
    assert _admin_settings().redis_url == ""  # the default, as without the file
    assert "REDIS_URL" not in os.environ


def test_report_of_an_unknown_campaign(env: dict[str, str]) -> None:
    out = run("report", "nope", "--workspace", "acme", env=env)
    assert out.returncode == 1 and "no campaign" in out.stderr


def test_workspace_set(env: dict[str, str]) -> None:
    assert run("workspace", "create", "shop-2", env=env).returncode == 0
    out = run("workspace", "set", "shop-2", "--whatsapp-app-secret", "s3cr3t-Abc",
              "--whatsapp-verify-token", "tok-Abc", "--shopify-secret", "shp-Abc",
              "--attribution-window", "24h", "--currency", "EUR",
              "--stop-keywords", "STOP, Abmelden", "--respect-dnt", "yes", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "Abc" not in out.stdout  # secrets are write-only
    assert doc["attribution_window"] == "24h" and doc["currency"] == "EUR"
    assert doc["stop_keywords"] == ["stop", "abmelden"] and doc["respect_dnt"] is True
    bad = run("workspace", "set", "shop-2", "--currency", "euro", env=env)
    assert bad.returncode == 2 and "--currency" in bad.stderr
    missing = run("workspace", "set", "nobody", "--currency", "EUR", env=env)
    assert missing.returncode == 1 and "no workspace" in missing.stderr


def test_key_commands(env: dict[str, str]) -> None:
    first = json.loads(run("workspace", "create", "shop-3", env=env).stdout)["api_key"]
    made = json.loads(run("key", "create", "shop-3", "--scope", "read", env=env).stdout)
    assert made["scope"] == "read" and made["api_key"].startswith("trk_")
    listed = json.loads(run("key", "list", "shop-3", env=env).stdout)
    assert sorted(k["scope"] for k in listed) == ["full", "read"]
    assert first not in json.dumps(listed)
    rotated = json.loads(run("key", "rotate", "shop-3", made["key_id"], env=env).stdout)
    assert rotated["revoked"] == made["key_id"] and rotated["scope"] == "read"
    assert rotated["api_key"] != made["api_key"]
    assert len(json.loads(run("key", "list", "shop-3", env=env).stdout)) == 2
    gone = run("key", "revoke", "shop-3", made["key_id"], env=env)
    assert gone.returncode == 1 and "no key" in gone.stderr
