"""Phones and emails, normalised and reduced to keyed hashes. Pure.

We never store a phone number or an email address: only an HMAC-SHA256 of
its normalised form under a per-workspace secret. That is enough to match an
order's customer to a recipient, and useless to anyone without the secret
(a plain hash of a phone number is reversed by enumeration in minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import re

_PHONE_JUNK = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(raw: str, *, international: bool = False) -> str | None:
    """E.164 ("+4917612345678"), or None if the number has no country code.

    WhatsApp sends numbers with their country code but no plus
    ("16505551234": pass international=True); Shopify as the shop typed them
    ("+1 650-555-1234"); "00" is the international prefix. A national number
    ("0176 ...", "555-625-1199") cannot be matched safely, so it is dropped.
    """
    text = _PHONE_JUNK.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    elif international and text.isdigit():
        text = "+" + text
    return text if _E164.match(text) else None


def normalise_email(raw: str) -> str | None:
    text = raw.strip().lower()
    return text if _EMAIL.match(text) else None


def identity_hash(secret: str, kind: str, value: str) -> str:
    """128 bits of HMAC-SHA256 over "kind:value" (kind is "phone" or "email")."""
    digest = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def phone_hash(secret: str, raw: str | None, *, international: bool = False) -> str | None:
    if not raw:
        return None
    phone = normalise_phone(raw, international=international)
    return identity_hash(secret, "phone", phone) if phone else None


def email_hash(secret: str, raw: str | None) -> str | None:
    if not raw:
        return None
    email = normalise_email(raw)
    return identity_hash(secret, "email", email) if email else None
