"""Campaign metrics from aggregate counters. Pure.

Every rate is reported with the names of its numerator and denominator,
because vendors disagree on denominators (CTR over delivered, read, sent or
recipients) and a number without its denominator cannot be compared. Money
is exact (integer millionths in Redis, decimal strings here), per currency,
never converted.

Order counters are kept per whole hour from click to order, so a report can
take any attribution window up to the workspace's maximum without
reprocessing: an order counts in a window of W hours if it came less than W
hours after its click.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .attribution import MICRO, from_micro
from .money import fmt

NON_HUMAN_KINDS = ("preview", "bot", "head")
METHODS = ("click_id", "last_click")

DEFINITIONS = {
    "recipients": "distinct recipients of the campaign (registered messages or links)",
    "messages": "messages registered in the send log or named by a status",
    "sent": "messages whose highest status reached sent (delivered and read included)",
    "delivered": "messages whose highest status reached delivered (read implies delivered)",
    "read": "messages read",
    "failed": "messages that failed and never got past sent",
    "clicks": "human clicks (link previews, bots and HEAD requests excluded)",
    "unique_clickers": "distinct recipients with at least one human click",
    "anonymous_clicks": "human clicks on campaign-wide links (no recipient)",
    "non_human_clicks": "requests by link-preview fetchers, bots and HEAD",
    "replies": "distinct recipients who replied (to this campaign's latest message before "
               "the reply, within the attribution window)",
    "opt_outs": "distinct recipients who opted out (same rule as replies)",
    "orders": "orders attributed to the campaign within the window: the order's own click id "
              "first, else its customer's last human click; test and cancelled orders excluded",
    "converters": "distinct recipients with at least one attributed order",
    "gross_revenue": "total of attributed orders, per currency",
    "refunded": "refunds of attributed orders, per currency",
    "net_revenue": "gross_revenue minus refunded",
}


def rate(counts: Mapping[str, int], numerator: str, denominator: str) -> dict[str, Any]:
    """A rate with its parts named; `value` is null when the denominator is 0."""
    num, den = counts.get(numerator, 0), counts.get(denominator, 0)
    return {
        "value": round(num / den, 6) if den else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def _prefixed(agg: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(agg.items()) if k.startswith(prefix) and v}


def _hour(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


def _windowed(agg: Mapping[str, int], prefix: str, window_h: int) -> dict[str, int]:
    """Sum "prefix<name>:<hour>" counters over hours inside the window, by name."""
    out: dict[str, int] = defaultdict(int)
    for key, value in agg.items():
        if key.startswith(prefix) and _hour(key) < window_h:
            out[key[len(prefix):].rsplit(":", 1)[0]] += value
    return dict(out)


def _money_rate(num: Decimal, den: int, numerator: str, denominator: str,
                currency: str) -> dict[str, Any]:
    return {"value": fmt(num / den) if den else None, "currency": currency,
            "numerator": numerator, "denominator": denominator}


def campaign_report(
    campaign: str,
    agg: Mapping[str, int],
    links: int,
    recipients: int,
    meta: Mapping[str, str] | None = None,
    window_h: int = 120,
) -> dict[str, Any]:
    meta = meta or {}

    def in_window(prefix: str) -> int:
        return sum(v for k, v in agg.items() if k.startswith(prefix) and _hour(k) < window_h)

    counts = {
        "links": links,
        "recipients": recipients,
        "messages": agg.get("messages", 0),
        "sent": agg.get("sent", 0),
        "delivered": agg.get("delivered", 0),
        "read": agg.get("read", 0),
        "failed": agg.get("failed", 0),
        "clicks": agg.get("clicks", 0),
        "unique_clickers": agg.get("unique_clickers", 0),
        "anonymous_clicks": agg.get("anonymous_clicks", 0),
        "non_human_clicks": agg.get("non_human_clicks", 0),
        "replies": agg.get("unique:replies", 0),
        "opt_outs": agg.get("unique:opt_outs", 0),
        "opt_ins": agg.get("unique:opt_ins", 0),
        "orders": in_window("orders:"),
        "converters": in_window("converters:"),
    }
    by_method = _windowed(agg, "orders_by:", window_h)
    gross = _windowed(agg, "gross:", window_h)
    refunded = _windowed(agg, "refunded:", window_h)
    orders_in = _windowed(agg, "orders_in:", window_h)
    delivered = counts["delivered"]
    revenue: dict[str, Any] = {}
    for cur in sorted(set(gross) | set(refunded)):
        g, r = gross.get(cur, 0), refunded.get(cur, 0)
        net = Decimal(g - r) / MICRO
        revenue[cur] = {
            "gross": from_micro(g),
            "refunded": from_micro(r),
            "net": from_micro(g - r),
            "orders": orders_in.get(cur, 0),
            "average_order_value": _money_rate(Decimal(g) / MICRO, orders_in.get(cur, 0),
                                               "gross_revenue", "orders", cur),
            "revenue_per_recipient": _money_rate(net, delivered, "net_revenue", "delivered",
                                                 cur),
        }
    spend_cur = meta.get("currency") or ""
    spend = Decimal(meta["spend"]) if meta.get("spend") else None
    rocs: dict[str, Any] = {"value": None, "numerator": "net_revenue", "denominator": "spend"}
    if spend is None or not spend_cur:
        rocs["reason"] = "no spend recorded for this campaign"
    elif spend == 0:
        rocs["reason"] = "spend is zero"
    elif revenue and spend_cur not in revenue:
        rocs["reason"] = (f"revenue is in {', '.join(revenue)}, spend in {spend_cur}; "
                          "currencies are never converted")
    else:
        net = Decimal(gross.get(spend_cur, 0) - refunded.get(spend_cur, 0)) / MICRO
        rocs["value"] = round(float(net / spend), 6)
        rocs["currency"] = spend_cur
    return {
        "campaign": campaign,
        "name": meta.get("name") or None,
        "window": f"{window_h}h",
        **counts,
        "orders_by": {m: by_method.get(m, 0) for m in METHODS},
        "non_human": {k: agg.get(f"non_human:{k}", 0) for k in NON_HUMAN_KINDS},
        "revenue": revenue,
        "spend": {"amount": fmt(spend), "currency": spend_cur} if spend is not None else None,
        "delivery_rate": rate(counts, "delivered", "sent"),
        "read_rate": rate(counts, "read", "delivered"),
        "ctr": rate(counts, "unique_clickers", "delivered"),
        "ctr_recipients": rate(counts, "unique_clickers", "recipients"),
        "click_to_read": rate(counts, "unique_clickers", "read"),
        "reply_rate": rate(counts, "replies", "delivered"),
        "opt_out_rate": rate(counts, "opt_outs", "delivered"),
        "conversion_rate": rate(counts, "converters", "delivered"),
        "rocs": rocs,
        "clicks_by": {
            "device": _prefixed(agg, "device:"),
            "os": _prefixed(agg, "os:"),
            "browser": _prefixed(agg, "browser:"),
        },
        "definitions": DEFINITIONS,
    }
