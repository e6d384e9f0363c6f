"""GET /metrics in Prometheus's text format.

Per web process (uvicorn workers are separate processes: scrape each, or
sum): redirects by status, the redirect's latency histogram, pixel hits and
the outage spool. From Redis (the same for every process): each stream's
length, the group's lag and pending entries, the dead letters, and the
counters every worker publishes (entries read, folded, invalid, dead,
reclaimed), from which Prometheus derives events per second.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .keys import CLICK_GROUP
from .store import Store

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_CAP = 10_000  # Redis 6.2 has no lag field: we count up to this many unread entries
WORKER_COUNTERS = ("read", "applied", "duplicates", "invalid", "dead", "reclaimed", "errors")


class WebMetrics:
    """Counters of one web process, updated on the hot path (cheap: no locks, one loop)."""

    def __init__(self) -> None:
        self.redirects: Counter[int] = Counter()
        self.pixels = 0
        self.fast = 0  # redirects answered by the fast path (fastpath.py), among redirects
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0

    def redirect(self, status: int, seconds: float) -> None:
        self.redirects[status] += 1
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds


def _line(name: str, value: float, **labels: Any) -> str:
    if labels:
        inner = ",".join(f'{k}="{str(v).replace(chr(34), "")}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


async def _streams(store: Store) -> list[str]:
    out = ["# TYPE tracker_stream_length gauge", "# TYPE tracker_stream_lag gauge",
           "# TYPE tracker_stream_pending gauge"]
    r = store.redis
    for stream in store.keys.click_streams() + store.keys.event_streams():
        if not await r.exists(stream):
            continue
        info = await r.xinfo_stream(stream)
        out.append(_line("tracker_stream_length", info["length"], stream=stream))
        for g in await r.xinfo_groups(stream):
            if g["name"] != CLICK_GROUP:
                continue
            lag = g.get("lag")
            if lag is None:  # Redis 6.2: count what was not delivered yet, up to a cap
                after = "(" + str(g["last-delivered-id"])
                lag = len(await r.xrange(stream, min=after, max="+", count=LAG_CAP) or [])
            out.append(_line("tracker_stream_lag", lag, stream=stream))
            out.append(_line("tracker_stream_pending", g["pending"], stream=stream))
    out.append("# TYPE tracker_dead_letters gauge")
    out.append(_line("tracker_dead_letters", await r.xlen(store.keys.dead_letters())))
    return out


async def _workers(store: Store) -> list[str]:
    out: list[str] = []
    stats: dict[str, str] = await store.redis.hgetall(store.keys.worker_stats())  # type: ignore[assignment]
    for name in WORKER_COUNTERS:
        out.append(f"# TYPE tracker_worker_{name}_total counter")
        for consumer, text in sorted(stats.items()):
            out.append(_line(f"tracker_worker_{name}_total", json.loads(text).get(name, 0),
                             consumer=consumer))
    return out


async def metrics(request: Request) -> Response:
    web: WebMetrics = request.app.state.web_metrics
    redirector = request.app.state.redirector
    out = ["# TYPE tracker_redirects_total counter"]
    out += [_line("tracker_redirects_total", n, status=s) for s, n in sorted(web.redirects.items())]
    out.append("# TYPE tracker_redirect_seconds histogram")
    total = 0
    for bound, n in zip([*BUCKETS, "+Inf"], web.buckets, strict=True):
        total += n
        out.append(_line("tracker_redirect_seconds_bucket", total, le=bound))
    out.append(_line("tracker_redirect_seconds_sum", round(web.latency_sum, 6)))
    out.append(_line("tracker_redirect_seconds_count", total))
    out += ["# TYPE tracker_redirects_fast_total counter",
            _line("tracker_redirects_fast_total", web.fast)]
    out += ["# TYPE tracker_pixel_total counter", _line("tracker_pixel_total", web.pixels)]
    if redirector is not None:
        out += ["# TYPE tracker_spool_bytes gauge",
                _line("tracker_spool_bytes", len(redirector.spool)),
                "# TYPE tracker_spool_dropped_total counter",
                _line("tracker_spool_dropped_total", redirector.spool.dropped),
                "# TYPE tracker_fire_and_forget_in_flight gauge",
                _line("tracker_fire_and_forget_in_flight", redirector.in_flight),
                "# TYPE tracker_fire_and_forget_waited_total counter",
                _line("tracker_fire_and_forget_waited_total", redirector.ff_waited)]
    store: Store = request.app.state.store
    out += await _streams(store)
    out += await _workers(store)
    return PlainTextResponse("\n".join(out) + "\n",
                             media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [Route("/metrics", metrics, methods=["GET"])]
