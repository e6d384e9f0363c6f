"""Administration with a full key: API keys, and erasing a recipient.

GET|POST /api/v1/keys, DELETE /api/v1/keys/{key_id}: a workspace's API keys.

Keys are scoped (`full`, or `read` for reports and exports only), stored
only as hashes, and revoked at once. Rotation is create, switch, revoke.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..problems import Problem, invalid
from ..store import SCOPES, hash_key, key_id
from ..validation import FieldError
from .common import json_body, store_of, workspace


async def list_(request: Request) -> Response:
    ws = await workspace(request, manage=True)
    return JSONResponse({"keys": await store_of(request).list_keys(ws)})


async def create(request: Request) -> Response:
    ws = await workspace(request, manage=True)
    body = await json_body(request)
    scope = body.get("scope", "full") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) - {"scope"} or scope not in SCOPES:
        raise invalid([FieldError("scope", f"one of {', '.join(SCOPES)}")])
    api_key = await store_of(request).add_api_key(ws, scope)
    return JSONResponse({"key_id": key_id(hash_key(api_key)), "scope": scope,
                         "api_key": api_key}, status_code=201)


async def revoke(request: Request) -> Response:
    ws = await workspace(request, manage=True)
    kid = request.path_params["key_id"]
    if not await store_of(request).revoke_key(ws, kid):
        raise Problem(404, "Not found", f"No key {kid!r} in this workspace.")
    return Response(status_code=204)


async def erase(request: Request) -> Response:
    """DELETE /api/v1/recipients/{recipient}: erase a recipient's personal data."""
    from dataclasses import asdict

    from ..erase import erase_recipient
    from ..validation import Invalid, check_id
    from .common import config

    ws = await workspace(request, manage=True)
    try:
        recipient = check_id(request.path_params["recipient"], "recipient")
    except Invalid as exc:
        raise invalid(exc.errors) from None
    store = store_of(request)
    cfg = await config(request, ws)
    done = await erase_recipient(store.redis, store.keys, ws, recipient, cfg.hash_secret)
    return JSONResponse(asdict(done))


routes = [
    Route("/api/v1/recipients/{recipient}", erase, methods=["DELETE"]),
    Route("/api/v1/keys", list_, methods=["GET"]),
    Route("/api/v1/keys", create, methods=["POST"]),
    Route("/api/v1/keys/{key_id}", revoke, methods=["DELETE"]),
]
