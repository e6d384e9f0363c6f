"""GET /campaigns/{campaign}/report?window=24h."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..attribution import from_micro
from ..clock import iso_ms, now_ms
from ..metrics import campaign_report
from ..problems import Problem, invalid
from ..series import INTERVALS, METRICS, timeseries
from ..validation import FieldError, Invalid, parse_time
from ..workspaces import WorkspaceConfig, parse_window_hours
from .common import config, store_of, workspace


def window_of(request: Request, cfg: WorkspaceConfig) -> int:
    """?window= (hours, "24h", "5d"), at most the workspace's maximum."""
    raw = request.query_params.get("window")
    if raw is None:
        return cfg.attribution_window_h
    try:
        hours = parse_window_hours(int(raw) if raw.isdigit() else raw, "window")
    except Invalid as exc:
        raise invalid(exc.errors) from None
    if hours > cfg.attribution_window_h:
        raise invalid([FieldError(
            "window", f"must be at most the workspace's window, {cfg.attribution_window_h}h")])
    return hours


async def report(request: Request) -> Response:
    ws = await workspace(request)
    cfg = await config(request, ws)
    campaign = request.path_params["campaign"]
    window = window_of(request, cfg)
    store = store_of(request)
    if not await store.campaign_known(ws, campaign):
        raise Problem(404, "Not found", f"No campaign {campaign!r} in this workspace.")
    agg, links, recipients, meta = await store.campaign_counts(ws, campaign)
    return JSONResponse(campaign_report(campaign, agg, links, recipients, meta, window))


routes = [Route("/api/v1/campaigns/{campaign:path}/report", report, methods=["GET"])]


# -- time series, breakdowns, attributed orders (aggregates only) -----------------------
BREAKDOWNS = ("link", "utm_content", "device", "os", "browser", "hour_of_day", "weekday")
MAX_RANGE_DAYS = 400


def _tz(request: Request) -> ZoneInfo:
    name = request.query_params.get("tz", "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid([FieldError("tz", "is not an IANA time zone, e.g. Europe/Berlin")]) from None


def _range(request: Request) -> tuple[int, int]:
    q = request.query_params
    try:
        end = parse_time(q["to"], "to") if "to" in q else now_ms()
        start = parse_time(q["from"], "from") if "from" in q else end - 7 * 86_400_000
    except Invalid as exc:
        raise invalid(exc.errors) from None
    if start >= end:
        raise invalid([FieldError("from", "must be before to")])
    if end - start > MAX_RANGE_DAYS * 86_400_000:
        raise invalid([FieldError("from", f"the range may span at most {MAX_RANGE_DAYS} days")])
    return start, end


async def _campaign(request: Request) -> tuple[str, str]:
    ws = await workspace(request)
    campaign = request.path_params["campaign"]
    if not await store_of(request).campaign_known(ws, campaign):
        raise Problem(404, "Not found", f"No campaign {campaign!r} in this workspace.")
    return ws, campaign


async def timeseries_(request: Request) -> Response:
    ws, campaign = await _campaign(request)
    interval = request.query_params.get("interval", "day")
    if interval not in INTERVALS:
        raise invalid([FieldError("interval", f"one of {', '.join(INTERVALS)}")])
    metrics = [m for m in request.query_params.get("metrics", "clicks,orders,net").split(",")
               if m]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise invalid([FieldError("metrics", f"unknown {', '.join(unknown) or '(none)'}; "
                                             f"choose from {', '.join(METRICS)}")])
    tz = _tz(request)
    start, end = _range(request)
    raw = await store_of(request).redis.hgetall(store_of(request).keys.series(ws, campaign))
    try:
        buckets = timeseries({str(k): int(v) for k, v in raw.items()}, start, end, interval, tz,
                             metrics)
    except ValueError as exc:
        raise invalid([FieldError("interval", str(exc))]) from None
    return JSONResponse({"campaign": campaign, "interval": interval, "tz": str(tz),
                         "buckets": buckets})


async def breakdown(request: Request) -> Response:
    ws, campaign = await _campaign(request)
    by = request.query_params.get("by", "link")
    if by not in BREAKDOWNS:
        raise invalid([FieldError("by", f"one of {', '.join(BREAKDOWNS)}")])
    store = store_of(request)
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    if by in ("link", "utm_content"):
        raw = await store.redis.hgetall(store.keys.link_aggregates(ws, campaign))
        label: dict[str, str] = {}
        if by == "utm_content":
            # The links' own utm_content (one read per link: per-link counters
            # are O(links) anyway); links without one are grouped as "(none)".
            codes = sorted({str(k).partition(":")[0] for k in raw})
            pipe = store.redis.pipeline(transaction=False)
            for code in codes:
                pipe.hget(store.keys.link(code), "u")
            for code, url in zip(codes, await pipe.execute(), strict=True):
                content = parse_qs(urlsplit(url or "").query).get("utm_content", [""])[0]
                label[code] = content or "(none)"
        money: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        for key, value in raw.items():
            code, _, metric = str(key).partition(":")
            name = label.get(code, code)
            if metric.startswith(("gross:", "refunded:")):
                kind, _, cur = metric.partition(":")
                money[name].setdefault(kind, {})
                money[name][kind][cur] = money[name][kind].get(cur, 0) + int(value)
            else:
                rows[name][metric] = rows[name].get(metric, 0) + int(value)
        for name, kinds in money.items():
            for kind, per_cur in kinds.items():
                rows[name][kind] = {cur: from_micro(v) for cur, v in per_cur.items()}
    elif by in ("device", "os", "browser"):
        counters, *_ = await store.campaign_counts(ws, campaign)
        for name, count in counters.items():
            if name.startswith(f"{by}:"):
                rows[name.split(":", 1)[1]]["clicks"] = count
    else:
        tz = _tz(request)
        raw = await store.redis.hgetall(store.keys.series(ws, campaign))
        for key, value in raw.items():
            name, _, hour = str(key).rpartition(":")
            local = datetime.fromtimestamp(int(hour) * 3600, tz)
            when = str(local.hour) if by == "hour_of_day" else local.strftime("%A")
            if name in ("clicks", "orders", "non_human_clicks"):
                rows[when][name] = rows[when].get(name, 0) + int(value)
    return JSONResponse({"campaign": campaign, "by": by,
                         "rows": [{"value": k, **v} for k, v in sorted(rows.items())]})


async def orders(request: Request) -> Response:
    ws, campaign = await _campaign(request)
    store = store_of(request)
    raw = await store.redis.hgetall(store.keys.order_rows(ws, campaign))
    rows = sorted((json.loads(v) for v in raw.values()), key=lambda o: (-o["ts"], o["order_id"]))
    return JSONResponse({"campaign": campaign, "orders": [{
        "order_id": o["order_id"], "ordered_at": iso_ms(o["ts"]), "amount": o["amount"],
        "currency": o["currency"], "refunded": o["refunded"],
        "attributed_by": o["attributed_by"], "click_id": o["click_id"], "link": o["code"],
        "clicked_at": iso_ms(o["click_ts"]), "recipient": o["recipient"] or None,
        "hours_from_click": o["hours"]} for o in rows]})


routes += [
    Route("/api/v1/campaigns/{campaign}/timeseries", timeseries_, methods=["GET"]),
    Route("/api/v1/campaigns/{campaign}/breakdown", breakdown, methods=["GET"]),
    Route("/api/v1/campaigns/{campaign}/orders", orders, methods=["GET"]),
]
