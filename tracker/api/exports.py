"""GET /api/v1/exports/clicks and /exports/orders: the raw rows behind every figure.

Streamed (NDJSON by default, CSV with ``Accept: text/csv``), one HSCAN page
at a time, so memory stays flat however large the export. Every row carries
a `cursor`: a request with ``?cursor=`` resumes at that row's page. Delivery
is at least once across a resume (Redis may return a row twice while a hash
grows): rows carry their click or order id to dedupe by.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..clock import iso_ms
from ..problems import Problem, invalid
from ..validation import FieldError, Invalid, is_digits, parse_time
from .common import store_of, workspace

PAGE = 1000
CLICK_COLUMNS = ("click_id", "campaign", "clicked_at", "link", "recipient", "kind", "device",
                 "os", "browser", "ip", "cursor")
ORDER_COLUMNS = ("order_id", "campaign", "ordered_at", "amount", "currency", "refunded",
                 "attributed_by", "click_id", "link", "clicked_at", "recipient",
                 "hours_from_click", "cursor")


def _click(campaign: str, click_id: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"click_id": click_id, "campaign": campaign, "clicked_at": iso_ms(row["ts"]),
            "link": row["code"], "recipient": row["recipient"] or None, "kind": row["kind"],
            "device": row["device"], "os": row["os"], "browser": row["browser"],
            "ip": row["ip"] or None}


def _order(campaign: str, _: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": row["order_id"], "campaign": campaign, "ordered_at": iso_ms(row["ts"]),
            "amount": row["amount"], "currency": row["currency"],
            "refunded": row["refunded"], "attributed_by": row["attributed_by"],
            "click_id": row["click_id"], "link": row["code"],
            "clicked_at": iso_ms(row["click_ts"]), "recipient": row["recipient"] or None,
            "hours_from_click": row["hours"]}


async def _export(request: Request, kind: str) -> Response:
    ws = await workspace(request)
    store = store_of(request)
    q = request.query_params
    try:
        start = parse_time(q["from"], "from") if "from" in q else None
        end = parse_time(q["to"], "to") if "to" in q else None
    except Invalid as exc:
        raise invalid(exc.errors) from None
    campaigns = [c for c, _ in await store.campaigns(ws)]  # sorted by name
    if "campaign" in q:
        if q["campaign"] not in campaigns:
            raise Problem(404, "Not found", f"No campaign {q['campaign']!r} in this workspace.")
        campaigns = [q["campaign"]]
    first, page = 0, "0"
    if "cursor" in q:
        # "<scan position>:<campaign>": names, not positions, so campaigns created
        # between two requests cannot shift a resume.
        page, _, name = q["cursor"].partition(":")
        if not is_digits(page) or name not in campaigns:
            raise invalid([FieldError("cursor", "is not a cursor from an export row")])
        first = campaigns.index(name)
    csv_out = "text/csv" in request.headers.get("accept", "")
    key_of = store.keys.click_rows if kind == "clicks" else store.keys.order_rows
    shape = _click if kind == "clicks" else _order
    ts_field = "ts"
    columns = CLICK_COLUMNS if kind == "clicks" else ORDER_COLUMNS

    async def rows() -> AsyncIterator[bytes]:
        if csv_out:
            yield _csv_line(columns)
        for index in range(first, len(campaigns)):
            campaign = campaigns[index]
            cursor = page if index == first else "0"
            while True:
                next_cursor, chunk = await store.redis.hscan(
                    key_of(ws, campaign), cursor=int(cursor), count=PAGE)
                out = []
                assert isinstance(chunk, dict)
                for key, value in chunk.items():
                    row = json.loads(value)
                    ts = int(row[ts_field])
                    if (start is not None and ts < start) or (end is not None and ts >= end):
                        continue
                    item = shape(campaign, str(key), row)
                    item["cursor"] = f"{cursor}:{campaign}"
                    out.append(item)
                if out:
                    yield b"".join(
                        _csv_line([_cell(r[c]) for c in columns]) if csv_out
                        else json.dumps(r, separators=(",", ":")).encode() + b"\n"
                        for r in out)
                cursor = str(next_cursor)
                if cursor == "0":
                    break

    media = "text/csv; charset=utf-8" if csv_out else "application/x-ndjson"
    return StreamingResponse(rows(), media_type=media)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_line(cells: Any) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    return buf.getvalue().encode()


async def clicks(request: Request) -> Response:
    return await _export(request, "clicks")


async def orders(request: Request) -> Response:
    return await _export(request, "orders")


routes = [
    Route("/api/v1/exports/clicks", clicks, methods=["GET"]),
    Route("/api/v1/exports/orders", orders, methods=["GET"]),
]
