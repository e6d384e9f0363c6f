"""What every API endpoint shares: the workspace behind the key, and the body."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ..clock import now_ms
from ..problems import Problem
from ..settings import Settings
from ..store import Store
from ..validation import FieldError, is_digits
from ..workspaces import WorkspaceConfig

_JSON_TYPES = ("application/json", "application/problem+json", "text/plain")


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def workspace(request: Request, *, manage: bool = False) -> str:
    """The workspace of the request's bearer key, or a 401 problem.

    A read-only key may only read (GET); managing keys needs a full key.
    """
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "Unauthorized", "Send the API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = await store_of(request).key_use(token.strip())
    if found is None:
        raise Problem(401, "Unauthorized", "The API key is not valid.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    ws, scope, used = found
    limit = settings_of(request).key_rate
    if limit and used > limit:
        retry = 60 - (now_ms() // 1000) % 60
        raise Problem(429, "Too many requests",
                      f"This key may make {limit} requests a minute.",
                      headers={"Retry-After": str(retry)})
    if scope != "full" and (manage or request.method not in ("GET", "HEAD")):
        raise Problem(403, "Forbidden", "This key is read-only.",
                      headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    return ws


async def config(request: Request, ws: str) -> WorkspaceConfig:
    cfg = await store_of(request).workspace_config(ws)
    if cfg is None:  # a key whose workspace was removed
        raise Problem(401, "Unauthorized", "The API key's workspace does not exist.")
    return cfg


def _check_json_type(request: Request) -> None:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise Problem(415, "Unsupported media type", "Send JSON (Content-Type: application/json).")


async def json_body(request: Request) -> Any:
    """The request's JSON body, within the size limit, or a 4xx problem."""
    _check_json_type(request)
    return parse_json(await raw_body(request, settings_of(request).max_body))


async def raw_body(request: Request, limit: int) -> bytes:
    """The body's bytes, refused with 413 as soon as it passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not is_digits(declared):
            raise Problem(400, "Bad request", "Content-Length is not a number.")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise Problem(400, "Bad request", "The body is empty; send a JSON document.",
                      [FieldError("body", "is empty")])
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}",
                      [FieldError("body", "is not valid JSON")]) from None
    except RecursionError:
        raise Problem(400, "Malformed JSON", "The body nests too deeply.",
                      [FieldError("body", "nests too deeply")]) from None


def _too_large(limit: int) -> Problem:
    return Problem(413, "Request body too large", f"The body must be at most {limit} bytes.",
                   [FieldError("body", f"is larger than {limit} bytes")])
