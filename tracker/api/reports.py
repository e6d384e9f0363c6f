"""GET /campaigns/{campaign}/report?window=24h."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..attribution import from_micro
from ..clock import iso_ms, now_ms
from ..metrics import campaign_report, range_aggregates
from ..problems import Problem, invalid
from ..series import INTERVALS, METRICS, timeseries, windowed
from ..store import Store
from ..validation import FieldError, Invalid, is_digits
from ..workspaces import WorkspaceConfig, parse_window_hours
from .common import config, store_of, workspace


def window_of(request: Request, cfg: WorkspaceConfig) -> int:
    """?window= (hours, "24h", "5d"), at most the workspace's maximum."""
    raw = request.query_params.get("window")
    if raw is None:
        return cfg.attribution_window_h
    try:
        hours = parse_window_hours(int(raw) if is_digits(raw) else raw, "window")
    except Invalid as exc:
        raise invalid(exc.errors) from None
    if hours > cfg.attribution_window_h:
        raise invalid([FieldError(
            "window", f"must be at most the workspace's window, {cfg.attribution_window_h}h")])
    return hours


def period_of(request: Request) -> tuple[int, int] | None:
    """?from=&to=&tz= of a report: None for the whole campaign."""
    q = request.query_params
    if "from" not in q and "to" not in q:
        return None
    return _range(request, _tz(request), default_days=None)


async def build_report(store: Store, ws: str, campaign: str, window: int,
                       period: tuple[int, int] | None) -> dict[str, Any]:
    """The campaign's report: from its totals, or over a range from its hourly
    counters (both O(1) in the number of clicks and events)."""
    agg, links, recipients, meta = await store.campaign_counts(ws, campaign)
    if period is None:
        return campaign_report(campaign, agg, links, recipients, meta, window)
    series, lags = await store.campaign_series(ws, campaign)
    ranged = range_aggregates(series, lags, *period)
    return campaign_report(campaign, ranged, links, recipients, meta, window,
                           (iso_ms(period[0]), iso_ms(period[1])))


async def report(request: Request) -> Response:
    ws = await workspace(request)
    cfg = await config(request, ws)
    campaign = request.path_params["campaign"]
    window = window_of(request, cfg)
    period = period_of(request)
    store = store_of(request)
    if not await store.campaign_known(ws, campaign):
        raise Problem(404, "Not found", f"No campaign {campaign!r} in this workspace.")
    return JSONResponse(await build_report(store, ws, campaign, window, period))


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


