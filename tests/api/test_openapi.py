"""The OpenAPI document matches the routes, and real responses match its schemas."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from starlette.routing import Route
from starlette.testclient import TestClient

from tracker.openapi import document

# Served by the ASGI front, before Starlette's router (the hot path).
FRONT = {("/{code}", "get"), ("/px.gif", "get")}


def routes(client: TestClient) -> set[tuple[str, str]]:
    out = set(FRONT)
    starlette_app = client.app.app  # type: ignore[attr-defined]
    for route in starlette_app.routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {campaign:path} -> {campaign}
        for method in route.methods or ():
            if method != "HEAD":
                out.add((path, method.lower()))
    return out


def test_every_route_is_documented_and_nothing_else(client: TestClient) -> None:
    doc = document()
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert documented == routes(client)
    assert doc["openapi"] == "3.1.0"
    # every operation that can fail names problem+json
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for code, response in op["responses"].items():
                if code.startswith("4") and path.startswith("/api"):
                    assert "application/problem+json" in response["content"], (path, code)


def test_the_served_document_and_the_docs_page(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    assert served == document()
    jsonschema.Draft202012Validator.check_schema(
        {"$defs": served["components"]["schemas"]})
    page = client.get("/docs")
    assert page.status_code == 200 and "/api/v1/links/batch" in page.text


def check(doc: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """Validate a real response against the schema the document declares for it."""
    response = doc["paths"][path][method]["responses"][str(status)]
    media = "application/problem+json" if status >= 400 else "application/json"
    schema = response["content"][media]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]})


def test_real_responses_match_their_schemas(client: TestClient, auth: dict[str, str]) -> None:
    doc = document()
    link = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipient": "r1",
        "utm": {"content": "x"}})
    check(doc, "/api/v1/links", "post", 201, link.json())
    batch = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipients": ["a", "b"]})
    check(doc, "/api/v1/links/batch", "post", 201, batch.json())
    bad = client.post("/api/v1/links", headers=auth, json={"url": "ftp://x"})
    check(doc, "/api/v1/links", "post", 422, bad.json())
    code = link.json()["code"]
    check(doc, "/api/v1/links/{code}", "patch", 200,
          client.patch(f"/api/v1/links/{code}", headers=auth, json={"disabled": True}).json())
    check(doc, "/api/v1/links/{code}", "get", 404,
          client.get("/api/v1/links/abcdefgh", headers=auth).json())
    check(doc, "/api/v1/campaigns/{campaign}", "put", 200, client.put(
        "/api/v1/campaigns/bf", headers=auth,
        json={"name": "BF", "spend": "10", "currency": "EUR"}).json())
    check(doc, "/api/v1/campaigns", "get", 200, client.get("/api/v1/campaigns",
                                                          headers=auth).json())
    check(doc, "/api/v1/campaigns/{campaign}/report", "get", 200,
          client.get("/api/v1/campaigns/bf/report", headers=auth).json())
    check(doc, "/api/v1/campaigns/{campaign}/timeseries", "get", 200,
          client.get("/api/v1/campaigns/bf/timeseries", headers=auth).json())
    check(doc, "/api/v1/campaigns/{campaign}/breakdown", "get", 200,
          client.get("/api/v1/campaigns/bf/breakdown", headers=auth).json())
    check(doc, "/api/v1/campaigns/{campaign}/orders", "get", 200,
          client.get("/api/v1/campaigns/bf/orders", headers=auth).json())
    check(doc, "/api/v1/messages", "post", 202, client.post("/api/v1/messages", headers=auth,
          json=[{"message_id": "w1", "campaign": "bf", "recipient": "a"}]).json())
    check(doc, "/api/v1/events", "post", 202, client.post("/api/v1/events", headers=auth,
          json=[{"id": "e1", "type": "order_cancelled", "time": "2026-11-20T10:00:00Z",
                 "order_id": "1"}]).json())
    check(doc, "/api/v1/workspace", "get", 200,
          client.get("/api/v1/workspace", headers=auth).json())
    check(doc, "/api/v1/campaigns", "get", 401, client.get("/api/v1/campaigns").json())
