"""POST /links, POST /links/batch, GET|PATCH|DELETE /links/{code}."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import now_ms
from ..models import Link
from ..problems import Problem, invalid
from ..validation import Invalid, LinkDefaults, LinkSpec, link_batch, link_patch, link_spec
from .common import config, json_body, settings_of, store_of, workspace


async def _secret(request: Request, ws: str, specs: Sequence[LinkSpec]) -> str:
    """The workspace's hashing key, read only when a link carries a phone or email."""
    if not any(spec.phone or spec.email for spec in specs):
        return ""
    return (await config(request, ws)).hash_secret


async def _defaults(request: Request, ws: str) -> LinkDefaults:
    s = settings_of(request)
    cfg = await config(request, ws)
    return LinkDefaults(s.utm_source, s.utm_medium, s.click_param, cfg.allowed_domains)


async def create(request: Request) -> Response:
    ws = await workspace(request)
    body = await json_body(request)
    now = now_ms()
    try:
        spec = link_spec(body, await _defaults(request, ws), now)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    [link] = await store_of(request).create_links(ws, [spec], await _secret(request, ws, [spec]))
    return JSONResponse(link.as_json(settings_of(request).public_base_url, now), status_code=201)


async def create_batch(request: Request) -> Response:
    ws = await workspace(request)
    body = await json_body(request)
    now = now_ms()
    settings = settings_of(request)
    try:
        specs = link_batch(body, await _defaults(request, ws), now, settings.batch_limit)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    links = await store_of(request).create_links(ws, specs, await _secret(request, ws, specs))
    base = settings.public_base_url
    return JSONResponse({"links": [link.as_json(base, now) for link in links]}, status_code=201)


async def _own_link(request: Request) -> Link:
    ws = await workspace(request)
    code = request.path_params["code"]
    link = await store_of(request).get_link(code)
    # Another workspace's link is "not found", not "forbidden": no probing.
    if link is None or link.ws != ws:
        raise Problem(404, "Not found", f"No link with code {code!r}.")
    return link


async def get(request: Request) -> Response:
    link = await _own_link(request)
    return JSONResponse(link.as_json(settings_of(request).public_base_url, now_ms()))


async def patch(request: Request) -> Response:
    link = await _own_link(request)
    body = await json_body(request)
    now = now_ms()
    try:
        changes = link_patch(body, now)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    link = await store_of(request).update_link(link, changes)
    return JSONResponse(link.as_json(settings_of(request).public_base_url, now))


async def delete(request: Request) -> Response:
    link = await _own_link(request)
    await store_of(request).delete_link(link)
    return Response(status_code=204)


routes = [
    Route("/api/v1/links", create, methods=["POST"]),
    Route("/api/v1/links/batch", create_batch, methods=["POST"]),
    Route("/api/v1/links/{code}", get, methods=["GET"]),
    Route("/api/v1/links/{code}", patch, methods=["PATCH"]),
    Route("/api/v1/links/{code}", delete, methods=["DELETE"]),
]
