"""Attribution: which campaign gets an order, a reply or an opt-out. Pure.

Everything here is a function of facts and times, never of the order in
which the facts arrived: the worker keeps the facts, and recomputes an
order's attribution whenever one of its inputs changes (the order itself, a
refund, a cancellation, a click of its customer). Recomputing from the same
facts always gives the same answer, which is what makes the numbers
independent of arrival order, redelivery and crashes.

Order attribution, strongest first:
1. the order's own click id (landing_site, note_attributes, pixel purchase);
2. otherwise the last human click, before the order, of any recipient whose
   phone or email hash matches the order's customer;
(discount-code attribution is not implemented.)
The last click is the same whatever the window: the window only decides
whether it qualifies. Time to conversion is kept in whole hours, so a report
can ask for any window up to the workspace's maximum.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NamedTuple

from .money import fmt, parse_amount

HOUR_MS = 3_600_000
MICRO = Decimal(1_000_000)

# Sources whose amounts we trust over the pixel's (a browser can be wrong or
# tampered with; the shop's webhook cannot).
AUTHORITATIVE = ("shopify", "api")


class ClickRef(NamedTuple):
    """Where an order can find a click (one per human click: a NamedTuple,
    cheaper to make than a frozen dataclass)."""

    click_id: str
    campaign: str
    recipient: str
    code: str
    ts: int
    human: bool = True
    # (device, os, browser) of the click, so orders can be broken down by them
    classes: tuple[str, str, str] = ("", "", "")

    def encode(self) -> str:
        return "\x1f".join([self.campaign, self.recipient, self.code, str(self.ts),
                            "1" if self.human else "0", *self.classes])

    @classmethod
    def decode(cls, click_id: str, text: str) -> ClickRef:
        campaign, recipient, code, ts, human, *rest = text.split("\x1f")
        classes = (rest[0], rest[1], rest[2]) if len(rest) == 3 else ("", "", "")
        return cls(click_id, campaign, recipient, code, int(ts), human == "1", classes)


@dataclass(frozen=True)
class OrderState:
    """Everything known about one order, merged from every event about it."""

    order_id: str
    ts: int | None = None
    total: str | None = None
    currency: str | None = None
    source: str = ""  # where the amounts came from
    test: bool = False
    cancelled: bool = False
    click_id: str = ""  # from the order itself (webhook or events API)
    pixel_click_id: str = ""  # from the pixel's purchase event
    identities: tuple[str, ...] = ()  # phone/email hashes of the customer
    recipient: str = ""  # given directly by the events API
    refunds: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # id -> (amount, cur)

    def to_json(self) -> str:
        doc = {k: v for k, v in self.__dict__.items() if v not in (None, "", False, (), {})}
        doc["identities"] = list(self.identities)
        doc["refunds"] = {k: list(v) for k, v in self.refunds.items()}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, order_id: str, text: str | None) -> OrderState:
        if not text:
            return cls(order_id)
        doc = json.loads(text)
        doc["identities"] = tuple(doc.get("identities", ()))
        doc["refunds"] = {k: (v[0], v[1]) for k, v in doc.get("refunds", {}).items()}
        return cls(**doc)

    @property
    def complete(self) -> bool:
        return self.ts is not None and self.total is not None and bool(self.currency)

    def refunded(self) -> Decimal:
        return sum((parse_amount(a) for a, cur in self.refunds.values()
                    if cur in (self.currency, "")), Decimal(0))


def merge_order(state: OrderState, event_type: str, src: str, ts: int,
                data: Mapping[str, Any]) -> OrderState:
    """Fold one event about an order into its state. Commutative and idempotent:
    the same events in any order, any number of times, give the same state."""
    if event_type == "order_cancelled":
        return replace(state, cancelled=True)
    if event_type == "refund":
        refund_id = str(data.get("refund_id") or "")
        refunds = dict(state.refunds)
        refunds[refund_id] = (str(data.get("amount") or "0"), str(data.get("currency") or ""))
        return replace(state, refunds=refunds)
    identities = set(state.identities)
    identities.update(data.get("phone_hashes") or [])
    identities.update(data.get("email_hashes") or [])
    for key in ("phone_hash", "email_hash"):
        if data.get(key):
            identities.add(data[key])
    new = replace(state, identities=tuple(sorted(identities)))
    if event_type == "pixel_purchase":
        cid = str(data.get("click_id") or "")
        if cid and (not new.pixel_click_id or cid < new.pixel_click_id):
            new = replace(new, pixel_click_id=cid)
        if new.source in AUTHORITATIVE:
            return new  # the webhook's amounts win over the pixel's
        total, currency = data.get("total"), data.get("currency")
        if total and currency:
            candidate = (ts, str(total), str(currency))
            if new.total is None or candidate < (new.ts or 0, new.total, new.currency or ""):
                new = replace(new, total=str(total), currency=str(currency), ts=ts,
                              source="pixel")
        elif new.ts is None or ts < new.ts:
            new = replace(new, ts=ts)
        return new
    # An order from the shop (webhook) or the events API. Two of them with
    # different data keep the greater (source, time, amount) so that the
    # result does not depend on which came first.
    ours = (src, ts, str(data.get("total")), str(data.get("currency")))
    if new.source in AUTHORITATIVE and ours <= (new.source, new.ts or 0, new.total or "",
                                                new.currency or ""):
        cid = str(data.get("click_id") or "")
        if cid and (not new.click_id or cid < new.click_id):
            new = replace(new, click_id=cid)
        return new
    cid = str(data.get("click_id") or "")
    return replace(
        new,
        ts=ts,
        total=str(data.get("total")),
        currency=str(data.get("currency")),
        source=src,
        test=bool(data.get("test")),
        click_id=min(filter(None, (cid, new.click_id)), default=""),
        recipient=str(data.get("recipient") or new.recipient),
    )


@dataclass(frozen=True)
class Attribution:
    campaign: str
    recipient: str
    click_id: str
    code: str
    click_ts: int
    method: str  # "click_id" | "last_click"
    hours: int  # whole hours from click to order
    classes: tuple[str, str, str] = ("", "", "")  # the click's device, os, browser

    def as_json(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "recipient": self.recipient,
                "click_id": self.click_id, "code": self.code, "click_ts": self.click_ts,
                "method": self.method, "hours": self.hours, "classes": list(self.classes)}


def kept_click(stored: Mapping[str, Any] | None) -> tuple[str, ClickRef] | None:
    """The click an order's stored attribution names, with how it got the
    order ("click_id" | "last_click"), from `Attribution.as_json`.

    An order keeps its click so that it can be attributed again (a refund, a
    cancellation, a new identity) after the click itself was swept from the
    join state: an order's click stays its candidate for as long as the
    order exists. (Attributions stored before they kept the click's classes
    come back without them.)
    """
    if not stored:
        return None
    classes = tuple(stored.get("classes") or ("", "", ""))
    return str(stored["method"]), ClickRef(
        str(stored["click_id"]), str(stored["campaign"]), str(stored["recipient"]),
        str(stored["code"]), int(stored["click_ts"]), True,
        (str(classes[0]), str(classes[1]), str(classes[2])))


def clicks_needed_since(now: int, window_h: int, late_ms: int, retention_ms: int) -> int:
    """The oldest click time the worker's joins still need to hold at `now`.

    An order arriving now is at most `late_ms` old (what the streams keep,
    and a day), and a click qualifies only within the window before its
    order; orders already attributed keep their own click (`kept_click`).
    Never sooner than the workspace's raw retention: the join's clicks are
    raw click data, kept as long as the rows exports read.
    """
    return now - max(retention_ms, late_ms + window_h * HOUR_MS)


def attribute(order: OrderState, own_clicks: Iterable[ClickRef],
              customer_clicks: Iterable[ClickRef], window_h: int) -> Attribution | None:
    """The click that gets the order, if one qualifies.

    `own_clicks`: the clicks named by the order's click ids (webhook first,
    then pixel). `customer_clicks`: candidate last clicks of the recipients
    matched by phone/email (the worker passes, for each, the last human
    click at or before the order time).
    """
    if order.ts is None:
        return None
    chosen: ClickRef | None = None
    method = ""
    for click in own_clicks:
        if click.human and click.ts <= order.ts:
            chosen, method = click, "click_id"
            break
    if chosen is None:
        before = [c for c in customer_clicks if c.human and c.ts <= order.ts]
        if before:
            # Latest click wins; ties broken by click id so the answer is stable.
            chosen = max(before, key=lambda c: (c.ts, c.click_id))
            method = "last_click"
    if chosen is None:
        return None
    hours = (order.ts - chosen.ts) // HOUR_MS
    if hours >= window_h:
        return None
    return Attribution(chosen.campaign, chosen.recipient, chosen.click_id, chosen.code,
                       chosen.ts, method, hours, chosen.classes)


def micro(amount: str | Decimal) -> int:
    """Money as integer millionths, so Redis can add it exactly."""
    return int((Decimal(amount) * MICRO).to_integral_value())


def from_micro(value: int) -> str:
    return fmt(Decimal(value) / MICRO)


@dataclass(frozen=True)
class Contribution:
    """What one fact adds to one campaign: counters, set members and a row."""

    counters: Mapping[str, int] = field(default_factory=dict)
    members: Mapping[str, str] = field(default_factory=dict)  # set name -> member
    row: Mapping[str, Any] | None = None

    def to_json(self) -> str:
        doc: dict[str, Any] = {"c": dict(self.counters), "s": dict(self.members)}
        if self.row is not None:
            doc["row"] = json.dumps(self.row, sort_keys=True, separators=(",", ":"))
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))


EMPTY = Contribution()


def order_contribution(order: OrderState, attr: Attribution | None,
                       include_test: bool = False) -> Contribution:
    """An attributed, complete, live order's share of its campaign's numbers."""
    if attr is None or not order.complete or order.cancelled:
        return EMPTY
    if order.test and not include_test:
        return EMPTY
    assert order.currency is not None and order.total is not None and order.ts is not None
    h = attr.hours
    gross = micro(order.total)
    refunded = min(micro(order.refunded()), gross)
    at = order.ts // HOUR_MS  # the hour the order was placed, for time series
    cur = order.currency
    counters: dict[str, int] = {
        f"@orders:{at}": 1,
        f"@gross:{order.currency}:{at}": gross,
        f"@refunded:{order.currency}:{at}": refunded,
        f"#{attr.code}:orders": 1,
        f"#{attr.code}:gross:{order.currency}": gross,
        f"#{attr.code}:refunded:{order.currency}": refunded,
        f"orders:{h}": 1,
        f"orders_by:{attr.method}:{h}": 1,
        f"orders_in:{order.currency}:{h}": 1,
        f"gross:{order.currency}:{h}": gross,
        f"refunded:{order.currency}:{h}": refunded,
        # by order hour and hours from click: a report over a range, any window
        f"%orders:{h}:{at}": 1,
        f"%orders_by:{attr.method}:{h}:{at}": 1,
        f"%orders_in:{cur}:{h}:{at}": 1,
        f"%gross:{cur}:{h}:{at}": gross,
        f"%refunded:{cur}:{h}:{at}": refunded,
    }
    for name, value in zip(("device", "os", "browser"), attr.classes, strict=True):
        if value:
            counters[f"#{name}={value}:orders"] = 1
            counters[f"#{name}={value}:gross:{cur}"] = gross
            counters[f"#{name}={value}:refunded:{cur}"] = refunded
    row = {
        "order_id": order.order_id, "ts": order.ts, "amount": order.total,
        "currency": order.currency, "refunded": from_micro(refunded),
        "attributed_by": attr.method, "click_id": attr.click_id, "code": attr.code,
        "click_ts": attr.click_ts, "recipient": attr.recipient, "hours": h,
    }
    return Contribution({k: v for k, v in counters.items() if v}, {}, row)


def converter_contribution(orders: Sequence[tuple[int, int | None]]) -> Contribution:
    """A recipient with attributed orders converts once.

    `orders`: (hours from click, order hour) of each of their attributed
    orders. For a window of W hours they convert if an order came less than W
    hours after its click ("converters:<h>" at the quickest order's hours),
    and, in a report over a time range, at the hour of their earliest such
    order. That hour depends on W, so it is kept as a staircase over the
    hours from click ("%converters:<h>:<hour>"): summing the entries with
    h < W leaves exactly +1 at the earliest qualifying order's hour.
    """
    if not orders:
        return EMPTY
    counters: dict[str, int] = {f"converters:{min(h for h, _ in orders)}": 1}
    earliest: int | None = None
    for h, at in sorted(orders, key=lambda o: (o[0], o[1] if o[1] is not None else -1)):
        if at is None or (earliest is not None and at >= earliest):
            continue
        counters[f"%converters:{h}:{at}"] = counters.get(f"%converters:{h}:{at}", 0) + 1
        if earliest is not None:
            key = f"%converters:{h}:{earliest}"
            counters[key] = counters.get(key, 0) - 1
        earliest = at
    return Contribution({k: v for k, v in counters.items() if v})


def engagement_contribution(kind: str, recipient: str, ts: int | None = None) -> Contribution:
    """A reply or an opt-out: counted by distinct recipient in the campaign's
    totals, and per event at its hour in the time series."""
    name = {"reply": "replies", "opt_out": "opt_outs", "opt_in": "opt_ins"}[kind]
    counters = {name: 1}
    if ts is not None:
        counters[f"@{name}:{ts // HOUR_MS}"] = 1
    return Contribution(counters, {name: recipient} if recipient else {})


def last_message_before(messages: Sequence[tuple[int, str]], ts: int,
                        window_h: int) -> str | None:
    """The campaign of the latest message sent at or before `ts`, within the window.

    `messages`: (sent time, campaign) pairs of one recipient.
    """
    best: tuple[int, str] | None = None
    for sent, campaign in messages:
        if sent <= ts and ts - sent < window_h * HOUR_MS and (best is None or
                                                            (sent, campaign) > best):
            best = (sent, campaign)
    return best[1] if best else None


# Message statuses as bits: a message's state is derived from the set of
# statuses seen, so duplicates and any arrival order give the same state.
STATUS_BITS = {"sent": 1, "delivered": 2, "read": 4, "failed": 8}


def message_state(bits: int) -> tuple[int, bool]:
    """(rank, failed): rank 3 read, 2 delivered, 1 sent, 0 none; read implies
    delivered; failed only if the message never got past sent.

    The rule, stated and table-tested here; scripts/apply_status.lua applies
    the same rule atomically in Redis (the arrival-order test checks them end
    to end).
    """
    rank = 3 if bits & 4 else 2 if bits & 2 else 1 if bits & 1 else 0
    return rank, bool(bits & 8) and rank < 2
