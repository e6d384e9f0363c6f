"""/dashboard: a read-only campaign dashboard, drawn from the report API's functions.

Sign-in takes a read-only API key and keeps it in an HttpOnly, SameSite=Strict
cookie scoped to /dashboard (Secure over HTTPS and in production); sign-out
clears it. Every request looks the key up again, so a revoked key signs the
dashboard out at once. A full key is refused: a browser cookie should never
hold a key that can change anything.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..api.campaigns import campaign_items
from ..api.reports import (
    attributed_orders,
    breakdown_rows,
    build_report,
    local_time,
    series_buckets,
)
from ..clock import now_ms
from ..problems import Problem
from ..store import Store
from ..validation import Invalid, is_digits
from ..workspaces import WorkspaceConfig, parse_window_hours
from . import pages

COOKIE = "trk_dashboard"
SESSION_S = 12 * 3600
HOUR_MS = 3_600_000
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SignedOut(Exception):
    """No valid read-only key in the cookie: back to the sign-in page."""


class Page(Exception):
    """An error shown as a page (the dashboard speaks HTML, not problem+json)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


async def _session(request: Request) -> tuple[str, WorkspaceConfig] | None:
    key = request.cookies.get(COOKIE, "")
    if not key:
        return None
    store = _store(request)
    found = await store.key_use(key)
    if found is None or found[1] != "read":
        return None
    cfg = await store.workspace_config(found[0])
    return (found[0], cfg) if cfg is not None else None


async def _signed_in(request: Request) -> tuple[str, WorkspaceConfig]:
    session = await _session(request)
    if session is None:
        raise SignedOut
    return session


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.env == "production"


def _signed_out(request: Request, page: str, status: int) -> HTMLResponse:
    res = _html(page, status)
    res.delete_cookie(COOKIE, path="/dashboard", secure=_secure(request), httponly=True,
                      samesite="strict")
    return res


# -- parameters ---------------------------------------------------------------------------
def windows(cfg: WorkspaceConfig) -> list[tuple[str, str]]:
    """The window switch: 24 h, 5 d and the workspace's own, as far as it allows."""
    hours = sorted({h for h in (24, 120, cfg.attribution_window_h)
                    if h <= cfg.attribution_window_h})
    return [(f"{h}h", f"{h // 24} d" if h % 24 == 0 and h > 24 else f"{h} h") for h in hours]


class View:
    """The window, range and sort of a page, read from its query string."""

    def __init__(self, request: Request, cfg: WorkspaceConfig) -> None:
        q = request.query_params
        self.tz = ZoneInfo(cfg.timezone)
        raw = q.get("window", "")
        try:
            self.window = (parse_window_hours(int(raw) if is_digits(raw) else raw, "window")
                           if raw else cfg.attribution_window_h)
        except Invalid:
            raise Page(422, "Bad window", f"{raw!r} is not a window like 24h or 5d.") from None
        if self.window > cfg.attribution_window_h:
            raise Page(422, "Bad window", "The window may be at most the workspace's, "
                                          f"{cfg.attribution_window_h}h.")
        self.start_day, self.end_day = q.get("from", ""), q.get("to", "")
        try:
            start = local_time(self.start_day, "from", self.tz) if self.start_day else None
            end = local_time(self.end_day, "to", self.tz) if self.end_day else None
        except Invalid:
            raise Page(422, "Bad date", "Dates are YYYY-MM-DD.") from None
        if start is not None and end is not None and start >= end:
            raise Page(422, "Bad range", "The start must be before the end.")
        self.period = None if start is None and end is None else (start or 0, end or now_ms())
        self.sort = q.get("sort", "campaign")
        self.params = {"window": f"{self.window}h", "from": self.start_day,
                       "to": self.end_day}

    def note(self) -> str:
        if self.period is None:
            span = "All time"
        else:
            span = f"{self.start_day or 'the start'} to {self.end_day or 'now'}"
        return (f"{span} ({self.tz.key}); orders within {self.window} h of their click, "
                "last-click attribution")


