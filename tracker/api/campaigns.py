"""PUT /api/v1/campaigns/{campaign}, GET /api/v1/campaigns."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import iso_ms
from ..messages import campaign_spec
from ..problems import invalid
from ..validation import Invalid, check_id
from .common import json_body, store_of, workspace


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


async def list_(request: Request) -> Response:
    ws = await workspace(request)
    rows = await store_of(request).campaigns(ws)
    return JSONResponse({"campaigns": [_campaign_json(c, m) for c, m in rows]})


routes = [
    Route("/api/v1/campaigns", list_, methods=["GET"]),
    Route("/api/v1/campaigns/{campaign}", put, methods=["PUT"]),
]
