"""The records tracker keeps, and how they are encoded in Redis hashes and streams."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import iso_ms

# The click-stream entry's fields, always all of them and in this order:
# Redis stores a stream's field names once per listpack node when every
# entry repeats the master entry's fields, so a fixed layout is cheap.
CLICK_FIELDS = ("code", "ts", "id", "method", "ua", "ref", "lang", "ip")
CLICK_LINK_FIELDS = ("ws", "campaign", "recipient")


US = "\x1f"
# A deleted link's record: its code stays taken (a cached copy of the old
# link can never redirect to a new one) and later candidates stay reachable.
DELETED = "-"


def link_record(tid: str, recipient: str, created: int, expires: int | None,
                disabled: bool, metadata: str | None) -> str:
    """A link's value in its bucket: template id, recipient, created (ms),
    expires (ms), disabled ("1"), metadata, with trailing empty fields left out
    (a record stays short enough for Redis's compact encoding). Ids and URLs
    never hold control characters and compact JSON escapes them, so the unit
    separator is safe."""
    fields = [tid, recipient, str(created), "" if expires is None else str(expires),
              "1" if disabled else "", metadata or ""]
    while len(fields) > 3 and not fields[-1]:
        fields.pop()
    return US.join(fields)


def record_template(value: str) -> str:
    return value.split(US, 1)[0]


@dataclass(frozen=True)
class Link:
    code: str
    ws: str
    campaign: str
    recipient: str
    url: str
    created_at: int
    expires_at: int | None = None
    disabled: bool = False
    metadata: str | None = None

    @classmethod
    def from_hash(cls, code: str, h: Mapping[str, str]) -> Link:
        return cls(
            code=code,
            ws=h["w"],
            campaign=h["c"],
            recipient=h.get("r", ""),
            url=h["u"],
            created_at=int(h.get("t", "0")),
            expires_at=int(h["e"]) if h.get("e") else None,
            disabled=h.get("x") == "1",
            metadata=h.get("m"),
        )

    @classmethod
    def from_record(cls, code: str, value: str, template: str) -> Link:
        """From a bucket record and its template ("ws US campaign US url")."""
        ws, campaign, url = template.split(US, 2)
        _, recipient, created, expires, disabled, metadata = (value.split(US, 5) + [""] * 5)[:6]
        return cls(code=code, ws=ws, campaign=campaign, recipient=recipient, url=url,
                   created_at=int(created or 0), expires_at=int(expires) if expires else None,
                   disabled=disabled == "1", metadata=metadata or None)

    def state(self, now_ms: int) -> str:
        if self.disabled:
            return "disabled"
        if self.expires_at is not None and self.expires_at <= now_ms:
            return "expired"
        return "active"

    def as_json(self, base_url: str, now_ms: int) -> dict[str, Any]:
        return {
            "code": self.code,
            "short_url": f"{base_url}/{self.code}",
            "url": self.url,
            "campaign": self.campaign,
            "recipient": self.recipient or None,
            "created_at": iso_ms(self.created_at),
            "expires_at": iso_ms(self.expires_at) if self.expires_at is not None else None,
            "disabled": self.disabled,
            "state": self.state(now_ms),
            "metadata": json.loads(self.metadata) if self.metadata else None,
        }


@dataclass(frozen=True)
class Click:
    """A click as the redirect wrote it to the stream."""

    code: str
    ts: int
    id: str
    method: str
    ua: str
    ref: str
    lang: str
    ip: str
    ws: str
    campaign: str
    recipient: str

    @classmethod
    def from_entry(cls, fields: Mapping[str, str]) -> Click:
        """Raises KeyError or ValueError on an entry we did not write."""
        return cls(
            code=fields["code"],
            ts=int(fields["ts"]),
            id=fields["id"],
            method=fields.get("method", "GET"),
            ua=fields.get("ua", ""),
            ref=fields.get("ref", ""),
            lang=fields.get("lang", ""),
            ip=fields.get("ip", ""),
            ws=fields["ws"],
            campaign=fields["campaign"],
            recipient=fields.get("recipient", ""),
        )