def sort_items(items: list[dict[str, Any]], sort: str, currency: str) -> list[dict[str, Any]]:
    """The list sorted by a column; campaigns without the value last either way."""
    key = sort.lstrip("-")

    def value(item: dict[str, Any]) -> Any:
        if key == "campaign":
            return item.get("name") or item["campaign"]
        v = item["kpis"].get(key)
        if isinstance(v, dict) and "value" in v:
            return v["value"]
        if isinstance(v, dict):  # per currency: the workspace's, else the first
            picked = v.get(currency) if currency in v else next(iter(v.values()), None)
            if isinstance(picked, dict):
                picked = picked.get("value")
            return float(picked) if picked is not None else None
        return v

    present = [i for i in items if value(i) is not None]
    missing = [i for i in items if value(i) is None]
    present.sort(key=value, reverse=sort.startswith("-"))
    return present + missing


# -- pages --------------------------------------------------------------------------------
async def index(request: Request) -> Response:
    session = await _session(request)
    if session is None:
        if request.cookies.get(COOKIE):  # revoked, or its workspace removed
            return _signed_out(request, pages.signin("Your key is no longer valid."), 401)
        return _html(pages.signin())
    ws, cfg = session
    view = View(request, cfg)
    if view.sort.lstrip("-") not in {k for k, _ in pages.LIST_COLUMNS}:
        view.sort = "campaign"
    items = await campaign_items(_store(request), ws, view.window, view.period)
    items = sort_items(items, view.sort, cfg.currency)
    return _html(pages.campaigns(items, {**view.params, "sort": view.sort}, windows(cfg),
                                 f"{view.window}h", ws, view.note()))


async def signin(request: Request) -> Response:
    body = await request.body()
    if len(body) > 4096:
        return _html(pages.signin("That is not an API key."), 400)
    key = parse_qs(body.decode("utf-8", "replace")).get("key", [""])[0].strip()
    found = await _store(request).key_use(key) if key else None
    if found is None:
        return _html(pages.signin("That key is not valid."), 401)
    if found[1] != "read":
        return _html(pages.signin("That key can change things: sign in with a read-only "
                                   "key."), 403)
    res = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
    res.set_cookie(COOKIE, key, max_age=SESSION_S, path="/dashboard", httponly=True,
                   samesite="strict", secure=_secure(request))
    return res


async def signout(request: Request) -> Response:
    res = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
    res.delete_cookie(COOKIE, path="/dashboard", secure=_secure(request), httponly=True,
                      samesite="strict")
    return res


async def _campaign_data(request: Request, ws: str, cfg: WorkspaceConfig, view: View,
                         campaign: str) -> dict[str, Any]:
    store = _store(request)
    if not await store.campaign_known(ws, campaign):
        raise Page(404, "Not found", f"There is no campaign {campaign!r} in this workspace.")
    report = await build_report(store, ws, campaign, view.window, view.period)
    # the chart spans the hours with events (or the chosen range, from its first event)
    series, lags = await store.campaign_series(ws, campaign)
    hours = {int(k.rsplit(":", 1)[1]) for k in (*series, *lags)}
    if view.period is not None:
        start, end = view.period
        start = max(start, min((h * HOUR_MS for h in hours), default=start))
    else:
        end = max([now_ms(), *((h + 1) * HOUR_MS for h in hours)])
        start = min((h * HOUR_MS for h in hours), default=end - 7 * 24 * HOUR_MS)
    start = max(start, end - 400 * 24 * HOUR_MS)
    interval = "hour" if end - start <= 3 * 24 * HOUR_MS else "day"
    buckets = await series_buckets(store, ws, campaign, start, end, interval, view.tz,
                                   ["clicks", "orders", "net"], view.window)
    breakdowns = {by: await breakdown_rows(store, ws, campaign, by, view.tz)
                  for by in ("link", "device", "hour_of_day")}
    orders = [o for o in await attributed_orders(store, ws, campaign)
              if o["hours_from_click"] < view.window and _in(o["ordered_at"], view.period)]
    return {"report": report, "buckets": buckets, "breakdowns": breakdowns, "orders": orders}


def _in(iso: str, period: tuple[int, int] | None) -> bool:
    if period is None:
        return True
    ts = int(datetime.fromisoformat(iso).timestamp() * 1000)
    return period[0] <= ts < period[1]


