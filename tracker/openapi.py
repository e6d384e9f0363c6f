"""The OpenAPI 3.1 document of the API, and a small human docs page.

Written out rather than generated: the schemas say what the handlers
promise. tests/api/test_openapi.py keeps it honest, checking that every route
is documented (and nothing else), and that real responses validate against
the schemas declared for them.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import __version__

S = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": S + name}


def obj(props: dict[str, Any], required: list[str] | None = None,
        extra: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    if not extra:
        out["additionalProperties"] = False
    return out


STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
NTIME = {"type": ["string", "null"], "format": "date-time"}
MONEY = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}

SCHEMAS: dict[str, Any] = {
    "Problem": obj({
        "type": STR, "title": STR, "status": INT, "detail": STR, "instance": STR,
        "errors": {"type": "array", "items": obj(
            {"field": STR, "reason": STR, "index": INT}, ["field", "reason"])},
    }, ["type", "title", "status"]),
    "Rate": obj({"value": {"type": ["number", "null"]}, "numerator": STR, "denominator": STR,
                 "reason": STR, "currency": STR}, ["value", "numerator", "denominator"]),
    "MoneyRate": obj({"value": {"type": ["string", "null"]}, "currency": STR,
                      "numerator": STR, "denominator": STR},
                     ["value", "numerator", "denominator"]),
    "Utm": obj({k: STR for k in ("source", "medium", "campaign", "content", "term")},
               extra=False),
    "LinkCreate": obj({
        "url": {"type": "string", "maxLength": 2048}, "campaign": STR, "recipient": STR,
        "utm": ref("Utm"), "expires_at": TIME, "metadata": {"type": "object"},
        "phone": STR, "email": STR,
    }, ["url", "campaign"], extra=False),
    "Link": obj({
        "code": STR, "short_url": STR, "url": STR, "campaign": STR, "recipient": NSTR,
        "created_at": TIME, "expires_at": NTIME, "disabled": {"type": "boolean"},
        "state": {"enum": ["active", "disabled", "expired"]},
        "metadata": {"type": ["object", "null"]},
    }, ["code", "short_url", "url", "campaign", "recipient", "created_at"]),
    "LinkBatch": {"oneOf": [
        obj({"links": {"type": "array", "items": ref("LinkCreate"), "maxItems": 10000}},
            ["links"]),
        {"type": "array", "items": ref("LinkCreate"), "maxItems": 10000},
        obj({"url": STR, "campaign": STR, "recipients": {"type": "array", "items": STR,
                                                         "maxItems": 10000},
             "utm": ref("Utm"), "expires_at": TIME, "metadata": {"type": "object"}},
            ["url", "campaign", "recipients"]),
    ]},
    "LinkList": obj({"links": {"type": "array", "items": ref("Link")}}, ["links"]),
    "LinkPatch": obj({"disabled": {"type": "boolean"}, "expires_at": NTIME}, extra=False),
    "CampaignPut": obj({"name": STR, "spend": MONEY, "currency": STR, "sent_at": TIME},
                       extra=False),
    "Campaign": obj({"campaign": STR, "name": NSTR, "spend": NSTR, "currency": NSTR,
                     "sent_at": NTIME, "kpis": {"type": "object"}}, ["campaign"]),
    "CampaignList": obj({"campaigns": {"type": "array", "items": ref("Campaign")},
                         "sort": STR, "next_cursor": NSTR}, ["campaigns"]),
    "Messages": {"oneOf": [
        obj({"messages": {"type": "array", "maxItems": 10000, "items": obj({
            "message_id": STR, "campaign": STR, "recipient": STR, "sent_at": TIME,
            "phone": STR}, ["message_id", "campaign", "recipient"], extra=False)}},
            ["messages"]),
        {"type": "array"},
    ]},
    "Accepted": obj({"accepted": INT, "stored": INT, "duplicates": INT,
                     "duplicate_ids": {"type": "array", "items": STR}},
                    ["accepted", "stored", "duplicates"]),
    "Events": {"oneOf": [
        obj({"events": {"type": "array", "maxItems": 10000, "items": obj({
            "id": STR, "type": {"enum": ["status", "reply", "opt_out", "opt_in", "order",
                                         "order_cancelled", "refund"]},
            "time": TIME}, ["id", "type", "time"])}}, ["events"]),
        {"type": "array"},
    ]},
    "WorkspaceSettings": obj({
        "whatsapp_app_secret": STR, "whatsapp_verify_token": STR, "shopify_secret": STR,
        "attribution_window": {"type": ["string", "integer"]}, "currency": STR,
        "order_topic": {"enum": ["orders/create", "orders/paid"]},
        "stop_keywords": {"type": "array", "items": STR}, "respect_dnt": {"type": "boolean"},
        "allowed_domains": {"type": "array", "items": STR},
        "raw_retention_days": INT, "timezone": STR, "fire_and_forget": {"type": "boolean"},
    }, extra=False),
    "Workspace": obj({
        "workspace": STR, "whatsapp_app_secret_set": {"type": "boolean"},
        "whatsapp_verify_token_set": {"type": "boolean"},
        "shopify_secret_set": {"type": "boolean"}, "attribution_window": STR,
        "currency": NSTR, "order_topic": STR, "stop_keywords": {"type": "array"},
        "respect_dnt": {"type": "boolean"},
    }, ["workspace", "whatsapp_app_secret_set", "shopify_secret_set"]),
    "Report": obj({
        "campaign": STR, "window": STR, "from": NTIME, "to": NTIME,
        "clicks_by": {"type": ["object", "null"]},
        **{k: INT for k in ("links", "recipients", "messages", "sent", "delivered", "read",
                            "failed", "clicks", "unique_clickers", "anonymous_clicks",
                            "non_human_clicks", "replies", "opt_outs", "opt_ins", "orders",
                            "converters")},
        "orders_by": obj({"click_id": INT, "last_click": INT}),
        "revenue": {"type": "object", "additionalProperties": obj({
            "gross": MONEY, "refunded": MONEY, "net": MONEY, "orders": INT,
            "average_order_value": ref("MoneyRate"),
            "revenue_per_recipient": ref("MoneyRate")},
            ["gross", "refunded", "net"])},
        "spend": {"type": ["object", "null"]},
        **{k: ref("Rate") for k in ("delivery_rate", "read_rate", "ctr", "ctr_recipients",
                                    "click_to_read", "reply_rate", "opt_out_rate",
                                    "conversion_rate", "rocs")},
    }, ["campaign", "window", "recipients", "delivered", "clicks", "unique_clickers",
        "orders", "revenue", "ctr", "rocs"]),
    "Compare": obj({"campaigns": {"type": "array", "items": ref("Report")}}, ["campaigns"]),
    "Timeseries": obj({"campaign": STR, "interval": {"enum": ["hour", "day"]}, "tz": STR,
                       "buckets": {"type": "array", "items": obj({"start": TIME},
                                                                 ["start"])}},
                      ["campaign", "interval", "tz", "buckets"]),
    "Breakdown": obj({"campaign": STR, "by": STR,
                      "tz": STR,
                      "rows": {"type": "array", "items": obj({
                          "value": STR, "clicks": INT, "unique_clickers": INT, "orders": INT,
                          "non_human_clicks": INT,
                          **{k: {"type": "object", "additionalProperties": MONEY}
                             for k in ("gross", "refunded", "net")}},
                          ["value", "clicks", "unique_clickers", "orders", "gross", "refunded",
                           "net"])}},
                     ["campaign", "by", "tz", "rows"]),
    "AttributedOrders": obj({"campaign": STR, "orders": {"type": "array", "items": obj({
        "order_id": STR, "ordered_at": TIME, "amount": MONEY, "currency": STR,
        "refunded": MONEY, "attributed_by": {"enum": ["click_id", "last_click"]},
        "click_id": STR, "link": STR, "clicked_at": TIME, "recipient": NSTR,
        "hours_from_click": INT}, ["order_id", "amount", "currency", "attributed_by"])}},
        ["campaign", "orders"]),
    "KeyCreate": obj({"scope": {"enum": ["full", "read"]}}, extra=False),
    "NewKey": obj({"key_id": STR, "scope": STR, "api_key": STR},
                  ["key_id", "scope", "api_key"]),
    "KeyList": obj({"keys": {"type": "array", "items": obj(
        {"key_id": STR, "scope": STR, "created_at": TIME}, ["key_id", "scope"])}}, ["keys"]),
    "Erased": obj({"recipient_pseudonym": STR, "identities": INT, "click_rows": INT,
                   "links": INT, "stream_entries": INT,
                   "campaigns": {"type": "array", "items": STR}},
                  ["recipient_pseudonym"]),
    "WebhookAck": obj({"stored": INT, "duplicates": INT, "ignored": STR},
                      ["stored", "duplicates"]),
}

PROBLEM = {"application/problem+json": {"schema": ref("Problem")}}


def _op(summary: str, ok: tuple[str, str | None], *errors: int, body: str | None = None,
        params: list[dict[str, Any]] | None = None, secure: bool = True,
        media: str = "application/json") -> dict[str, Any]:
    code, schema = ok
    response: dict[str, Any] = {"description": summary}
    if schema:
        response["content"] = {media: {"schema": ref(schema)}}
    op: dict[str, Any] = {"summary": summary, "responses": {code: response}}
    for status in errors:
        op["responses"][str(status)] = {"description": "a problem", "content": PROBLEM}
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": ref(body)}}}
    if params:
        op["parameters"] = params
    if not secure:
        op["security"] = []
    return op


def _export(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed export: one row a line, NDJSON or CSV."""
    op = _op(summary, ("200", None), 401, 404, 422, params=params)
    op["responses"]["200"]["content"] = {"application/x-ndjson": {}, "text/csv": {}}
    return op


