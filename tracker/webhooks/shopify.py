"""Shopify order webhooks -> our events. Pure.

Shopify retries a delivery up to 8 times over 4 hours with the original
payload, so deliveries are deduplicated by X-Shopify-Webhook-Id at the door;
the same order arriving through different topics or the pixel is made one
order by the worker, keyed by order id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..events import Event
from ..identity import email_hash, phone_hash
from ..money import fmt, parse_amount
from .whatsapp import PayloadError

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def _time(value: Any, path: str) -> int:
    if not isinstance(value, str):
        raise PayloadError(path, "must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(path, "must be an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(path, "must carry a UTC offset")
    return int(parsed.timestamp() * 1000)


def _money(value: Any, path: str) -> str:
    try:
        return fmt(parse_amount(str(value)))
    except ValueError:
        raise PayloadError(path, "must be a decimal amount") from None


def landing_params(landing_site: Any) -> dict[str, str]:
    """The query of landing_site (a path+query, or a full URL): first value of each key."""
    if not isinstance(landing_site, str) or "?" not in landing_site:
        return {}
    query = urlsplit(landing_site).query or landing_site.split("?", 1)[1]
    return {k: v[0] for k, v in parse_qs(query).items() if v}


def _identities(order: Mapping[str, Any], secret: str) -> dict[str, list[str]]:
    raw_customer = order.get("customer")
    customer: Mapping[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
    phones = [order.get("phone"), customer.get("phone")]
    for addr in ("billing_address", "shipping_address"):
        if isinstance(order.get(addr), dict):
            phones.append(order[addr].get("phone"))
    if isinstance(customer.get("default_address"), dict):
        phones.append(customer["default_address"].get("phone"))
    emails = [order.get("email"), order.get("contact_email"), customer.get("email")]
    out: dict[str, list[str]] = {}
    p = sorted({h for h in (phone_hash(secret, x) for x in phones if isinstance(x, str)) if h})
    e = sorted({h for h in (email_hash(secret, x) for x in emails if isinstance(x, str)) if h})
    if p:
        out["phone_hashes"] = p
    if e:
        out["email_hashes"] = e
    return out


def order_event(order: Mapping[str, Any], ws: str, secret: str, key: str,
                click_param: str) -> Event:
    order_id = order.get("id")
    if not isinstance(order_id, int | str) or isinstance(order_id, bool) or not str(order_id):
        raise PayloadError("id", "is required")
    ts = _time(order.get("processed_at") or order.get("created_at"), "created_at")
    currency = order.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise PayloadError("currency", "must be a currency code")
    data: dict[str, Any] = {
        "order_id": str(order_id),
        "total": _money(order.get("total_price"), "total_price"),
        "currency": currency,
        "test": bool(order.get("test")),
        "financial_status": str(order.get("financial_status") or ""),
    }
    if order.get("current_total_price") is not None:
        data["current_total"] = _money(order["current_total_price"], "current_total_price")
    price_set = order.get("total_price_set")
    if isinstance(price_set, dict) and isinstance(price_set.get("presentment_money"), dict):
        pm = price_set["presentment_money"]
        data["presentment_total"] = _money(pm.get("amount"), "total_price_set.presentment_money")
        data["presentment_currency"] = str(pm.get("currency_code") or "")
    params = landing_params(order.get("landing_site"))
    click_id = params.get(click_param)
    for attr in order.get("note_attributes") or []:
        # px.js writes the click id into the cart's attributes, which the order
        # carries as note_attributes: robust to the landing page being lost.
        if isinstance(attr, dict) and attr.get("name") == click_param and attr.get("value"):
            click_id = click_id or str(attr["value"])[:64]
    if click_id:
        data["click_id"] = click_id[:64]
    utm = {k: params[k][:200] for k in UTM_KEYS if k in params}
    if utm:
        data["utm"] = utm
    codes = [str(c.get("code"))[:100] for c in order.get("discount_codes") or []
             if isinstance(c, dict) and c.get("code")]
    if codes:
        data["discount_codes"] = codes
    if order.get("source_name"):
        data["source_name"] = str(order["source_name"])[:50]
    data.update(_identities(order, secret))
    return Event("order", ws, "shopify", key, ts, data)


def refund_event(refund: Mapping[str, Any], ws: str, key: str) -> Event:
    order_id = refund.get("order_id")
    if order_id is None or isinstance(order_id, bool):
        raise PayloadError("order_id", "is required")
    ts = _time(refund.get("created_at"), "created_at")
    total = Decimal(0)
    currency = ""
    for i, tx in enumerate(refund.get("transactions") or []):
        if not isinstance(tx, dict):
            continue
        if tx.get("kind") == "refund" and tx.get("status") == "success":
            total += parse_amount(_money(tx.get("amount"), f"transactions[{i}].amount"))
            currency = currency or str(tx.get("currency") or "")
    return Event("refund", ws, "shopify", key, ts, {
        "order_id": str(order_id),
        "refund_id": str(refund.get("id") or key),
        "amount": fmt(total),
        "currency": currency,
    })


def parse_shopify(topic: str, payload: Any, ws: str, secret: str, key: str,
                  click_param: str, order_topic: str) -> Event | None:
    """The event of one delivery, or None for a topic we acknowledge and ignore."""
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object")
    if topic == order_topic:
        return order_event(payload, ws, secret, key, click_param)
    if topic == "orders/cancelled":
        order_id = payload.get("id")
        if order_id is None:
            raise PayloadError("id", "is required")
        ts = _time(payload.get("cancelled_at") or payload.get("updated_at"), "cancelled_at")
        return Event("order_cancelled", ws, "shopify", key, ts, {"order_id": str(order_id)})
    if topic == "refunds/create":
        return refund_event(payload, ws, key)
    return None