async def campaign(request: Request) -> Response:
    ws, cfg = await _signed_in(request)
    view = View(request, cfg)
    name = request.path_params["campaign"]
    data = await _campaign_data(request, ws, cfg, view, name)
    if request.query_params.get("format") == "csv":
        return Response(to_csv(data), media_type="text/csv; charset=utf-8", headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="{_safe(name)}.csv"'})
    csv_link = pages._q({**view.params, "format": "csv"})
    return _html(pages.campaign(data["report"], data["buckets"], data["breakdowns"],
                                data["orders"], view.params, windows(cfg), ws, view.tz.key,
                                view.note(), csv_link))


async def compare(request: Request) -> Response:
    ws, cfg = await _signed_in(request)
    view = View(request, cfg)
    names = [n for v in request.query_params.getlist("campaigns") for n in v.split(",") if n]
    names = list(dict.fromkeys(names))
    if not 2 <= len(names) <= 20:
        raise Page(422, "Pick campaigns", "Select two to twenty campaigns to compare.")
    store = _store(request)
    unknown = [n for n in names if not await store.campaign_known(ws, n)]
    if unknown:
        raise Page(404, "Not found", f"Unknown campaigns: {', '.join(unknown)}.")
    reports = [await build_report(store, ws, n, view.window, view.period) for n in names]
    params = {**view.params, "campaigns": ",".join(names)}
    return _html(pages.compare(reports, params, windows(cfg), f"{view.window}h", ws,
                               view.note()))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80] or "campaign"


def to_csv(data: Mapping[str, Any]) -> str:
    """What the campaign page shows, as rows of (section, item, metric, value)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "item", "metric", "value"])
    rep = data["report"]
    w.writerow(["report", rep["campaign"], "window", rep["window"]])
    w.writerow(["report", rep["campaign"], "from", rep.get("from") or ""])
    w.writerow(["report", rep["campaign"], "to", rep.get("to") or ""])
    for key in ("recipients", "messages", "sent", "delivered", "read", "failed", "clicks",
                "unique_clickers", "non_human_clicks", "orders", "converters", "replies",
                "opt_outs"):
        w.writerow(["report", rep["campaign"], key, rep[key]])
    for key in ("delivery_rate", "read_rate", "ctr", "conversion_rate", "opt_out_rate", "rocs"):
        r = rep[key]
        w.writerow(["rate", key, f"{r['numerator']}/{r['denominator']}",
                    "" if r["value"] is None else r["value"]])
    for cur, m in sorted(rep["revenue"].items()):
        for key in ("gross", "refunded", "net"):
            w.writerow(["revenue", cur, key, m[key]])
    for kind, n in rep["non_human"].items():
        w.writerow(["non_human", kind, "requests", n])
    for b in data["buckets"]:
        w.writerow(["series", b["start"], "clicks", b["clicks"]])
        w.writerow(["series", b["start"], "orders", b["orders"]])
        for cur, v in b["net"].items():
            w.writerow(["series", b["start"], f"net:{cur}", v])
    for by, rows in data["breakdowns"].items():
        for r in rows:
            for key in ("clicks", "unique_clickers", "orders"):
                w.writerow([f"by_{by}", r["value"], key, r[key]])
            for cur, v in r["net"].items():
                w.writerow([f"by_{by}", r["value"], f"net:{cur}", v])
    for o in data["orders"]:
        for key in ("ordered_at", "amount", "currency", "refunded", "attributed_by", "link",
                    "hours_from_click"):
            w.writerow(["order", o["order_id"], key, o[key]])
    return out.getvalue()


STATIC = {"dashboard.css": "text/css; charset=utf-8",
          "dashboard.js": "text/javascript; charset=utf-8"}


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise Problem(404, "Not found", "No such file.")
    data = resources.files("tracker").joinpath("static", name).read_bytes()
    return Response(data, media_type=STATIC[name],
                    headers={"Cache-Control": "public, max-age=3600",
                             "X-Content-Type-Options": "nosniff"})


def _guard(handler: Any) -> Any:
    """Errors as pages; a Redis outage as a 503 page, never a stack trace."""
    async def run(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except SignedOut:
            return RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
        except Page as exc:
            session = request.cookies.get(COOKIE) is not None
            return _html(pages.problem(exc.title, exc.detail, signed_in=session), exc.status)
    return run


routes: Sequence[Route] = [
    Route("/dashboard", _guard(index), methods=["GET"]),
    Route("/dashboard/signin", _guard(signin), methods=["POST"]),
    Route("/dashboard/signout", _guard(signout), methods=["POST"]),
    Route("/dashboard/compare", _guard(compare), methods=["GET"]),
    Route("/dashboard/static/{name}", static, methods=["GET"]),
    Route("/dashboard/campaigns/{campaign:path}", _guard(campaign), methods=["GET"]),
]
