"""Meta's and Shopify's payloads (fixture files in their published formats) -> events."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.identity import email_hash, phone_hash
from tracker.webhooks.shopify import landing_params, parse_shopify
from tracker.webhooks.whatsapp import PayloadError, parse_callback_data, parse_whatsapp
from tracker.workspaces import DEFAULT_STOP_KEYWORDS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SECRET = "hash-secret"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def wa(name: str) -> list[Any]:
    return parse_whatsapp(load(f"whatsapp/{name}"), "acme", SECRET, DEFAULT_STOP_KEYWORDS)


def test_status_sent() -> None:
    [e] = wa("status_sent.json")
    assert (e.type, e.src, e.ts) == ("status", "whatsapp", 1750030073000)
    assert e.key == "wa:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=:sent"
    assert e.data["status"] == "sent"
    assert e.data["phone_hash"] == phone_hash(SECRET, "+16505551234")
    assert e.data["category"] == "marketing" and e.data["billable"] is True
    assert "16505551234" not in json.dumps(e.data)


def test_status_read_carries_callback_data() -> None:
    [e] = wa("status_read.json")
    assert e.data["status"] == "read"
    assert (e.data["campaign"], e.data["recipient"]) == ("bf24", "cust-1")


def test_failed_status_keeps_its_errors() -> None:
    [e] = wa("status_failed.json")
    assert e.data["status"] == "failed"
    assert e.data["errors"][0]["code"] == 131050
    assert (e.data["campaign"], e.data["recipient"]) == ("bf24", "cust-9")  # JSON form


def test_inbound_reply() -> None:
    [e] = wa("inbound_text.json")
    assert (e.type, e.ts) == ("reply", 1749416383000)
    assert e.data["kind"] == "text" and "body" not in e.data  # the text is not kept
    assert e.data["phone_hash"] == phone_hash(SECRET, "+16505551234")


def test_stop_button_and_keyword_are_opt_outs_and_reactions_not_replies() -> None:
    events = wa("inbound_stop_button.json")
    assert [e.type for e in events] == ["reply", "opt_out", "reply", "opt_out"]
    assert events[0].data["context_id"].startswith("wamid.")
    assert events[1].data["via"] == "keyword"
    assert len({e.key for e in events}) == 4


def test_user_preferences() -> None:
    stop, resume = wa("user_preferences.json")
    assert (stop.type, resume.type) == ("opt_out", "opt_in")
    assert stop.data == {"phone_hash": phone_hash(SECRET, "+16505551234"),
                         "via": "user_preferences"}
    assert stop.ts == 1731705721000


def test_other_fields_are_ignored() -> None:
    assert wa("template_update.json") == []


def test_a_batch_of_many_changes() -> None:
    doc = load("whatsapp/status_sent.json")
    change = doc["entry"][0]["changes"][0]
    changes = []
    for i in range(50):
        c = json.loads(json.dumps(change))
        c["value"]["statuses"][0]["id"] = f"wamid.{i}"
        changes.append(c)
    doc["entry"][0]["changes"] = changes
    doc["entry"].append(load("whatsapp/inbound_text.json")["entry"][0])
    events = parse_whatsapp(doc, "acme", SECRET, DEFAULT_STOP_KEYWORDS)
    assert len(events) == 51 and events[-1].type == "reply"


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ([], "body"),
        ({"object": "page", "entry": []}, "object"),
        ({"object": "whatsapp_business_account", "entry": {}}, "entry"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]},
         "entry[0].changes[0].value"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
          "value": {"statuses": [{"id": "w", "status": "read", "timestamp": "soon"}]}}]}]},
         "entry[0].changes[0].value.statuses[0].timestamp"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
          "value": {"statuses": [{"status": "read", "timestamp": "1"}]}}]}]},
         "entry[0].changes[0].value.statuses[0].id"),
    ],
)
def test_malformed_envelopes_name_the_path(doc: Any, path: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_whatsapp(doc, "acme", SECRET, DEFAULT_STOP_KEYWORDS)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("campaign=bf24&recipient=cust-1", {"campaign": "bf24", "recipient": "cust-1"}),
     ("campaign=a%26b", {"campaign": "a&b"}),
     ('{"campaign": "x", "recipient": "y", "other": 1}', {"campaign": "x", "recipient": "y"}),
     ("opaque-token-123", {}), ("", {}), ("{broken", {})],
)
def test_callback_data_formats(text: str, expected: dict[str, str]) -> None:
    assert parse_callback_data(text) == expected


# -- Shopify --------------------------------------------------------------------------------
def shop(name: str, topic: str, order_topic: str = "orders/create") -> Any:
    return parse_shopify(topic, load(f"shopify/{name}"), "acme", SECRET, "shopify:wh-1",
                         "trk_id", order_topic)


def test_order_keeps_what_attribution_needs() -> None:
    e = shop("orders_create.json", "orders/create")
    assert (e.type, e.key) == ("order", "shopify:wh-1")
    assert e.ts == 1795179792000  # processed_at 2026-11-20T14:03:12+01:00
    d = e.data
    assert (d["order_id"], d["total"], d["currency"]) == ("820982911946154508", "89.90", "EUR")
    assert d["click_id"] == "Qx7-abc_DEF1"
    assert d["utm"] == {"utm_source": "whatsapp", "utm_medium": "message",
                        "utm_campaign": "bf24", "utm_content": "hero"}
    assert d["discount_codes"] == ["BF24-WA"]
    assert d["phone_hashes"] == [phone_hash(SECRET, "+4917612345678")]  # one person, two forms
    assert d["email_hashes"] == [email_hash(SECRET, "jon.snow@example.com")]
    assert d["test"] is False and d["financial_status"] == "paid"
    assert "jon" not in json.dumps(d).lower() and "4917612345678" not in json.dumps(d)


def test_click_id_from_cart_attributes_and_presentment_money() -> None:
    d = shop("orders_create_cart_attribute.json", "orders/create").data
    assert d["click_id"] == "Zk3mN0pQ-r_9"
    assert (d["total"], d["currency"]) == ("120.00", "USD")
    assert (d["presentment_total"], d["presentment_currency"]) == ("163.20", "CAD")
    assert d["test"] is True and "phone_hashes" not in d


def test_which_order_topic_counts_is_configurable() -> None:
    assert shop("orders_create.json", "orders/paid") is None
    assert shop("orders_create.json", "orders/paid", order_topic="orders/paid").type == "order"
    assert shop("orders_create.json", "orders/create", order_topic="orders/paid") is None
    assert shop("orders_create.json", "products/update") is None


def test_cancel_and_refund() -> None:
    c = shop("orders_cancelled.json", "orders/cancelled")
    assert (c.type, c.data) == ("order_cancelled", {"order_id": "820982911946154508"})
    r = shop("refunds_create.json", "refunds/create")
    assert r.type == "refund"
    # only successful refund transactions count
    assert r.data == {"order_id": "820982911946154508", "refund_id": "929361462",
                      "amount": "40.00", "currency": "EUR"}


@pytest.mark.parametrize(
    ("landing", "expected"),
    [("/p?trk_id=abc&utm_source=wa", {"trk_id": "abc", "utm_source": "wa"}),
     ("https://shop.example/p?trk_id=x", {"trk_id": "x"}), ("/", {}), (None, {})],
)
def test_landing_params(landing: Any, expected: dict[str, str]) -> None:
    assert landing_params(landing) == expected


def test_bad_orders_name_the_field() -> None:
    for doc, path in [([], "body"), ({"currency": "EUR"}, "id"),
                      ({"id": 1, "created_at": "yesterday", "currency": "EUR"}, "created_at"),
                      ({"id": 1, "created_at": "2026-01-01T00:00:00Z", "currency": "EUR",
                        "total_price": "lots"}, "total_price")]:
        with pytest.raises(PayloadError) as info:
            parse_shopify("orders/create", doc, "acme", SECRET, "k", "trk_id", "orders/create")
        assert info.value.path == path


# -- fuzzing the parsers: anything JSON can hold is a PayloadError or events --------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["object", "entry", "changes", "value", "field", "statuses",
                         "messages", "id", "status", "timestamp", "user_preferences",
                         "category", "type", "text", "body", "total_price", "currency",
                         "created_at", "transactions", "order_id", "amount", "kind"]),
        inner, max_size=6),
    max_leaves=30)


@given(doc=_json)
def test_whatsapp_parser_never_fails_otherwise(doc: Any) -> None:
    envelope = {"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "messages", "value": doc}]}]}
    for candidate in (doc, envelope):
        with contextlib.suppress(PayloadError):
            parse_whatsapp(candidate, "acme", SECRET, DEFAULT_STOP_KEYWORDS)


@given(doc=_json, topic=st.sampled_from(["orders/create", "orders/cancelled", "refunds/create",
                                         "products/update"]))
def test_shopify_parser_never_fails_otherwise(doc: Any, topic: str) -> None:
    with contextlib.suppress(PayloadError):
        parse_shopify(topic, doc, "acme", SECRET, "k", "trk_id", "orders/create")
