"""PUT /api/v1/campaigns/{campaign}, GET /api/v1/campaigns."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import iso_ms
from ..messages import campaign_spec
from ..problems import invalid
from ..store import Store
from ..validation import FieldError, Invalid, check_id, is_digits
from .common import config, json_body, store_of, workspace
from .reports import build_report, period_of, window_of


def _campaign_json(campaign: str, meta: dict[str, str]) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "name": meta.get("name") or None,
        "spend": meta.get("spend") or None,
        "currency": meta.get("currency") or None,
        "sent_at": iso_ms(int(meta["sent_at"])) if meta.get("sent_at") else None,
    }


async def put(request: Request) -> Response:
    ws = await workspace(request)
    try:
        campaign = check_id(request.path_params["campaign"], "campaign")
        spec = campaign_spec(await json_body(request))
    except Invalid as exc:
        raise invalid(exc.errors) from None
    meta = await store_of(request).put_campaign(ws, campaign, spec)
    return JSONResponse(_campaign_json(campaign, meta))


SORTABLE = ("campaign", "recipients", "delivered", "clicks", "unique_clickers", "orders",
            "converters", "read_rate", "ctr", "conversion_rate", "rocs")
PAGE_MAX = 200


def _kpis(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a campaign, from its full report."""
    return {
        "recipients": report["recipients"], "delivered": report["delivered"],
        "clicks": report["clicks"], "unique_clickers": report["unique_clickers"],
        "orders": report["orders"], "converters": report["converters"],
        "read_rate": report["read_rate"], "ctr": report["ctr"],
        "conversion_rate": report["conversion_rate"], "rocs": report["rocs"],
        "net_revenue": {c: m["net"] for c, m in report["revenue"].items()},
        "revenue_per_recipient": {c: m["revenue_per_recipient"]
                                  for c, m in report["revenue"].items()},
    }


def _sort_value(row: dict[str, Any], key: str) -> tuple[int, Any]:
    value = row["campaign"] if key == "campaign" else row["kpis"][key]
    if isinstance(value, dict):
        value = value.get("value")
    return (0, value) if value is not None else (1, 0)  # nulls last either way


async def _reports(request: Request, ws: str, names: list[str]) -> list[dict[str, Any]]:
    """Reports of the same window and time range (?window=&from=&to=&tz=)."""
    cfg = await config(request, ws)
    window = window_of(request, cfg)
    period = period_of(request)
    store = store_of(request)
    return [await build_report(store, ws, name, window, period) for name in names]


async def campaign_items(store: Store, ws: str, window: int,
                         period: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Every campaign of the workspace with its headline KPIs (the list's rows)."""
    rows = await store.campaigns(ws)
    return [{**_campaign_json(c, m), "kpis": _kpis(await build_report(store, ws, c, window,
                                                                      period))}
            for c, m in rows]


async def list_(request: Request) -> Response:
    """Every campaign with its headline KPIs: ?sort=-orders&limit=50&cursor=..."""
    ws = await workspace(request)
    q = request.query_params
    sort = q.get("sort", "campaign")
    key = sort.lstrip("-")
    if key not in SORTABLE:
        raise invalid([FieldError("sort", f"one of {', '.join(SORTABLE)} (- for descending)")])
    limit_raw, cursor_raw = q.get("limit", "50"), q.get("cursor", "0")
    if not is_digits(limit_raw) or not 1 <= int(limit_raw) <= PAGE_MAX:
        raise invalid([FieldError("limit", f"a whole number from 1 to {PAGE_MAX}")])
    if not is_digits(cursor_raw):
        raise invalid([FieldError("cursor", "is not a cursor from a previous page")])
    limit, offset = int(limit_raw), int(cursor_raw)
    cfg = await config(request, ws)
    items = await campaign_items(store_of(request), ws, window_of(request, cfg),
                                 period_of(request))
    present = [i for i in items if _sort_value(i, key)[0] == 0]
    missing = [i for i in items if _sort_value(i, key)[0] == 1]
    present.sort(key=lambda i: _sort_value(i, key)[1], reverse=sort.startswith("-"))
    ordered = present + missing
    page = ordered[offset:offset + limit]
    more = offset + limit < len(ordered)
    return JSONResponse({"campaigns": page, "sort": sort,
                         "next_cursor": str(offset + limit) if more else None})


async def compare(request: Request) -> Response:
    """?campaigns=a,b,c: full reports side by side (same window)."""
    ws = await workspace(request)
    names = [c for c in request.query_params.get("campaigns", "").split(",") if c]
    if not 2 <= len(names) <= 20:
        raise invalid([FieldError("campaigns", "name 2 to 20 campaigns, comma-separated")])
    store = store_of(request)
    unknown = [n for n in names if not await store.campaign_known(ws, n)]
    if unknown:
        raise invalid([FieldError("campaigns", f"unknown: {', '.join(unknown)}")])
    return JSONResponse({"campaigns": await _reports(request, ws, names)})


routes = [
    Route("/api/v1/compare", compare, methods=["GET"]),
    Route("/api/v1/campaigns", list_, methods=["GET"]),
    Route("/api/v1/campaigns/{campaign}", put, methods=["PUT"]),
]
