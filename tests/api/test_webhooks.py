"""WhatsApp and Shopify webhooks over ASGI: real payloads, real signatures, real Redis."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import snapshot
from tracker.events import Event
from tracker.keys import Keys
from tracker.webhooks.signatures import meta_signature, shopify_signature

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
APP_SECRET = "meta-app-secret-7c1f"
VERIFY_TOKEN = "verify-me-4411"
SHOP_SECRET = "shopify-client-secret-93ab"


@pytest.fixture
def configured(client: TestClient, auth: dict[str, str]) -> TestClient:
    res = client.patch("/api/v1/workspace", headers=auth, json={
        "whatsapp_app_secret": APP_SECRET, "whatsapp_verify_token": VERIFY_TOKEN,
        "shopify_secret": SHOP_SECRET})
    assert res.status_code == 200
    return client


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def events(r: redis.Redis, prefix: str) -> list[Event]:
    return [Event.from_fields(f) for _, f in r.xrange(Keys(prefix).event_stream(0))]


def post_wa(client: TestClient, body: bytes, signature: str | None = "auto",
            ws: str = "acme") -> Any:
    headers = {"content-type": "application/json"}
    if signature == "auto":
        headers["x-hub-signature-256"] = meta_signature(APP_SECRET, body)
    elif signature is not None:
        headers["x-hub-signature-256"] = signature
    return client.post(f"/webhooks/whatsapp/{ws}", content=body, headers=headers)


# -- WhatsApp -------------------------------------------------------------------------------
def test_verification_handshake(configured: TestClient) -> None:
    ok = configured.get("/webhooks/whatsapp/acme", params={
        "hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN})
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in ({"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"},
                   {"hub.mode": "unsubscribe", "hub.challenge": "1",
                    "hub.verify_token": VERIFY_TOKEN},
                   {"hub.challenge": "1"}):
        assert configured.get("/webhooks/whatsapp/acme", params=params).status_code == 403
    assert configured.get("/webhooks/whatsapp/nobody", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}).status_code == 404


def test_statuses_replies_and_opt_outs_are_stored(
    configured: TestClient, r: redis.Redis, prefix: str
) -> None:
    for name in ("status_sent.json", "status_read.json", "status_failed.json",
                 "inbound_text.json", "inbound_stop_button.json", "user_preferences.json",
                 "template_update.json"):
        res = post_wa(configured, raw(f"whatsapp/{name}"))
        assert res.status_code == 200, (name, res.text)
    got = events(r, prefix)
    assert [e.type for e in got] == ["status", "status", "status", "reply", "reply", "opt_out",
                                     "reply", "opt_out", "opt_out", "opt_in"]
    assert all(e.ws == "acme" and e.src == "whatsapp" for e in got)
    # no phone number is stored anywhere, only keyed hashes
    dump = json.dumps(snapshot(r, prefix))
    for phone in ("16505551234", "4917612345678"):
        assert phone not in dump


def test_duplicates_and_out_of_order_statuses(
    configured: TestClient, r: redis.Redis, prefix: str
) -> None:
    read, sent = raw("whatsapp/status_read.json"), raw("whatsapp/status_sent.json")
    # read arrives first, then sent, then both again (Meta retries for days)
    replies = [post_wa(configured, body).json() for body in (read, sent, read, sent, read)]
    assert [x["stored"] for x in replies] == [1, 1, 0, 0, 0]
    assert [x["duplicates"] for x in replies] == [0, 0, 1, 1, 1]
    got = events(r, prefix)
    assert [(e.data["status"], e.ts) for e in got] == [("read", 1750030391000),
                                                       ("sent", 1750030073000)]


@pytest.mark.parametrize(
    ("signature", "status"),
    [(None, 401), ("", 401), ("sha256=" + "0" * 64, 401), ("md5=abc", 401),
     ("sha256=" + meta_signature("another-secret", b"x")[7:], 401)],
)
def test_a_bad_signature_stores_nothing(configured: TestClient, r: redis.Redis, prefix: str,
                                        signature: str | None, status: int) -> None:
    before = snapshot(r, prefix)
    res = post_wa(configured, raw("whatsapp/status_sent.json"), signature)
    assert res.status_code == status
    assert res.headers["content-type"] == "application/problem+json"
    assert snapshot(r, prefix) == before


def test_signature_is_over_the_raw_bytes(configured: TestClient, r: redis.Redis,
                                         prefix: str) -> None:
    body = raw("whatsapp/status_sent.json")
    signature = meta_signature(APP_SECRET, body)
    # the same JSON, re-serialised: a different body, so a different signature
    reformatted = json.dumps(json.loads(body), indent=2).encode()
    before = snapshot(r, prefix)
    assert post_wa(configured, reformatted, signature).status_code == 401
    assert snapshot(r, prefix) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [(b'{"object": "whatsapp_business_account", "entry": [', 400),  # truncated, signed
     (b"", 400),
     (b'{"object": "page", "entry": []}', 400),
     (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", '
      b'"value": {"statuses": [{"id": "w", "status": "read"}]}}]}]}', 400)],
)
def test_malformed_signed_payloads_are_400_and_store_nothing(
    configured: TestClient, r: redis.Redis, prefix: str, body: bytes, status: int
) -> None:
    before = snapshot(r, prefix)
    res = post_wa(configured, body)
    assert res.status_code == status
    assert snapshot(r, prefix) == before


def test_a_3_mb_batch_is_accepted_and_a_bigger_one_refused(
    configured: TestClient, r: redis.Redis, prefix: str
) -> None:
    doc = json.loads(raw("whatsapp/status_sent.json"))
    template = doc["entry"][0]["changes"][0]
    changes = []
    for i in range(5600):
        c = json.loads(json.dumps(template))
        c["value"]["statuses"][0]["id"] = f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDE{i:08d}="
        changes.append(c)
    doc["entry"][0]["changes"] = changes
    body = json.dumps(doc).encode()
    assert 3_000_000 <= len(body) <= 3 * 1024 * 1024
    res = post_wa(configured, body)
    assert res.status_code == 200 and res.json()["stored"] == 5600
    assert r.xlen(Keys(prefix).event_stream(0)) == 5600
    before = snapshot(r, prefix)
    bigger = body[:-2] + b" " * (3 * 1024 * 1024 - len(body) + 10) + body[-2:]
    assert post_wa(configured, bigger).status_code == 413
    assert snapshot(r, prefix) == before


def test_unknown_or_unconfigured_workspaces(client: TestClient, configured: TestClient,
                                            r: redis.Redis, prefix: str) -> None:
    from tests.conftest import create_workspace
    from tracker.settings import Settings

    assert post_wa(configured, raw("whatsapp/status_sent.json"), ws="nobody").status_code == 404
    settings: Settings = configured.app.app.state.settings  # type: ignore[attr-defined]
    create_workspace(settings, "bare")  # no secrets set
    before = snapshot(r, prefix)
    assert post_wa(configured, raw("whatsapp/status_sent.json"), ws="bare").status_code == 401
    assert snapshot(r, prefix) == before


# -- Shopify --------------------------------------------------------------------------------
def post_shop(client: TestClient, name: str, topic: str, webhook_id: str | None = "auto",
              signature: str | None = "auto", body: bytes | None = None) -> Any:
    body = raw(f"shopify/{name}") if body is None else body
    headers = {"content-type": "application/json", "x-shopify-topic": topic,
               "x-shopify-shop-domain": "acme.myshopify.com", "x-shopify-api-version": "2026-10",
               "x-shopify-triggered-at": "2026-11-20T13:03:13.123Z"}
    if webhook_id == "auto":
        # one delivery id per (payload, topic), as Shopify gives each delivery its own
        headers["x-shopify-webhook-id"] = f"b54557e4-{zlib.crc32(f'{name}{topic}'.encode()):010d}"
    elif webhook_id is not None:
        headers["x-shopify-webhook-id"] = webhook_id
    if signature == "auto":
        headers["x-shopify-hmac-sha256"] = shopify_signature(SHOP_SECRET, body)
    elif signature is not None:
        headers["x-shopify-hmac-sha256"] = signature
    return client.post("/webhooks/shopify/acme", content=body, headers=headers)


def test_orders_cancellations_and_refunds(configured: TestClient, r: redis.Redis,
                                          prefix: str) -> None:
    assert post_shop(configured, "orders_create.json", "orders/create").status_code == 200
    assert post_shop(configured, "orders_cancelled.json", "orders/cancelled").status_code == 200
    assert post_shop(configured, "refunds_create.json", "refunds/create").status_code == 200
    ignored = post_shop(configured, "orders_create.json", "orders/updated")
    assert ignored.status_code == 200 and ignored.json()["ignored"] == "orders/updated"
    got = events(r, prefix)
    assert [e.type for e in got] == ["order", "order_cancelled", "refund"]
    assert got[0].data["click_id"] == "Qx7-abc_DEF1" and got[0].data["total"] == "89.90"
    assert got[2].data["amount"] == "40.00"
    assert "jon.snow" not in json.dumps(snapshot(r, prefix)).lower()


def test_a_redelivery_is_stored_once(configured: TestClient, r: redis.Redis,
                                     prefix: str) -> None:
    for _ in range(3):
        res = post_shop(configured, "orders_create.json", "orders/create", webhook_id="wh-1")
        assert res.status_code == 200
    assert [e.type for e in events(r, prefix)] == ["order"]
    # a new delivery of the same order (new webhook id) is stored; the worker
    # makes it one order by its id
    post_shop(configured, "orders_create.json", "orders/create", webhook_id="wh-2")
    assert len(events(r, prefix)) == 2


@pytest.mark.parametrize(
    ("signature", "topic"),
    [(None, "orders/create"), ("AAAA", "orders/create"),
     (shopify_signature("wrong-secret", b"{}"), "orders/create")],
)
def test_shopify_bad_signature_stores_nothing(configured: TestClient, r: redis.Redis,
                                              prefix: str, signature: str | None,
                                              topic: str) -> None:
    before = snapshot(r, prefix)
    res = post_shop(configured, "orders_create.json", topic, signature=signature)
    assert res.status_code == 401
    assert snapshot(r, prefix) == before


def test_shopify_malformed(configured: TestClient, r: redis.Redis, prefix: str) -> None:
    before = snapshot(r, prefix)
    truncated = raw("shopify/orders_create.json")[:200]
    assert post_shop(configured, "x", "orders/create", body=truncated).status_code == 400
    assert post_shop(configured, "x", "orders/create", body=b'{"id": 1}').status_code == 400
    res = post_shop(configured, "orders_create.json", "")
    assert res.status_code == 400 and res.json()["errors"][0]["field"] == "X-Shopify-Topic"
    assert snapshot(r, prefix) == before


def test_an_old_shopify_delivery_is_acknowledged_but_flagged(
    configured: TestClient, r: redis.Redis, prefix: str
) -> None:
    body = raw("shopify/orders_create.json")
    for triggered, wid in (("2020-01-01T00:00:00.000Z", "wh-old"),
                           ("2099-01-01T00:00:00.000Z", "wh-new")):
        res = configured.post("/webhooks/shopify/acme", content=body, headers={
            "x-shopify-topic": "orders/create", "x-shopify-webhook-id": wid,
            "x-shopify-triggered-at": triggered,
            "x-shopify-hmac-sha256": shopify_signature(SHOP_SECRET, body)})
        assert res.status_code == 200  # acknowledged: Shopify must not retry it
    old, new = events(r, prefix)
    assert old.data.get("stale") is True and "stale" not in new.data
