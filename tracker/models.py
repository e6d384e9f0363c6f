"""The records tracker keeps, and how they are encoded in Redis hashes and streams."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from .clock import iso_ms

US = "\x1f"

# A click-stream entry is one field, CLICK, holding these values joined by US
# (the redirect writes the first eight, and the link's three after them).
# One field rather than eleven: the redirect packed eleven name/value pairs
# into its XADD for about 3.5 us a click, Redis spent 2.6 us on the XADD and
# 3 us a click on reading it back (1.6 and 1 packed), and the worker built a
# dict per entry. Entries of the older layout (a field per value) are still read.
# The redirect's fast path writes the clicks of one event-loop tick to a
# stream as one entry, the first in CLICK and the others in CLICK + "2", "3",
# ... (click_field): Redis's work an entry (the XADD, the group's delivery
# and acknowledgement) is then shared by the tick's clicks.
CLICK = "click"
CLICK_FIELDS = ("code", "ts", "id", "method", "ua", "ref", "lang", "ip",
                "ws", "campaign", "recipient")
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


class Link(NamedTuple):
    """A short link. (A NamedTuple, like the other records made by the
    thousand: a frozen dataclass's __init__ costs several times a tuple's.)"""

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


class Click(NamedTuple):
    """A click as the redirect wrote it to the stream. (A NamedTuple: the
    worker makes one per click, and a frozen dataclass's __init__ costs
    several times a tuple's.)"""

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
        packed = fields.get(CLICK)
        if packed is not None:
            v: list[Any] = packed.split(US)
            if len(v) != len(CLICK_FIELDS):
                raise ValueError(f"a click has {len(CLICK_FIELDS)} values, this one {len(v)}")
            v[1] = int(v[1])
            return cls._make(v)  # (tuple.__new__: the generated __new__ is Python)
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

    def entry(self) -> dict[str, str]:
        """The stream entry the redirect writes for this click."""
        return {CLICK: US.join([self.code, str(self.ts), *self[2:]])}


def click_field(i: int) -> str:
    """The field of an entry's click number i (from 0)."""
    return CLICK if i == 0 else f"{CLICK}{i + 1}"


def entry_values(fields: Mapping[str, str]) -> list[str] | None:
    """The packed clicks of an entry of the redirect's layout (each the value of
    a field CLICK, CLICK2, ...), or None for an entry of the older layout."""
    if CLICK not in fields:
        return None
    if len(fields) == 1:
        return [fields[CLICK]]
    return [value for name, value in fields.items() if name.startswith(CLICK)]


def entry_clicks(fields: Mapping[str, str]) -> list[Mapping[str, str]]:
    """Each click of a click-stream entry, as the fields of an entry of its own."""
    values = entry_values(fields)
    return [fields] if values is None else [{CLICK: value} for value in values]


def click_values(*values: str) -> str:
    """Click values joined for the stream; a unit separator inside one (only a
    malformed header can hold one) becomes a space, so the layout holds."""
    packed = US.join(values)
    if packed.count(US) != len(values) - 1:
        packed = US.join(v.replace(US, " ") for v in values)
    return packed
