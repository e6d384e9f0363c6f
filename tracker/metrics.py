"""Campaign metrics from aggregate counters. Pure.

Every rate is reported with the names of its numerator and denominator,
because vendors disagree on denominators (CTR over delivered, read, sent or
recipients) and a number without its denominator cannot be compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NON_HUMAN_KINDS = ("preview", "bot", "head")


def rate(counts: Mapping[str, int], numerator: str, denominator: str) -> dict[str, Any]:
    """A rate with its parts named; `value` is null when the denominator is 0."""
    num, den = counts.get(numerator, 0), counts.get(denominator, 0)
    return {
        "value": round(num / den, 6) if den else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def _prefixed(agg: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(agg.items()) if k.startswith(prefix)}


def campaign_report(
    campaign: str, agg: Mapping[str, int], links: int, recipients: int
) -> dict[str, Any]:
    counts = {
        "links": links,
        "recipients": recipients,
        "clicks": agg.get("clicks", 0),
        "unique_clickers": agg.get("unique_clickers", 0),
        "anonymous_clicks": agg.get("anonymous_clicks", 0),
        "non_human_clicks": agg.get("non_human_clicks", 0),
    }
    return {
        "campaign": campaign,
        **counts,
        "non_human": {k: agg.get(f"non_human:{k}", 0) for k in NON_HUMAN_KINDS},
        "ctr": rate(counts, "unique_clickers", "recipients"),
        "clicks_by": {
            "device": _prefixed(agg, "device:"),
            "os": _prefixed(agg, "os:"),
            "browser": _prefixed(agg, "browser:"),
        },
        "definitions": {
            "clicks": "human clicks (link previews, bots and HEAD requests excluded)",
            "unique_clickers": "distinct recipients with at least one human click",
            "anonymous_clicks": "human clicks on campaign-wide links (no recipient)",
            "non_human_clicks": "requests by link-preview fetchers, bots and HEAD",
            "recipients": "distinct recipients that have a link in this campaign",
        },
    }
