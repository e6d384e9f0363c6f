"""The webhook endpoints: verify, map, store, and only then answer 200.

A sender (Meta, Shopify) retries whatever is not acknowledged, so we answer
200 only after the events are in Redis; a Redis error answers 503 and the
sender tries again later. A bad signature is a 401 and nothing is stored.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..api.common import parse_json, raw_body, settings_of, store_of
from ..intake import Intake
from ..problems import Problem
from ..validation import FieldError
from ..workspaces import WorkspaceConfig
from .shopify import parse_shopify
from .signatures import valid_meta, valid_shopify
from .whatsapp import PayloadError, parse_whatsapp


async def _workspace(request: Request) -> WorkspaceConfig:
    ws = request.path_params["workspace"]
    cfg = await store_of(request).workspace_config(ws)
    if cfg is None:
        raise Problem(404, "Not found", f"No workspace {ws!r}.")
    return cfg


def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


def _bad_payload(exc: PayloadError) -> Problem:
    return Problem(400, "Malformed webhook payload", str(exc), [FieldError(exc.path, exc.reason)])


async def whatsapp_verify(request: Request) -> Response:
    """Meta's subscription handshake: echo hub.challenge if the token matches."""
    cfg = await _workspace(request)
    q = request.query_params
    token = q.get("hub.verify_token", "")
    if (
        q.get("hub.mode") == "subscribe"
        and cfg.whatsapp_verify_token
        and hmac.compare_digest(token.encode(), cfg.whatsapp_verify_token.encode())
    ):
        return PlainTextResponse(q.get("hub.challenge", ""))
    raise Problem(403, "Forbidden", "hub.mode or hub.verify_token does not match.")


async def _signed_body(request: Request, secret: str, source: str, header: str,
                       valid: Callable[[str, bytes, str | None], bool]) -> bytes:
    """The raw body, within the webhook size limit, if its signature holds; else a 401."""
    body = await raw_body(request, settings_of(request).webhook_max_body)
    if not secret:
        raise Problem(401, "Unauthorized", f"This workspace has no {source} secret set.")
    if not valid(secret, body, request.headers.get(header)):
        raise Problem(401, "Unauthorized", f"{header} does not match the body.")
    return body


async def whatsapp_receive(request: Request) -> Response:
    cfg = await _workspace(request)
    body = await _signed_body(request, cfg.whatsapp_app_secret, "WhatsApp app",
                              "X-Hub-Signature-256", valid_meta)
    try:
        events = parse_whatsapp(parse_json(body), cfg.name, cfg.hash_secret, cfg.stop_keywords)
    except PayloadError as exc:
        raise _bad_payload(exc) from None
    result = await _intake(request).store(events)
    return JSONResponse({"stored": result.stored, "duplicates": result.duplicates})


async def shopify_receive(request: Request) -> Response:
    cfg = await _workspace(request)
    body = await _signed_body(request, cfg.shopify_secret, "Shopify", "X-Shopify-Hmac-Sha256",
                              valid_shopify)
    topic = request.headers.get("x-shopify-topic", "")
    if not topic:
        raise Problem(400, "Bad request", "X-Shopify-Topic is missing.",
                      [FieldError("X-Shopify-Topic", "is required")])
    payload = parse_json(body)
    webhook_id = request.headers.get("x-shopify-webhook-id", "")
    if webhook_id:
        key = f"shopify:{webhook_id}"
    else:
        # No delivery id (a replayed or hand-made delivery): Shopify's own advice
        # is to key on the resource and its updated_at.
        ident = payload.get("id") if isinstance(payload, dict) else None
        updated = payload.get("updated_at") if isinstance(payload, dict) else None
        key = f"shopify:{topic}:{ident}:{updated}"
    settings = settings_of(request)
    try:
        event = parse_shopify(topic, payload, cfg.name, cfg.hash_secret, key,
                              settings.click_param, cfg.order_topic)
    except PayloadError as exc:
        raise _bad_payload(exc) from None
    if event is None:
        return JSONResponse({"stored": 0, "duplicates": 0, "ignored": topic})
    if _stale(request.headers.get("x-shopify-triggered-at"), settings.shopify_max_age):
        # Signed, but older than any retry of Shopify's: a replay. Kept (flagged)
        # so it can be looked at, never counted (the worker skips stale events).
        event = replace(event, data={**event.data, "stale": True})
    result = await _intake(request).store([event])
    return JSONResponse({"stored": result.stored, "duplicates": result.duplicates,
                         **({"stale": True} if event.data.get("stale") else {})})


def _stale(triggered_at: str | None, max_age: int) -> bool:
    if not triggered_at:
        return False
    try:
        when = datetime.fromisoformat(triggered_at.replace("Z", "+00:00"))
    except ValueError:
        return False  # unparseable: the signature vouches for the body, not the header
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds() > max_age


routes = [
    Route("/webhooks/whatsapp/{workspace}", whatsapp_verify, methods=["GET"]),
    Route("/webhooks/whatsapp/{workspace}", whatsapp_receive, methods=["POST"]),
    Route("/webhooks/shopify/{workspace}", shopify_receive, methods=["POST"]),
]
