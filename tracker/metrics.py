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

A report over a time range [from, to) is built from hourly counters (see
`range_aggregates`) into the same shape as the campaign's totals, so one
function computes both. Each event counts at its own hour: messages at
their send hour with the state they reached, clicks at the click, clickers
at their first click, orders and revenue at the order. Adjacent ranges
therefore add up to the whole campaign.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .attribution import HOUR_MS, MICRO, from_micro
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


RANGE_DEFINITIONS = {
    "messages": "messages sent in the range (by the send log's time)",
    "sent": "messages sent in the range whose highest status reached sent",
    "delivered": "messages sent in the range that were delivered (whenever that happened)",
    "read": "messages sent in the range that were read",
    "failed": "messages sent in the range that failed and never got past sent",
    "clicks": "human clicks in the range",
    "unique_clickers": "recipients whose first human click fell in the range",
    "anonymous_clicks": "human clicks on campaign-wide links in the range",
    "non_human_clicks": "requests by link-preview fetchers, bots and HEAD in the range",
    "replies": "attributed replies received in the range (each reply, not distinct "
               "recipients)",
    "opt_outs": "attributed opt-outs received in the range (each event)",
    "orders": "attributed orders placed in the range, within the window",
    "converters": "recipients whose earliest attributed order in the window was placed in "
                  "the range",
    "gross_revenue": "total of attributed orders placed in the range, per currency",
    "refunded": "refunds (whenever made) of those orders, per currency",
    "recipients": "distinct recipients of the whole campaign (not limited to the range)",
}

# Series names folded into a range report (others are for time series only).
_SERIES = ("messages", "sent", "delivered", "read", "failed", "clicks", "unique_clickers",
           "anonymous_clicks", "non_human_clicks", "replies", "opt_outs", "opt_ins")


def range_aggregates(series: Mapping[str, int], lags: Mapping[str, int], start_ms: int,
                     end_ms: int) -> dict[str, int]:
    """The campaign's counters for the hours in [start, end), in the shape of
    its totals. An hour counts if it starts inside the range.

    `series`: "<name>:<unix hour>" counters; `lags`: order counters
    "<metric>:<hours from click>:<unix hour>".
    """
    first, last = -(-start_ms // HOUR_MS), -(-end_ms // HOUR_MS)  # hours h: start <= h*H < end
    out: dict[str, int] = defaultdict(int)
    for key, value in series.items():
        name, _, hour = key.rpartition(":")
        if not value or not first <= int(hour) < last:
            continue
        if name in ("replies", "opt_outs", "opt_ins"):
            out[f"unique:{name}"] += value
        elif name in _SERIES or name.startswith("non_human:"):
            out[name] += value
    for key, value in lags.items():
        name, _, hour = key.rpartition(":")
        if value and first <= int(hour) < last:
            out[name] += value
    return dict(out)


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
    # An average, not an amount: four decimal places are exact enough to
    # reconcile and short enough to read.
    value = fmt((num / den).quantize(Decimal("0.0001")).normalize()) if den else None
    return {"value": value, "currency": currency,
            "numerator": numerator, "denominator": denominator}


def campaign_report(
    campaign: str,
    agg: Mapping[str, int],
    links: int,
    recipients: int,
    meta: Mapping[str, str] | None = None,
    window_h: int = 120,
    period: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The full KPI set; `period` (from, to) marks `agg` as a range's counters
    (`range_aggregates`) and says so in the report."""
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
    definitions = DEFINITIONS if period is None else {**DEFINITIONS, **RANGE_DEFINITIONS}
    return {
        "campaign": campaign,
        "name": meta.get("name") or None,
        "window": f"{window_h}h",
        "from": period[0] if period else None,
        "to": period[1] if period else None,
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
        # over a range: see the breakdown report (whole campaign) instead
        "clicks_by": None if period else {
            "device": _prefixed(agg, "device:"),
            "os": _prefixed(agg, "os:"),
            "browser": _prefixed(agg, "browser:"),
        },
        "definitions": definitions,
    }