def local_time(value: str, name: str, tz: ZoneInfo) -> int:
    """A range edge: an ISO 8601 date-time (with an offset, or local to `tz`),
    or a date: local midnight in `tz`; a date given as `to` includes that day."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if name == "to":
                day += timedelta(days=1)
            return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid([FieldError(name, "is not an ISO 8601 date or date-time")]) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return int(parsed.timestamp() * 1000)


def _range(request: Request, tz: ZoneInfo | None = None,
           default_days: int | None = 7) -> tuple[int, int]:
    q = request.query_params
    tz = tz or ZoneInfo("UTC")
    try:
        end = local_time(q["to"], "to", tz) if "to" in q else now_ms()
        if "from" in q:
            start = local_time(q["from"], "from", tz)
        elif default_days is None:
            start = 0  # since the beginning
        else:
            start = end - default_days * 86_400_000
    except Invalid as exc:
        raise invalid(exc.errors) from None
    if start >= end:
        raise invalid([FieldError("from", "must be before to")])
    if default_days is not None and end - start > MAX_RANGE_DAYS * 86_400_000:
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
    start, end = _range(request, tz)
    window = window_of(request, await config(request, ws))
    try:
        buckets = await series_buckets(store_of(request), ws, campaign, start, end, interval,
                                       tz, metrics, window)
    except ValueError as exc:
        raise invalid([FieldError("interval", str(exc))]) from None
    return JSONResponse({"campaign": campaign, "interval": interval, "tz": str(tz),
                         "window": f"{window}h", "buckets": buckets})


async def series_buckets(store: Store, ws: str, campaign: str, start: int, end: int,
                         interval: str, tz: ZoneInfo, metrics: list[str], window_h: int
                         ) -> list[dict[str, Any]]:
    """Time series buckets, orders and revenue within the window; ValueError when
    there would be too many buckets."""
    series, lags = await store.campaign_series(ws, campaign)
    return timeseries(windowed(series, lags, window_h), start, end, interval, tz, metrics)


async def breakdown(request: Request) -> Response:
    ws, campaign = await _campaign(request)
    by = request.query_params.get("by", "link")
    if by not in BREAKDOWNS:
        raise invalid([FieldError("by", f"one of {', '.join(BREAKDOWNS)}")])
    tz = _tz(request)
    rows = await breakdown_rows(store_of(request), ws, campaign, by, tz)
    return JSONResponse({"campaign": campaign, "by": by, "tz": str(tz), "rows": rows})


async def breakdown_rows(store: Store, ws: str, campaign: str, by: str,
                         tz: ZoneInfo) -> list[dict[str, Any]]:
    """Clicks, unique clickers, orders and revenue per value of `by`."""
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    money: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)

    def add(name: str, metric: str, value: int) -> None:
        if metric.startswith(("gross:", "refunded:")):
            kind, _, cur = metric.partition(":")
            per_cur = money[name].setdefault(kind, {})
            per_cur[cur] = per_cur.get(cur, 0) + value
        else:
            rows[name][metric] = rows[name].get(metric, 0) + value

    if by in ("link", "utm_content", "device", "os", "browser"):
        # Per-link counters "<code>:<metric>", and per click class
        # "device=<value>:<metric>" (an order counts under its click's class).
        raw = await store.redis.hgetall(store.keys.link_aggregates(ws, campaign))
        label: dict[str, str] = {}
        if by == "utm_content":
            # The links' own utm_content (one read per link: per-link counters
            # are O(links) anyway); links without one are grouped as "(none)".
            codes = sorted({str(k).partition(":")[0] for k in raw if "=" not in str(k)})
            urls = await store.link_urls(codes)
            for code, url in urls.items():
                content = parse_qs(urlsplit(url or "").query).get("utm_content", [""])[0]
                label[code] = content or "(none)"
        for key, count in raw.items():
            owner, _, metric = str(key).partition(":")
            cls, eq, name = owner.partition("=")
            if by in ("link", "utm_content") and not eq:
                add(label.get(owner, owner), metric, int(count))
            elif eq and cls == by:
                add(name, metric, int(count))
    else:
        series, _ = await store.campaign_series(ws, campaign)
        for key, value in series.items():
            name, _, hour = key.rpartition(":")
            local = datetime.fromtimestamp(int(hour) * 3600, tz)
            when = f"{local.hour:02d}" if by == "hour_of_day" else local.strftime("%A")
            if name in ("clicks", "unique_clickers", "orders", "non_human_clicks") or \
                    name.startswith(("gross:", "refunded:")):
                add(when, name, value)
    for name, kinds in money.items():
        gross, refunded = kinds.get("gross", {}), kinds.get("refunded", {})
        currencies = sorted(set(gross) | set(refunded))
        rows[name]["gross"] = {c: from_micro(gross.get(c, 0)) for c in currencies}
        rows[name]["refunded"] = {c: from_micro(refunded.get(c, 0)) for c in currencies}
        rows[name]["net"] = {c: from_micro(gross.get(c, 0) - refunded.get(c, 0))
                             for c in currencies}
    out = []
    for name, row in sorted(rows.items()):
        out.append({"value": name, "clicks": row.get("clicks", 0),
                    "unique_clickers": row.get("unique_clickers", 0),
                    "orders": row.get("orders", 0), "gross": row.get("gross", {}),
                    "refunded": row.get("refunded", {}), "net": row.get("net", {}),
                    **({"non_human_clicks": row["non_human_clicks"]}
                       if "non_human_clicks" in row else {})})
    return out


async def orders(request: Request) -> Response:
    ws, campaign = await _campaign(request)
    return JSONResponse({"campaign": campaign,
                         "orders": await attributed_orders(store_of(request), ws, campaign)})


async def attributed_orders(store: Store, ws: str, campaign: str) -> list[dict[str, Any]]:
    """The campaign's attributed orders, newest first."""
    raw = await store.redis.hgetall(store.keys.order_rows(ws, campaign))
    rows = sorted((json.loads(v) for v in raw.values()), key=lambda o: (-o["ts"], o["order_id"]))
    return [{
        "order_id": o["order_id"], "ordered_at": iso_ms(o["ts"]), "amount": o["amount"],
        "currency": o["currency"], "refunded": o["refunded"],
        "attributed_by": o["attributed_by"], "click_id": o["click_id"], "link": o["code"],
        "clicked_at": iso_ms(o["click_ts"]), "recipient": o["recipient"] or None,
        "hours_from_click": o["hours"]} for o in rows]


routes += [
    Route("/api/v1/campaigns/{campaign}/timeseries", timeseries_, methods=["GET"]),
    Route("/api/v1/campaigns/{campaign}/breakdown", breakdown, methods=["GET"]),
    Route("/api/v1/campaigns/{campaign}/orders", orders, methods=["GET"]),
]
