"""Campaigns, the send log (messages), generic events and workspace settings over the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import snapshot
from tracker.events import Event
from tracker.identity import email_hash, phone_hash
from tracker.keys import Keys


def events(r: redis.Redis, prefix: str) -> list[Event]:
    return [Event.from_fields(f) for _, f in r.xrange(Keys(prefix).event_stream(0))]


def hash_secret(r: redis.Redis, prefix: str) -> str:
    return str(r.hget(Keys(prefix).workspace("acme"), "hs"))


# -- workspace settings ---------------------------------------------------------------------
def test_workspace_settings_never_return_secrets(client: TestClient, auth: dict[str, str]) -> None:
    res = client.patch("/api/v1/workspace", headers=auth, json={
        "whatsapp_app_secret": "appsecret-XYZ", "shopify_secret": "shopsecret-XYZ",
        "attribution_window": "24h", "currency": "EUR"})
    assert res.status_code == 200
    for doc in (res.json(), client.get("/api/v1/workspace", headers=auth).json()):
        assert "XYZ" not in json.dumps(doc)
        assert doc["whatsapp_app_secret_set"] is True and doc["whatsapp_verify_token_set"] is False
        assert doc["attribution_window"] == "24h" and doc["currency"] == "EUR"
    bad = client.patch("/api/v1/workspace", headers=auth, json={"currency": "euro", "x": 1})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"currency", "x"}


# -- campaigns --------------------------------------------------------------------------------
def test_campaigns(client: TestClient, auth: dict[str, str]) -> None:
    res = client.put("/api/v1/campaigns/bf24", headers=auth, json={
        "name": "Black Friday", "spend": "250.00", "currency": "EUR",
        "sent_at": "2026-11-27T09:00:00+01:00"})
    assert res.status_code == 200
    assert res.json() == {"campaign": "bf24", "name": "Black Friday", "spend": "250.00",
                          "currency": "EUR", "sent_at": "2026-11-27T08:00:00.000Z"}
    # spend can be updated later
    client.put("/api/v1/campaigns/bf24", headers=auth, json={"name": "Black Friday",
                                                             "spend": "310.5", "currency": "EUR"})
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "cm25"})
    listed = client.get("/api/v1/campaigns", headers=auth).json()["campaigns"]
    assert [c["campaign"] for c in listed] == ["bf24", "cm25"]
    assert listed[0]["spend"] == "310.50"


@pytest.mark.parametrize(
    ("body", "fields"),
    [({"spend": 250.0, "currency": "EUR"}, ["spend"]),  # floats are not money
     ({"spend": "250", "currency": "Euro"}, ["currency"]),
     ({"spend": "-5", "currency": "EUR"}, ["spend"]),
     ({"spend": "5"}, ["currency"]),
     ({"name": 5, "sent_at": "monday"}, ["name", "sent_at"]),
     ({"budget": "5"}, ["budget"])],
)
def test_bad_campaigns(client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
                       body: dict[str, Any], fields: list[str]) -> None:
    before = snapshot(r, prefix)
    res = client.put("/api/v1/campaigns/bf24", headers=auth, json=body)
    assert res.status_code == 422
    assert sorted(e["field"] for e in res.json()["errors"]) == sorted(fields)
    assert snapshot(r, prefix) == before


# -- messages ---------------------------------------------------------------------------------
def test_register_messages(client: TestClient, auth: dict[str, str], r: redis.Redis,
                           prefix: str) -> None:
    msgs = [{"message_id": f"wamid.{i}", "campaign": "bf24", "recipient": f"cust-{i}",
             "sent_at": "2026-11-27T09:00:00Z", "phone": f"+49176000000{i}"} for i in range(5)]
    res = client.post("/api/v1/messages", headers=auth, json={"messages": msgs})
    assert res.status_code == 202
    assert res.json() == {"accepted": 5, "stored": 5, "duplicates": 0}
    again = client.post("/api/v1/messages", headers=auth, json=msgs[:2])
    assert again.json() == {"accepted": 2, "stored": 0, "duplicates": 2}
    got = events(r, prefix)
    assert [e.type for e in got] == ["message"] * 5
    assert got[0].data == {"message_id": "wamid.0", "campaign": "bf24", "recipient": "cust-0",
                           "phone_hash": phone_hash(hash_secret(r, prefix), "+491760000000")}
    assert got[0].ts == 1795770000000
    keys = Keys(prefix)
    assert r.hget(keys.message_index("acme"), "wamid.3") == "bf24\x1fcust-3\x1f"
    ident = phone_hash(hash_secret(r, prefix), "+491760000003")
    assert ident is not None and r.hget(keys.identities("acme"), ident) == "cust-3"
    assert "+49176" not in json.dumps(snapshot(r, prefix))


def test_bad_messages_write_nothing(client: TestClient, auth: dict[str, str], r: redis.Redis,
                                    prefix: str) -> None:
    good = {"message_id": "wamid.1", "campaign": "bf24", "recipient": "c1"}
    before = snapshot(r, prefix)
    res = client.post("/api/v1/messages", headers=auth, json={"messages": [
        good, {**good, "message_id": ""}, {**good, "phone": "0176 123"},
        {**good, "sent_at": "yesterday"}, {"campaign": "x"}]})
    assert res.status_code == 422
    assert [(e["index"], e["field"]) for e in res.json()["errors"]] == [
        (1, "messages[1].message_id"), (2, "messages[2].phone"), (3, "messages[3].sent_at"),
        (4, "messages[4].message_id"), (4, "messages[4].recipient")]
    over = client.post("/api/v1/messages", headers=auth, json=[good] * 10_001)
    assert over.status_code == 422
    assert snapshot(r, prefix) == before


# -- generic events ---------------------------------------------------------------------------
GOOD_EVENTS = [
    {"id": "e1", "type": "status", "time": "2026-11-27T09:01:00Z", "message_id": "wamid.1",
     "status": "delivered"},
    {"id": "e2", "type": "reply", "time": "2026-11-27T09:05:00Z", "phone": "+4917612345678"},
    {"id": "e3", "type": "opt_out", "time": "2026-11-27T09:06:00Z", "recipient": "cust-1",
     "campaign": "bf24"},
    {"id": "e4", "type": "order", "time": "2026-11-27T10:00:00Z", "order_id": "1042",
     "amount": "89.90", "currency": "EUR", "click_id": "Qx7-abc", "email": "Jon@Example.com",
     "discount_codes": ["BF24"]},
    {"id": "e5", "type": "refund", "time": "2026-11-28T10:00:00Z", "order_id": "1042",
     "amount": "10", "currency": "EUR"},
    {"id": "e6", "type": "order_cancelled", "time": "2026-11-29T10:00:00Z", "order_id": "1043"},
    {"id": "e7", "type": "opt_in", "time": "2026-11-30T10:00:00Z", "phone": "+4917612345678"},
]


def test_generic_events(client: TestClient, auth: dict[str, str], r: redis.Redis,
                        prefix: str) -> None:
    res = client.post("/api/v1/events", headers=auth, json={"events": GOOD_EVENTS})
    assert res.status_code == 202
    assert res.json() == {"accepted": 7, "stored": 7, "duplicates": 0, "duplicate_ids": []}
    again = client.post("/api/v1/events", headers=auth, json=GOOD_EVENTS[3:5])
    assert again.json()["duplicate_ids"] == ["e4", "e5"]
    got = events(r, prefix)
    assert [e.type for e in got] == ["status", "reply", "opt_out", "order", "refund",
                                     "order_cancelled", "opt_in"]
    order = got[3].data
    assert (order["total"], order["currency"], order["click_id"]) == ("89.90", "EUR", "Qx7-abc")
    assert order["email_hash"] == email_hash(hash_secret(r, prefix), "jon@example.com")
    assert got[4].data["amount"] == "10.00"
    assert "jon@example.com" not in json.dumps(snapshot(r, prefix)).lower()


@pytest.mark.parametrize(
    ("event", "field"),
    [({**GOOD_EVENTS[0], "status": "seen"}, "events[0].status"),
     ({**GOOD_EVENTS[0], "type": "click"}, "events[0].type"),
     ({**GOOD_EVENTS[0], "time": "2026-11-27"}, "events[0].time"),
     ({**GOOD_EVENTS[0], "id": ""}, "events[0].id"),
     ({**GOOD_EVENTS[3], "amount": 89.9}, "events[0].amount"),
     ({**GOOD_EVENTS[3], "currency": "eur"}, "events[0].currency"),
     ({**GOOD_EVENTS[3], "test": "no"}, "events[0].test"),
     ({**GOOD_EVENTS[3], "discount_codes": "BF24"}, "events[0].discount_codes"),
     ({**GOOD_EVENTS[1], "phone": "12"}, "events[0].phone"),
     ({"id": "x", "type": "reply", "time": "2026-11-27T09:05:00Z"}, "events[0].recipient"),
     ({**GOOD_EVENTS[4], "colour": "red"}, "events[0].colour")],
)
def test_bad_events_name_the_field_and_write_nothing(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    event: dict[str, Any], field: str,
) -> None:
    before = snapshot(r, prefix)
    res = client.post("/api/v1/events", headers=auth, json=[event])
    assert res.status_code == 422
    assert field in [e["field"] for e in res.json()["errors"]]
    assert snapshot(r, prefix) == before


def test_a_batch_with_one_bad_event_writes_nothing(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str
) -> None:
    before = snapshot(r, prefix)
    res = client.post("/api/v1/events", headers=auth,
                      json=[*GOOD_EVENTS, {**GOOD_EVENTS[0], "id": "e9", "status": "seen"}])
    assert res.status_code == 422 and res.json()["errors"][0]["index"] == 7
    assert snapshot(r, prefix) == before


# -- links with phone or email ------------------------------------------------------------------
def test_links_keep_only_hashes_of_phone_and_email(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str
) -> None:
    res = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf24", "recipient": "cust-1",
        "phone": "+49 176 1234 5678", "email": "Jon@Example.com"})
    assert res.status_code == 201
    secret = hash_secret(r, prefix)
    keys = Keys(prefix)
    for ident in (phone_hash(secret, "+4917612345678"), email_hash(secret, "jon@example.com")):
        assert ident is not None and r.hget(keys.identities("acme"), ident) == "cust-1"
    dump = json.dumps(snapshot(r, prefix)).lower()
    assert "4917612345678" not in dump and "jon@example.com" not in dump
    bad = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf24", "phone": "+4917612345678"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "phone"
