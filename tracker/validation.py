"""Turning JSON request bodies into checked values. Pure: time is an argument.

Every check reports the field it refers to, in the form the API's problem
documents use (``links[3].url``), and a batch is checked whole before any
write, so a rejected request never writes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .identity import normalise_email, normalise_phone
from .links import (
    MAX_URL_LENGTH,
    UTM_FIELDS,
    InvalidURL,
    domain_allowed,
    merge_utm,
    normalise_destination,
)

T = TypeVar("T")
MAX_ID_LENGTH = 200
MAX_METADATA_BYTES = 2048
MAX_UTM_LENGTH = 500


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str
    index: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            out["index"] = self.index
        return out


class Invalid(Exception):
    """One or more fields are wrong; carries all of them."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors


class LinkSpec(NamedTuple):
    """A checked link request (a NamedTuple: the batch API makes them by the
    ten thousand)."""

    destination: str  # the normalised URL as given
    url: str  # final destination with UTM parameters merged
    campaign: str
    recipient: str  # "" for a campaign-wide link
    utm: Mapping[str, str]
    expires_at: int | None  # unix ms
    metadata: str | None  # compact JSON
    phone: str | None = None  # E.164; stored only as a keyed hash
    email: str | None = None  # normalised; stored only as a keyed hash


@dataclass(frozen=True)
class LinkDefaults:
    utm_source: str
    utm_medium: str
    click_param: str
    allowed_domains: tuple[str, ...] = ()  # the workspace's allow-list; empty: any


def parse_time(value: Any, field: str) -> int:
    """An ISO 8601 time with an offset, to unix ms."""
    if not isinstance(value, str):
        raise Invalid([FieldError(field, "must be an ISO 8601 date-time string")])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid([FieldError(field, "is not an ISO 8601 date-time")]) from None
    if parsed.tzinfo is None:
        raise Invalid([FieldError(field, "needs a time zone offset, e.g. Z or +02:00")])
    return int(parsed.timestamp() * 1000)


def is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '¹' or '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def check_id(value: Any, field: str, *, required: bool = True) -> str:
    """Campaign and recipient ids: opaque strings of the campaign tool."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Invalid([FieldError(field, "must be a string")])
    if not value:
        raise Invalid([FieldError(field, "must not be empty")])
    if len(value) > MAX_ID_LENGTH:
        raise Invalid([FieldError(field, f"must be at most {MAX_ID_LENGTH} characters")])
    if _CONTROL.search(value):
        raise Invalid([FieldError(field, "must not contain control characters")])
    return value


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _good_id(value: Any) -> bool:
    """check_id's verdict for a required id, without building its error (the
    batch API checks a million recipients this way)."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH
            and not _CONTROL.search(value))


