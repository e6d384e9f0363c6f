"""WhatsApp Cloud API webhook payloads -> our events. Pure.

Meta's envelope: object="whatsapp_business_account" > entry[] > changes[] >
{field, value}. With field "messages", value carries statuses[] (of messages
we sent) and messages[] + contacts[] (inbound); with field
"user_preferences", value.user_preferences[] carries marketing opt-outs.

Quirks this mapping is built for: statuses arrive out of order (read before
delivered, or read with no delivered at all) and are re-sent for up to
7 days, so each is keyed by (wamid, status) and the worker keeps the highest
rank; phones may be absent (business-scoped user ids since 2026), so the
join key is the wamid and our own send log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from ..events import Event
from ..identity import identity_hash, phone_hash
from ..workspaces import is_stop

KNOWN_STATUSES = ("sent", "delivered", "read", "failed", "played")
OBJECT = "whatsapp_business_account"


class PayloadError(ValueError):
    """The payload is not Meta's envelope; `path` names where it breaks."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def parse_callback_data(text: str) -> dict[str, str]:
    """biz_opaque_callback_data we accept: "campaign=C&recipient=R" (form-encoded)
    or a JSON object with "campaign" and "recipient". Anything else is ignored."""
    text = (text or "").strip()
    out: dict[str, str] = {}
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            return {}
        if isinstance(doc, dict):
            out = {k: v for k, v in doc.items()
                   if k in ("campaign", "recipient") and isinstance(v, str) and v}
    elif "=" in text:
        parsed = parse_qs(text, keep_blank_values=False)
        out = {k: v[0] for k, v in parsed.items() if k in ("campaign", "recipient") and v}
    return {k: v[:200] for k, v in out.items()}


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(path, "must be a list")
    return value


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(path, "must be an object")
    return value


def _str(obj: Mapping[str, Any], name: str, path: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{path}.{name}", "is required and must be a string")
    return value


def _ts(obj: Mapping[str, Any], path: str) -> int:
    raw = obj.get("timestamp")
    try:
        return int(str(raw)) * 1000
    except ValueError:
        raise PayloadError(f"{path}.timestamp", "must be unix seconds") from None


def _who(secret: str, phone: str | None, user_id: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    hashed = phone_hash(secret, phone, international=True)  # wa_id: country code, no plus
    if hashed:
        out["phone_hash"] = hashed
    if user_id:
        out["user_hash"] = identity_hash(secret, "bsuid", user_id)
    return out


def _reply_text(msg: Mapping[str, Any]) -> str:
    """The text a stop keyword is looked for in: body, button or list choice."""
    kind = msg.get("type")
    if kind == "text" and isinstance(msg.get("text"), dict):
        return str(msg["text"].get("body") or "")
    if kind == "button" and isinstance(msg.get("button"), dict):
        return str(msg["button"].get("text") or msg["button"].get("payload") or "")
    if kind == "interactive" and isinstance(msg.get("interactive"), dict):
        inter = msg["interactive"]
        for part in ("button_reply", "list_reply"):
            if isinstance(inter.get(part), dict):
                return str(inter[part].get("title") or "")
    return ""


def _status(s: Mapping[str, Any], ws: str, secret: str, path: str) -> Event | None:
    wamid = _str(s, "id", path)
    status = _str(s, "status", path)
    if status not in KNOWN_STATUSES:
        return None  # a status kind we do not know: acknowledged, not stored
    data: dict[str, Any] = {"message_id": wamid, "status": status}
    data.update(_who(secret, s.get("recipient_id"), s.get("recipient_user_id")
                     or s.get("user_id")))
    data.update(parse_callback_data(str(s.get("biz_opaque_callback_data") or "")))
    errors = [
        {"code": e.get("code"), "title": str(e.get("title") or "")[:200]}
        for e in _list(s.get("errors"), f"{path}.errors") if isinstance(e, dict)
    ]
    if errors:
        data["errors"] = errors
    pricing = s.get("pricing")
    if isinstance(pricing, dict):
        data["category"] = str(pricing.get("category") or "")
        data["billable"] = bool(pricing.get("billable"))
    return Event("status", ws, "whatsapp", f"wa:{wamid}:{status}", _ts(s, path), data)


def _inbound(m: Mapping[str, Any], ws: str, secret: str, stop: tuple[str, ...],
             path: str) -> list[Event]:
    wamid = _str(m, "id", path)
    kind = str(m.get("type") or "")
    if kind in ("system", "reaction", "unsupported"):
        return []  # not something the recipient wrote to us
    ts = _ts(m, path)
    who = _who(secret, m.get("from"), m.get("from_user_id"))
    data: dict[str, Any] = {"message_id": wamid, "kind": kind, **who}
    context = m.get("context")
    if isinstance(context, dict) and isinstance(context.get("id"), str):
        data["context_id"] = context["id"]  # the wamid of our message they answered
    events = [Event("reply", ws, "whatsapp", f"wa:{wamid}", ts, data)]
    if is_stop(_reply_text(m), stop):
        events.append(Event("opt_out", ws, "whatsapp", f"wa:{wamid}:opt_out", ts,
                            {**data, "via": "keyword"}))
    return events


def _preference(p: Mapping[str, Any], ws: str, secret: str, path: str) -> Event | None:
    if p.get("category") != "marketing_messages":
        return None
    value = p.get("value")
    if value not in ("stop", "resume"):
        return None
    ts = _ts(p, path)
    who = _who(secret, p.get("wa_id"), p.get("user_id"))
    ref = who.get("phone_hash") or who.get("user_hash") or ""
    kind = "opt_out" if value == "stop" else "opt_in"
    return Event(kind, ws, "whatsapp", f"wa:pref:{ref}:{value}:{ts}", ts,
                 {**who, "via": "user_preferences"})


def parse_whatsapp(payload: Any, ws: str, secret: str, stop: tuple[str, ...]) -> list[Event]:
    """Every event in one webhook delivery (a batch of many changes)."""
    doc = _obj(payload, "body")
    if doc.get("object") != OBJECT:
        raise PayloadError("object", f'must be "{OBJECT}"')
    events: list[Event] = []
    for i, entry in enumerate(_list(doc.get("entry"), "entry")):
        entry = _obj(entry, f"entry[{i}]")
        for j, change in enumerate(_list(entry.get("changes"), f"entry[{i}].changes")):
            path = f"entry[{i}].changes[{j}]"
            change = _obj(change, path)
            value = _obj(change.get("value"), f"{path}.value")
            field = change.get("field")
            if field == "messages":
                for k, s in enumerate(_list(value.get("statuses"), f"{path}.value.statuses")):
                    p = f"{path}.value.statuses[{k}]"
                    event = _status(_obj(s, p), ws, secret, p)
                    if event:
                        events.append(event)
                for k, m in enumerate(_list(value.get("messages"), f"{path}.value.messages")):
                    p = f"{path}.value.messages[{k}]"
                    events.extend(_inbound(_obj(m, p), ws, secret, stop, p))
            elif field == "user_preferences":
                prefs = _list(value.get("user_preferences"), f"{path}.value.user_preferences")
                for k, pref in enumerate(prefs):
                    p = f"{path}.value.user_preferences[{k}]"
                    event = _preference(_obj(pref, p), ws, secret, p)
                    if event:
                        events.append(event)
            # other fields (template updates, account alerts): acknowledged, ignored
    return events
