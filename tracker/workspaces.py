"""A workspace's own settings: secrets for webhooks and hashing, attribution window,
currency, stop keywords. Pure: parsing and validation only."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .money import check_currency
from .validation import FieldError, Invalid

ORDER_TOPICS = ("orders/create", "orders/paid")
DEFAULT_WINDOW_H = 120  # Klaviyo's WhatsApp click window: 5 days
MAX_WINDOW_H = 90 * 24
# Matched against a whole inbound message (trimmed, case-folded, trailing
# punctuation dropped), never as a substring: "how do I stop the
# subscription box?" is a question, not an opt-out. "stop promotions" is the
# quick-reply button Meta adds to marketing templates.
DEFAULT_STOP_KEYWORDS = ("stop", "stopp", "stop promotions", "unsubscribe", "abmelden",
                         "opt out", "opt-out", "arrêt", "baja")

_DURATION = re.compile(r"^([0-9]{1,5})\s*([hd])$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{2,63}$")


# API field -> Redis hash field
SECRET_FIELDS = {
    "whatsapp_app_secret": "wa_secret",
    "whatsapp_verify_token": "wa_token",
    "shopify_secret": "shop_secret",
}


def parse_window_hours(value: Any, field: str = "attribution_window") -> int:
    """120, "120h" or "5d" -> hours (1 to 2160)."""
    hours: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        hours = value
    elif isinstance(value, str):
        m = _DURATION.match(value.strip().lower())
        if m:
            hours = int(m.group(1)) * (24 if m.group(2) == "d" else 1)
    if hours is None:
        raise Invalid([FieldError(field, 'must be hours (120) or a duration ("24h", "5d")')])
    if not 1 <= hours <= MAX_WINDOW_H:
        raise Invalid([FieldError(field, f"must be between 1 hour and {MAX_WINDOW_H} hours")])
    return hours


@dataclass(frozen=True)
class WorkspaceConfig:
    name: str
    hash_secret: str
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    shopify_secret: str = ""
    attribution_window_h: int = DEFAULT_WINDOW_H
    currency: str = ""
    order_topic: str = ORDER_TOPICS[0]
    stop_keywords: tuple[str, ...] = DEFAULT_STOP_KEYWORDS
    respect_dnt: bool = False
    allowed_domains: tuple[str, ...] = ()  # empty: any destination
    raw_retention_days: int = 90  # raw click rows; aggregates are kept
    timezone: str = "UTC"  # the dashboard's days and hours
    # Redirect before Redis acknowledges the click (faster; a crash of a web
    # process can lose the clicks in flight). Off unless a workspace asks.
    fire_and_forget: bool = False

    @classmethod
    def from_hash(cls, name: str, h: Mapping[str, str]) -> WorkspaceConfig:
        return cls(
            name=name,
            hash_secret=h.get("hs", ""),
            whatsapp_app_secret=h.get("wa_secret", ""),
            whatsapp_verify_token=h.get("wa_token", ""),
            shopify_secret=h.get("shop_secret", ""),
            attribution_window_h=int(h.get("window_h") or DEFAULT_WINDOW_H),
            currency=h.get("currency", ""),
            order_topic=h.get("order_topic") or ORDER_TOPICS[0],
            stop_keywords=tuple(json.loads(h["stop_kw"])) if h.get("stop_kw")
            else DEFAULT_STOP_KEYWORDS,
            respect_dnt=h.get("dnt") == "1",
            allowed_domains=tuple(json.loads(h["domains"])) if h.get("domains") else (),
            raw_retention_days=int(h.get("retention_days") or 90),
            timezone=h.get("tz") or "UTC",
            fire_and_forget=h.get("ff") == "1",
        )

    def public(self) -> dict[str, Any]:
        """What the API may show: never a secret, only whether it is set."""
        return {
            "workspace": self.name,
            "whatsapp_app_secret_set": bool(self.whatsapp_app_secret),
            "whatsapp_verify_token_set": bool(self.whatsapp_verify_token),
            "shopify_secret_set": bool(self.shopify_secret),
            "attribution_window": f"{self.attribution_window_h}h",
            "currency": self.currency or None,
            "order_topic": self.order_topic,
            "stop_keywords": list(self.stop_keywords),
            "respect_dnt": self.respect_dnt,
            "allowed_domains": list(self.allowed_domains),
            "raw_retention_days": self.raw_retention_days,
            "timezone": self.timezone,
            "fire_and_forget": self.fire_and_forget,
        }


def _secret(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid([FieldError(field, "must be a non-empty string")])
    if len(value) > 512:
        raise Invalid([FieldError(field, "must be at most 512 characters")])
    return value.strip()


def settings_update(body: Any) -> dict[str, str]:
    """Validate a settings change; returns Redis hash fields to set."""
    if not isinstance(body, dict) or not body:
        raise Invalid([FieldError("body", "must be a JSON object with settings to change")])
    out: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, value in body.items():
        try:
            if key in SECRET_FIELDS:
                out[SECRET_FIELDS[key]] = _secret(value, key)
            elif key == "attribution_window":
                out["window_h"] = str(parse_window_hours(value))
            elif key == "currency":
                try:
                    out["currency"] = check_currency(value)
                except ValueError as exc:
                    raise Invalid([FieldError(key, str(exc))]) from None
            elif key == "order_topic":
                if value not in ORDER_TOPICS:
                    raise Invalid([FieldError(key, f"one of {', '.join(ORDER_TOPICS)}")])
                out["order_topic"] = value
            elif key == "stop_keywords":
                if (not isinstance(value, list) or not value
                        or not all(isinstance(k, str) and k.strip() for k in value)):
                    raise Invalid([FieldError(key, "must be a non-empty list of strings")])
                out["stop_kw"] = json.dumps([normalise_reply(k) for k in value])
            elif key == "allowed_domains":
                if not isinstance(value, list) or not all(
                        isinstance(d, str) and _DOMAIN.match(d.strip().lower()) for d in value):
                    raise Invalid([FieldError(key, "must be a list of domain names "
                                                   "(empty: any destination)")])
                out["domains"] = json.dumps(sorted({d.strip().lower() for d in value}))
            elif key == "raw_retention_days":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
                    raise Invalid([FieldError(key, "days from 1 to 3650")])
                out["retention_days"] = str(value)
            elif key == "timezone":
                if not isinstance(value, str) or not _zone_exists(value):
                    raise Invalid([FieldError(key, "an IANA time zone, e.g. Europe/Berlin")])
                out["tz"] = value
            elif key == "fire_and_forget":
                if not isinstance(value, bool):
                    raise Invalid([FieldError(key, "must be true or false")])
                out["ff"] = "1" if value else "0"
            elif key == "respect_dnt":
                if not isinstance(value, bool):
                    raise Invalid([FieldError(key, "must be true or false")])
                out["dnt"] = "1" if value else "0"
            else:
                raise Invalid([FieldError(key, "unknown setting")])
        except Invalid as exc:
            errors.extend(exc.errors)
    if errors:
        raise Invalid(errors)
    return out


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def normalise_reply(text: str) -> str:
    """How a reply is compared with stop keywords."""
    return " ".join(text.casefold().split()).strip(" .!¡?¿")


def is_stop(text: str, keywords: tuple[str, ...]) -> bool:
    return bool(text) and normalise_reply(text) in keywords
