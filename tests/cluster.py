"""A real Redis Cluster on loopback for tests: N masters, no replicas, each a
redis-server process (the binary the embedded default uses) with its AOF, so a
killed master comes back with its data and its slots."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tracker.embedded import redis_server_binary

SLOTS = 16384


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too; both under 65536."""
    while True:
        port = random.randint(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port


class Cluster:
    def __init__(self, root: Path, masters: int = 3, binary: str = "") -> None:
        self.root = root
        self.binary = binary or os.environ.get("TRACKER_TEST_REDIS_SERVER") or \
            redis_server_binary()
        self.ports = [cluster_port() for _ in range(masters)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:1])

    def _start(self, port: int) -> None:
        d = self.root / str(port)
        d.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen([
            self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000", "--appendonly", "yes",
            "--appendfsync", "always", "--save", "", "--daemonize", "no",
            "--logfile", str(d / "redis.log"),
            # the other masters keep serving their slots while one is down
            "--cluster-require-full-coverage", "no",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis(port=port, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {port} did not start")
            time.sleep(0.05)

    def start(self) -> Cluster:
        for port in self.ports:
            self._start(port)
        first = redis.Redis(port=self.ports[0])
        per = SLOTS // len(self.ports)
        for i, port in enumerate(self.ports):
            lo = i * per
            hi = SLOTS if i == len(self.ports) - 1 else (i + 1) * per
            redis.Redis(port=port).execute_command("CLUSTER ADDSLOTS", *range(lo, hi))
            if i:
                first.execute_command("CLUSTER MEET", "127.0.0.1", port)
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for port in self.ports:
                try:
                    info = redis.Redis(port=port, decode_responses=True).cluster("info")
                    states.append(info["cluster_state"] == "ok"
                                  and int(info["cluster_known_nodes"]) == len(self.ports))
                except redis.RedisError:
                    states.append(False)
            if all(states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not come up")
            time.sleep(0.1)

    def kill(self, port: int) -> None:
        """SIGKILL one master: no shutdown, no final fsync beyond appendfsync."""
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def restart(self, port: int) -> None:
        self._start(port)
        self.wait_ok()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
