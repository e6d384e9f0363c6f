"""GET|PATCH /api/v1/workspace: the key's own workspace settings (never its secrets)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..problems import invalid
from ..validation import Invalid
from ..workspaces import settings_update
from .common import config, json_body, store_of, workspace


async def get(request: Request) -> Response:
    ws = await workspace(request)
    return JSONResponse((await config(request, ws)).public())


async def patch(request: Request) -> Response:
    ws = await workspace(request)
    body = await json_body(request)
    try:
        fields = settings_update(body)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    cfg = await store_of(request).update_workspace(ws, fields)
    return JSONResponse(cfg.public())


routes = [
    Route("/api/v1/workspace", get, methods=["GET"]),
    Route("/api/v1/workspace", patch, methods=["PATCH"]),
]
