"""Registering sent messages and campaigns. Pure: validation, hashing secret as argument.

A WhatsApp status webhook carries only the message's wamid (and maybe a
phone): the campaign tool registers each sent message here so statuses can
be tied to a campaign and a recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .events import Event
from .identity import phone_hash
from .money import check_currency, fmt, parse_amount
from .validation import FieldError, Invalid, batch_items, check_id, each, parse_time

MAX_WAMID = 256
_MESSAGE_FIELDS = {"message_id", "campaign", "recipient", "sent_at", "phone"}


@dataclass(frozen=True)
class Registration:
    message_id: str
    campaign: str
    recipient: str
    sent_at: int | None
    phone_hash: str | None

    def event(self, ws: str, now: int) -> Event:
        data: dict[str, Any] = {"message_id": self.message_id, "campaign": self.campaign,
                                "recipient": self.recipient}
        if self.phone_hash:
            data["phone_hash"] = self.phone_hash
        return Event("message", ws, "api", f"msg:{self.message_id}",
                     self.sent_at if self.sent_at is not None else now, data)


def registration(item: Any, secret: str, index: int) -> Registration:
    prefix = f"messages[{index}]."
    if not isinstance(item, dict):
        raise Invalid([FieldError(f"messages[{index}]", "must be a JSON object", index)])
    errors: list[FieldError] = []
    for key in item:
        if key not in _MESSAGE_FIELDS:
            errors.append(FieldError(prefix + key, "unknown field", index))

    def attempt(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Invalid as exc:
            errors.extend(FieldError(e.field, e.reason, index) for e in exc.errors)
            return None

    message_id = item.get("message_id")
    if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > MAX_WAMID:
        errors.append(FieldError(prefix + "message_id",
                                 f"is required: the WhatsApp wamid (at most {MAX_WAMID} chars)",
                                 index))
    campaign = attempt(check_id, item.get("campaign"), prefix + "campaign")
    recipient = attempt(check_id, item.get("recipient"), prefix + "recipient")
    sent_at = None
    if item.get("sent_at") is not None:
        sent_at = attempt(parse_time, item["sent_at"], prefix + "sent_at")
    hashed = None
    if item.get("phone") is not None:
        raw = item["phone"]
        hashed = phone_hash(secret, raw) if isinstance(raw, str) else None
        if hashed is None:
            errors.append(FieldError(prefix + "phone", "must be E.164, e.g. +4917612345678",
                                     index))
    if errors:
        raise Invalid(errors)
    assert isinstance(message_id, str)
    return Registration(message_id, campaign, recipient, sent_at, hashed)


def registrations(body: Any, secret: str, limit: int) -> list[Registration]:
    """POST /api/v1/messages: ``{"messages": [...]}`` or a bare list. All or nothing."""
    return each(batch_items(body, "messages", limit),
                lambda item, i: registration(item, secret, i))


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    spend: str
    currency: str
    sent_at: int | None


def campaign_spec(body: Any) -> CampaignSpec:
    """PUT /api/v1/campaigns/{campaign}: name, spend (decimal string), currency, sent_at."""
    if not isinstance(body, dict):
        raise Invalid([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    for key in body:
        if key not in ("name", "spend", "currency", "sent_at"):
            errors.append(FieldError(key, "unknown field"))
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        errors.append(FieldError("name", "must be a string of at most 200 characters"))
    spend = currency = ""
    try:
        spend = fmt(parse_amount(body.get("spend", "0")))
    except ValueError as exc:
        errors.append(FieldError("spend", str(exc)))
    if "spend" in body or "currency" in body:
        try:
            currency = check_currency(body.get("currency"))
        except ValueError as exc:
            errors.append(FieldError("currency", str(exc)))
    sent_at = None
    if body.get("sent_at") is not None:
        try:
            sent_at = parse_time(body["sent_at"], "sent_at")
        except Invalid as exc:
            errors.extend(exc.errors)
    if errors:
        raise Invalid(errors)
    return CampaignSpec(name if isinstance(name, str) else "", spend, currency, sent_at)
