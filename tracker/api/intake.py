"""POST /api/v1/messages (the send log) and POST /api/v1/events (generic events)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import now_ms
from ..events import api_events
from ..intake import Intake
from ..messages import registrations
from ..problems import invalid
from ..validation import Invalid
from .common import config, json_body, settings_of, store_of, workspace


def intake_of(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


async def messages(request: Request) -> Response:
    ws = await workspace(request)
    cfg = await config(request, ws)
    body = await json_body(request)
    try:
        regs = registrations(body, cfg.hash_secret, settings_of(request).batch_limit)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    # The index first: a status that follows the registration must find it.
    await store_of(request).register_messages(ws, regs)
    now = now_ms()
    result = await intake_of(request).store([reg.event(ws, now) for reg in regs])
    return JSONResponse({"accepted": len(regs), "stored": result.stored,
                         "duplicates": result.duplicates}, status_code=202)


async def events(request: Request) -> Response:
    ws = await workspace(request)
    cfg = await config(request, ws)
    body = await json_body(request)
    try:
        batch = api_events(body, ws, cfg.hash_secret, settings_of(request).batch_limit)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    result = await intake_of(request).store(batch)
    return JSONResponse({
        "accepted": len(batch), "stored": result.stored, "duplicates": result.duplicates,
        "duplicate_ids": [k.removeprefix("api:") for k in result.duplicate_keys],
    }, status_code=202)


routes = [
    Route("/api/v1/messages", messages, methods=["POST"]),
    Route("/api/v1/events", events, methods=["POST"]),
]
