"""Events: what intake stores for the worker to join, and the generic events API.

Every source (WhatsApp and Shopify webhooks, the messages and events APIs,
the pixel) is turned into the same shape before it is stored, one stream
entry each:

    type  message | status | reply | opt_out | opt_in | order |
          order_cancelled | refund | pixel
    ws    workspace
    src   whatsapp | shopify | api | pixel
    key   idempotency key; a key seen before is acknowledged and not stored again
    ts    when it happened (unix ms; the source's time, not ours)
    rcv   when we received it (unix ms)
    d     the type's data as compact JSON

Pure: parsing and validation, with the hashing secret and time as arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .identity import email_hash, phone_hash
from .money import check_currency, fmt, parse_amount
from .validation import (
    MAX_ID_LENGTH,
    FieldError,
    Invalid,
    batch_items,
    check_id,
    each,
    parse_time,
)

TYPES = ("message", "status", "reply", "opt_out", "opt_in", "order", "order_cancelled",
         "refund", "pixel")
STATUSES = ("sent", "delivered", "read", "failed")
MAX_DISCOUNT_CODES = 20


@dataclass(frozen=True)
class Event:
    type: str
    ws: str
    src: str
    key: str
    ts: int
    data: Mapping[str, Any] = field(default_factory=dict)

    def fields(self, received_ms: int) -> dict[str, str]:
        return {
            "type": self.type,
            "ws": self.ws,
            "src": self.src,
            "key": self.key,
            "ts": str(self.ts),
            "rcv": str(received_ms),
            "d": json.dumps(self.data, separators=(",", ":"), ensure_ascii=False,
                            sort_keys=True),
        }

    @classmethod
    def from_fields(cls, f: Mapping[str, str]) -> Event:
        return cls(f["type"], f["ws"], f["src"], f.get("key", ""), int(f["ts"]),
                   json.loads(f.get("d") or "{}"))


# -- the generic events API ------------------------------------------------------------
def _str(item: Mapping[str, Any], name: str, prefix: str, *, required: bool = True,
         limit: int = MAX_ID_LENGTH) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise Invalid([FieldError(f"{prefix}{name}", "is required and must be a string")])
    if len(value) > limit:
        raise Invalid([FieldError(f"{prefix}{name}", f"must be at most {limit} characters")])
    return value


def _amount(item: Mapping[str, Any], prefix: str) -> tuple[str, str]:
    try:
        amount = fmt(parse_amount(item.get("amount")))  # type: ignore[arg-type]
    except ValueError as exc:
        raise Invalid([FieldError(f"{prefix}amount", str(exc))]) from None
    try:
        currency = check_currency(item.get("currency"))
    except ValueError as exc:
        raise Invalid([FieldError(f"{prefix}currency", str(exc))]) from None
    return amount, currency


def _who(item: Mapping[str, Any], prefix: str, secret: str) -> dict[str, Any]:
    """recipient, and phone/email as keyed hashes; at least one of them."""
    out: dict[str, Any] = {}
    recipient = item.get("recipient")
    if recipient is not None:
        out["recipient"] = check_id(recipient, f"{prefix}recipient")
    for kind, hasher in (("phone", phone_hash), ("email", email_hash)):
        raw = item.get(kind)
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise Invalid([FieldError(f"{prefix}{kind}", "must be a string")])
        hashed = hasher(secret, raw)
        if hashed is None:
            why = "must be E.164, e.g. +4917612345678" if kind == "phone" else "is not an email"
            raise Invalid([FieldError(f"{prefix}{kind}", why)])
        out[f"{kind}_hash"] = hashed
    return out


_COMMON = {"id", "type", "time"}
_ALLOWED = {
    "status": {"message_id", "status", "campaign", "recipient", "error"},
    "reply": {"message_id", "campaign", "recipient", "phone"},
    "opt_out": {"campaign", "recipient", "phone", "email", "message_id"},
    "opt_in": {"campaign", "recipient", "phone", "email"},
    "order": {"order_id", "amount", "currency", "click_id", "recipient", "phone", "email",
              "discount_codes", "test"},
    "order_cancelled": {"order_id"},
    "refund": {"order_id", "refund_id", "amount", "currency"},
}
API_TYPES = tuple(_ALLOWED)


def api_event(item: Any, ws: str, secret: str, *, index: int) -> Event:
    """One item of POST /api/v1/events, checked and normalised."""
    prefix = f"events[{index}]."
    if not isinstance(item, dict):
        raise Invalid([FieldError(f"events[{index}]", "must be a JSON object", index)])
    errors: list[FieldError] = []

    def attempt(fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Invalid as exc:
            errors.extend(FieldError(e.field, e.reason, index) for e in exc.errors)
            return None

    kind = item.get("type")
    if kind not in _ALLOWED:
        raise Invalid([FieldError(f"{prefix}type", f"one of {', '.join(API_TYPES)}", index)])
    key = attempt(_str, item, "id", prefix)
    ts = attempt(parse_time, item.get("time"), f"{prefix}time")
    for name in item:
        if name not in _COMMON and name not in _ALLOWED[kind]:
            errors.append(FieldError(f"{prefix}{name}", f"unknown field for type {kind}", index))
    data: dict[str, Any] = {}
    if kind == "status":
        data["message_id"] = attempt(_str, item, "message_id", prefix)
        status = item.get("status")
        if status not in STATUSES:
            errors.append(FieldError(f"{prefix}status", f"one of {', '.join(STATUSES)}", index))
        data["status"] = status
        for opt in ("campaign", "recipient", "error"):
            if item.get(opt) is not None:
                data[opt] = attempt(_str, item, opt, prefix)
    elif kind in ("reply", "opt_out", "opt_in"):
        data.update(attempt(_who, item, prefix, secret) or {})
        for opt in ("campaign", "message_id"):
            if item.get(opt) is not None:
                data[opt] = attempt(_str, item, opt, prefix)
        if not ({"recipient", "phone_hash", "email_hash", "message_id"} & set(data)):
            errors.append(FieldError(prefix + "recipient",
                                     "give recipient, phone, email or message_id", index))
    elif kind == "order":
        data["order_id"] = attempt(_str, item, "order_id", prefix)
        money = attempt(_amount, item, prefix)
        if money:
            data["total"], data["currency"] = money
        data.update(attempt(_who, item, prefix, secret) or {})
        if item.get("click_id") is not None:
            data["click_id"] = attempt(_str, item, "click_id", prefix, limit=64)
        codes = item.get("discount_codes", [])
        if (not isinstance(codes, list) or len(codes) > MAX_DISCOUNT_CODES
                or not all(isinstance(c, str) and 0 < len(c) <= 100 for c in codes)):
            errors.append(FieldError(f"{prefix}discount_codes",
                                     f"must be a list of at most {MAX_DISCOUNT_CODES} codes",
                                     index))
        else:
            data["discount_codes"] = codes
        test = item.get("test", False)
        if not isinstance(test, bool):
            errors.append(FieldError(f"{prefix}test", "must be true or false", index))
        data["test"] = test
    elif kind == "order_cancelled":
        data["order_id"] = attempt(_str, item, "order_id", prefix)
    elif kind == "refund":
        data["order_id"] = attempt(_str, item, "order_id", prefix)
        money = attempt(_amount, item, prefix)
        if money:
            data["amount"], data["currency"] = money
        data["refund_id"] = attempt(_str, item, "refund_id", prefix, required=False) or key
    if errors:
        raise Invalid(errors)
    return Event(kind, ws, "api", f"api:{key}", ts, data)


def api_events(body: Any, ws: str, secret: str, limit: int) -> list[Event]:
    """POST /api/v1/events: ``{"events": [...]}`` or a bare list. All or nothing."""
    return each(batch_items(body, "events", limit),
                lambda item, i: api_event(item, ws, secret, index=i))
