"""Webhook signatures, always over the raw body bytes and compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac


def meta_signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends: "sha256=<lowercase hex>"."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shopify_signature(secret: str, body: bytes) -> str:
    """The X-Shopify-Hmac-Sha256 value: base64 of the raw HMAC-SHA256 digest."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def valid_meta(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(meta_signature(secret, body).encode(), header.strip().encode())


def valid_shopify(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(shopify_signature(secret, body).encode(), header.strip().encode())