def _page(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"summary": summary, "security": [{"dashboardCookie": []}], "parameters": params,
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}},
                          "303": {"description": "not signed in: to /dashboard"},
                          "404": {"description": "HTML: no such campaign"},
                          "422": {"description": "HTML: a bad window, date or selection"}}}


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or STR}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


CAMPAIGN = [_p("campaign")]
WINDOW = _q("window", 'attribution window up to the workspace\'s: "24h", "5d" or hours')
RANGE = [_q("from", "start: an ISO 8601 date-time (without an offset: in tz) or a date "
                    "(its midnight in tz)"),
         _q("to", "end, exclusive: an ISO 8601 date-time, or a date (that day included)"),
         _q("tz", "IANA time zone, e.g. Europe/Berlin; default UTC")]
AUTH_ERRORS = (401, 404, 422)


def document() -> dict[str, Any]:
    export_params = [_q("campaign", "one campaign; default all"),
                     _q("from", "ISO 8601 start, with an offset", TIME),
                     _q("to", "ISO 8601 end, with an offset", TIME),
                     _q("cursor", "resume at a row's cursor")]
    paths: dict[str, Any] = {
        "/api/v1/links": {"post": _op("Create a link", ("201", "Link"), 400, 401, 413, 415,
                                      422, body="LinkCreate")},
        "/api/v1/links/batch": {"post": _op("Create up to 10,000 links, all or nothing",
                                            ("201", "LinkList"), 400, 401, 413, 415, 422,
                                            body="LinkBatch")},
        "/api/v1/links/{code}": {
            "get": _op("A link", ("200", "Link"), 401, 404, params=[_p("code")]),
            "patch": _op("Disable, enable or change expiry", ("200", "Link"), 400, 401, 404,
                         422, body="LinkPatch", params=[_p("code")]),
            "delete": _op("Delete a link", ("204", None), 401, 404, params=[_p("code")]),
        },
        "/api/v1/campaigns": {"get": _op(
            "Campaigns with headline KPIs", ("200", "CampaignList"), 401, 422,
            params=[_q("sort", "a KPI, - for descending"), _q("limit", "1 to 200"),
                    _q("cursor", "next_cursor of the previous page"), WINDOW, *RANGE])},
        "/api/v1/campaigns/{campaign}": {"put": _op(
            "Create or update a campaign (name, spend)", ("200", "Campaign"), 400, 401, 422,
            body="CampaignPut", params=CAMPAIGN)},
        "/api/v1/campaigns/{campaign}/report": {"get": _op(
            "The full KPI set: the whole campaign, or the events in a time range",
            ("200", "Report"), *AUTH_ERRORS, params=[*CAMPAIGN, WINDOW, *RANGE])},
        "/api/v1/campaigns/{campaign}/timeseries": {"get": _op(
            "Buckets over time in a time zone", ("200", "Timeseries"), *AUTH_ERRORS,
            params=[*CAMPAIGN, _q("interval", "hour or day"), *RANGE, WINDOW,
                    _q("metrics", "comma-separated: clicks, non_human_clicks, orders, gross, "
                                  "refunded, net")])},
        "/api/v1/campaigns/{campaign}/breakdown": {"get": _op(
            "Clicks, orders and revenue by a dimension", ("200", "Breakdown"), *AUTH_ERRORS,
            params=[*CAMPAIGN, _q("by", "link, utm_content, device, os, browser, hour_of_day, "
                                        "weekday"),
                    RANGE[2]])},
        "/api/v1/campaigns/{campaign}/orders": {"get": _op(
            "Attributed orders", ("200", "AttributedOrders"), 401, 404, params=CAMPAIGN)},
        "/api/v1/compare": {"get": _op(
            "Reports side by side", ("200", "Compare"), 401, 422,
            params=[_q("campaigns", "2 to 20 campaign ids, comma-separated"), WINDOW, *RANGE])},
        "/api/v1/messages": {"post": _op("Register sent messages (the send log)",
                                         ("202", "Accepted"), 400, 401, 413, 415, 422,
                                         body="Messages")},
        "/api/v1/events": {"post": _op("Events from other sources", ("202", "Accepted"), 400,
                                       401, 413, 415, 422, body="Events")},
        "/api/v1/workspace": {
            "get": _op("The key's workspace settings", ("200", "Workspace"), 401),
            "patch": _op("Change settings (secrets are write-only)", ("200", "Workspace"), 400,
                         401, 422, body="WorkspaceSettings"),
        },
        "/api/v1/keys": {
            "get": _op("The workspace's keys (ids and scopes, never the keys)",
                       ("200", "KeyList"), 401, 403),
            "post": _op("A new key, shown once; scope full or read", ("201", "NewKey"), 400,
                        401, 403, 422, body="KeyCreate"),
        },
        "/api/v1/recipients/{recipient}": {"delete": _op(
            "Erase a recipient's personal data (aggregates stay)", ("200", "Erased"), 401,
            403, 422, params=[_p("recipient")])},
        "/api/v1/keys/{key_id}": {"delete": _op("Revoke a key at once", ("204", None), 401,
                                                403, 404, params=[_p("key_id")])},
        "/api/v1/exports/clicks": {"get": _export(
            "Raw clicks: NDJSON, or CSV with Accept: text/csv", export_params)},
        "/api/v1/exports/orders": {"get": _export(
            "Attributed orders: NDJSON, or CSV with Accept: text/csv", export_params)},
        "/webhooks/whatsapp/{workspace}": {
            "get": _op("Meta's verification handshake (hub.mode, hub.verify_token, "
                       "hub.challenge)", ("200", None), 403, 404, secure=False,
                       params=[_p("workspace")]),
            "post": _op("WhatsApp Cloud API webhook (X-Hub-Signature-256)",
                        ("200", "WebhookAck"), 400, 401, 404, 413, 503, secure=False,
                        params=[_p("workspace")]),
        },
        "/webhooks/shopify/{workspace}": {"post": _op(
            "Shopify webhook (X-Shopify-Hmac-Sha256, X-Shopify-Topic)", ("200", "WebhookAck"),
            400, 401, 404, 413, 503, secure=False, params=[_p("workspace")])},
        "/{code}": {"get": {"summary": "The redirect", "security": [],
                            "parameters": [_p("code")], "responses": {
                                "302": {"description": "to the destination, with the click id"},
                                "404": {"description": "unknown code (HTML)"},
                                "410": {"description": "disabled or expired (HTML)"},
                                "503": {"description": "Redis unreachable, link not cached"}}}},
        "/px.gif": {"get": {"summary": "The pixel (w, e, cid, oid, v, cur, u)", "security": [],
                            "responses": {"200": {"description": "a 1x1 GIF"}}}},
        "/px.js": {"get": {"summary": "The shop-side script", "security": [],
                           "responses": {"200": {"description": "JavaScript"}}}},
        "/healthz": {"get": {"summary": "The process is alive", "security": [],
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Redis answers", "security": [],
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                             "responses": {"200": {"description": "text format 0.0.4"}}}},
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/docs": {"get": {"summary": "This document for people", "security": [],
                          "responses": {"200": {"description": "HTML"}}}},
        # The dashboard: HTML pages for people, signed in by a cookie (not the API).
        "/dashboard": {"get": _page("The campaign list, or the sign-in form",
                                    [WINDOW, *RANGE[:2], _q("sort", "a column, - for "
                                                                    "descending")])},
        "/dashboard/campaigns/{campaign}": {"get": _page(
            "A campaign: funnel, KPIs, time series, breakdowns, orders",
            [*CAMPAIGN, WINDOW, *RANGE[:2], _q("format", "csv: what the page shows")])},
        "/dashboard/compare": {"get": _page("Campaigns side by side", [
            _q("campaigns", "2 to 20 campaign ids (repeated or comma-separated)"), WINDOW,
            *RANGE[:2]])},
        "/dashboard/signin": {"post": {
            "summary": "Sign in with a read-only key (form field key); sets the cookie",
            "security": [], "requestBody": {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": obj({"key": STR}, ["key"])}}},
            "responses": {"303": {"description": "to /dashboard"},
                          "401": {"description": "HTML: the key is not valid"},
                          "403": {"description": "HTML: not a read-only key"}}}},
        "/dashboard/signout": {"post": {"summary": "Clear the cookie", "security": [],
                                        "responses": {"303": {"description": "to /dashboard"}}}},
        "/dashboard/static/{name}": {"get": {
            "summary": "The dashboard's stylesheet and script", "security": [],
            "parameters": [_p("name")], "responses": {"200": {"description": "CSS or JS"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracker", "version": __version__,
                 "description": "Link tracking, attribution and reports for WhatsApp "
                                "marketing. Errors are application/problem+json."},
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "dashboardCookie": {"type": "apiKey", "in": "cookie", "name": "trk_dashboard"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document())


async def docs(request: Request) -> Response:
    """The same document as a page: no CDN, no script."""
    doc = document()
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = ", ".join(op["responses"])
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>"
                        f"{html.escape(path)}</code></td><td>{html.escape(op['summary'])}</td>"
                        f"<td>{codes}</td></tr>")
    page = ("<!doctype html><html lang=en><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            "<title>tracker API</title><body style='font:15px/1.5 system-ui,sans-serif;"
            "max-width:60em;margin:2em auto;padding:0 1em'><h1>tracker API</h1>"
            "<p>Send <code>Authorization: Bearer &lt;key&gt;</code>. Errors are "
            "<code>application/problem+json</code>. The machine-readable document is at "
            "<a href='/openapi.json'>/openapi.json</a>.</p><table><thead><tr><th>method</th>"
            "<th>path</th><th>what</th><th>answers</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
    return HTMLResponse(page)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
