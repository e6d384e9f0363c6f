"""POST /links, POST /links/batch, GET|PATCH|DELETE /links/{code}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import now_ms
from ..models import Link
from ..problems import Problem, invalid
from ..validation import Invalid, LinkDefaults, link_batch, link_patch, link_spec
from .common import config, json_body, settings_of, store_of, workspace


async def _defaults(request: Request, ws: str) -> tuple[LinkDefaults, str]:
    """The workspace's link defaults, and its secret (codes and phone/email
    hashes are keyed with it)."""
    s = settings_of(request)
    cfg = await config(request, ws)
    return (LinkDefaults(s.utm_source, s.utm_medium, s.click_param, cfg.allowed_domains),
            cfg.hash_secret)


async def create(request: Request) -> Response:
    ws = await workspace(request)
    body = await json_body(request)
    now = now_ms()
    defaults, secret = await _defaults(request, ws)
    try:
        spec = link_spec(body, defaults, now)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    [link] = await store_of(request).create_links(ws, [spec], secret)
    return JSONResponse(link.as_json(settings_of(request).public_base_url, now), status_code=201)


async def create_batch(request: Request) -> Response:
    ws = await workspace(request)
    body = await json_body(request)
    now = now_ms()
    settings = settings_of(request)
    defaults, secret = await _defaults(request, ws)
    try:
        specs = link_batch(body, defaults, now, settings.batch_limit)
    except Invalid as exc:
        raise invalid(exc.errors) from None
    links = await store_of(request).create_links(ws, specs, secret)
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