def _utm(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid([FieldError(field, "must be an object")])
    errors: list[FieldError] = []
    out: dict[str, str] = {}
    for key, val in value.items():
        if key not in UTM_FIELDS:
            errors.append(FieldError(f"{field}.{key}", f"unknown; one of {', '.join(UTM_FIELDS)}"))
        elif not isinstance(val, str):
            errors.append(FieldError(f"{field}.{key}", "must be a string"))
        elif len(val) > MAX_UTM_LENGTH:
            errors.append(FieldError(f"{field}.{key}", f"must be at most {MAX_UTM_LENGTH} chars"))
        elif val:
            out[key] = val
    if errors:
        raise Invalid(errors)
    return out


def _metadata(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid([FieldError(field, "must be a JSON object")])
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise Invalid([FieldError(field, f"must be at most {MAX_METADATA_BYTES} bytes as JSON")])
    return text


_LINK_FIELDS = frozenset({"url", "campaign", "recipient", "utm", "expires_at", "metadata",
                          "phone", "email"})


def _contact(item: dict[str, Any], prefix: str, recipient: str | None,
             errors: list[FieldError], index: int | None) -> tuple[str | None, str | None]:
    out: list[str | None] = []
    for kind, norm in (("phone", normalise_phone), ("email", normalise_email)):
        raw = item.get(kind)
        if raw is None:
            out.append(None)
            continue
        value = norm(raw) if isinstance(raw, str) else None
        if value is None:
            why = "must be E.164, e.g. +4917612345678" if kind == "phone" else "is not an email"
            errors.append(FieldError(f"{prefix}{kind}", why, index))
        elif not recipient:
            errors.append(FieldError(f"{prefix}{kind}", "needs a recipient to belong to", index))
        out.append(value)
    return out[0], out[1]


def _collect(errors: list[FieldError], index: int | None, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Invalid as exc:
        errors.extend(FieldError(e.field, e.reason, index) for e in exc.errors)
        return None


def link_spec(
    item: Any, defaults: LinkDefaults, now_ms: int, *, prefix: str = "", index: int | None = None
) -> LinkSpec:
    """Check one link object; raises Invalid listing every bad field."""
    if not isinstance(item, dict):
        raise Invalid([FieldError(prefix.rstrip(".") or "body", "must be a JSON object", index)])
    errors: list[FieldError] = []
    for key in item:
        if key not in _LINK_FIELDS:
            errors.append(FieldError(f"{prefix}{key}", "unknown field", index))
    campaign = _collect(errors, index, check_id, item.get("campaign"), f"{prefix}campaign")
    recipient = _collect(
        errors, index, lambda v, f: check_id(v, f, required=False),
        item.get("recipient"), f"{prefix}recipient",
    )
    utm = _collect(errors, index, _utm, item.get("utm"), f"{prefix}utm")
    metadata = _collect(errors, index, _metadata, item.get("metadata"), f"{prefix}metadata")
    phone, email = _contact(item, prefix, recipient, errors, index)
    expires_at = None
    if item.get("expires_at") is not None:
        expires_at = _collect(errors, index, parse_time, item["expires_at"], f"{prefix}expires_at")
        if expires_at is not None and expires_at <= now_ms:
            errors.append(FieldError(f"{prefix}expires_at", "is in the past", index))
    destination = final = ""
    raw_url = item.get("url")
    if not isinstance(raw_url, str):
        errors.append(FieldError(f"{prefix}url", "is required and must be a string", index))
    elif len(raw_url) > MAX_URL_LENGTH:
        errors.append(
            FieldError(f"{prefix}url", f"must be at most {MAX_URL_LENGTH} characters", index)
        )
    else:
        try:
            destination = normalise_destination(raw_url)
        except InvalidURL as exc:
            errors.append(FieldError(f"{prefix}url", str(exc), index))
        host = (urlsplit(destination).hostname or "") if destination else ""
        if destination and not domain_allowed(host, defaults.allowed_domains):
            errors.append(FieldError(f"{prefix}url", f"{host} is not on this workspace's "
                                                      "list of allowed domains", index))
            destination = ""
    if destination and campaign is not None and utm is not None:
        final = merge_utm(
            destination,
            request=utm,
            defaults={
                "source": defaults.utm_source,
                "medium": defaults.utm_medium,
                "campaign": campaign,
            },
            drop=(defaults.click_param,),
        )
        if len(final) > MAX_URL_LENGTH:
            errors.append(FieldError(
                f"{prefix}url", f"is longer than {MAX_URL_LENGTH} characters with UTM merged", index
            ))
    if errors:
        raise Invalid(errors)
    return LinkSpec(
        destination=destination,
        url=final,
        campaign=campaign,
        recipient=recipient,
        utm=utm or {},
        expires_at=expires_at,
        metadata=metadata,
        phone=phone,
        email=email,
    )


def check_size(items: Sequence[Any], field: str, limit: int) -> None:
    if not items:
        raise Invalid([FieldError(field, "must not be empty")])
    if len(items) > limit:
        raise Invalid([FieldError(field, f"at most {limit} items in one batch")])


def batch_items(body: Any, key: str, limit: int) -> list[Any]:
    """The items of a batch: ``{key: [...]}`` or a bare list, checked for shape and size."""
    if isinstance(body, dict):
        extra = set(body) - {key}
        if extra:
            raise Invalid([FieldError(k, "unknown field") for k in sorted(extra)])
        items = body.get(key)
    else:
        items = body
    if not isinstance(items, list):
        raise Invalid([FieldError(key, f"must be a list of {key}")])
    check_size(items, key, limit)
    return items


def each(items: Sequence[Any], check: Callable[[Any, int], T]) -> list[T]:
    """`check(item, index)` for every item: all the results, or every item's errors."""
    out: list[T] = []
    errors: list[FieldError] = []
    for i, item in enumerate(items):
        try:
            out.append(check(item, i))
        except Invalid as exc:
            errors.extend(exc.errors)
    if errors:
        raise Invalid(errors)
    return out


def link_batch(body: Any, defaults: LinkDefaults, now_ms: int, limit: int) -> list[LinkSpec]:
    """A batch: ``{"links": [...]}`` (or a bare list), or one url for many recipients.

    All or nothing: every bad item is reported with its index, and nothing is
    returned unless every item is good.
    """
    items: list[Any]
    prefix: str
    if isinstance(body, list):
        items, prefix = body, ""
    elif isinstance(body, dict) and "links" in body:
        extra = set(body) - {"links"}
        if extra:
            raise Invalid([FieldError(k, "unknown field") for k in sorted(extra)])
        if not isinstance(body["links"], list):
            raise Invalid([FieldError("links", "must be a list of link objects")])
        items, prefix = body["links"], "links"
    elif isinstance(body, dict) and "recipients" in body:
        return _recipient_batch(body, defaults, now_ms, limit)
    else:
        raise Invalid([FieldError("body", "must be {\"links\": [...]} or have \"recipients\"")])
    check_size(items, prefix or "body", limit)
    return each(items, lambda item, i: link_spec(item, defaults, now_ms,
                                                 prefix=f"{prefix}[{i}].", index=i))


def _recipient_batch(
    body: dict[str, Any], defaults: LinkDefaults, now_ms: int, limit: int
) -> list[LinkSpec]:
    """One url + campaign for a list of recipients: shared fields are checked once."""
    recipients = body["recipients"]
    if not isinstance(recipients, list):
        raise Invalid([FieldError("recipients", "must be a list of recipient ids")])
    check_size(recipients, "recipients", limit)
    shared = {k: v for k, v in body.items() if k != "recipients"}
    if "recipient" in shared:
        raise Invalid([FieldError("recipient", "use either recipient or recipients")])
    errors: list[FieldError] = []
    template = _collect(errors, None, link_spec, shared, defaults, now_ms)
    for i, recipient in enumerate(recipients):
        if not _good_id(recipient):
            _collect(errors, i, check_id, recipient, f"recipients[{i}]")
    if errors:
        raise Invalid(errors)
    # (dataclasses.replace per recipient was a tenth of a batch's CPU)
    t = template
    return [LinkSpec(t.destination, t.url, t.campaign, r, t.utm, t.expires_at, t.metadata,
                     t.phone, t.email) for r in recipients]


def link_patch(body: Any, now_ms: int) -> dict[str, Any]:
    """PATCH /links/{code}: ``disabled`` (bool) and/or ``expires_at`` (time or null)."""
    if not isinstance(body, dict):
        raise Invalid([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key in body:
        if key not in ("disabled", "expires_at"):
            errors.append(FieldError(key, "unknown field; only disabled and expires_at change"))
    if "disabled" in body:
        if isinstance(body["disabled"], bool):
            out["disabled"] = body["disabled"]
        else:
            errors.append(FieldError("disabled", "must be true or false"))
    if "expires_at" in body:
        if body["expires_at"] is None:
            out["expires_at"] = None
        else:
            ms = _collect(errors, None, parse_time, body["expires_at"], "expires_at")
            if ms is not None:
                out["expires_at"] = ms
    if not out and not errors:
        errors.append(FieldError("body", "nothing to change; give disabled or expires_at"))
    if errors:
        raise Invalid(errors)
    return out
