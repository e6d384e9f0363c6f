"""Time series in a marketer's time zone, from hourly counters. Pure.

Counters are kept per UTC hour (unix hour). A day bucket in Europe/Berlin is
a Berlin day: it sums the UTC hours that fall in it, so the days of a DST
change have 23 or 25 hours. Buckets with no events are present as zeros.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .attribution import HOUR_MS, from_micro

INTERVALS = ("hour", "day")
METRICS = ("clicks", "non_human_clicks", "orders", "gross", "refunded", "net")
MAX_BUCKETS = 24 * 400


ORDER_METRICS = ("orders", "gross", "refunded")


def windowed(series: Mapping[str, int], lags: Mapping[str, int],
             window_h: int) -> dict[str, int]:
    """The hourly counters with orders and revenue limited to an attribution window.

    `lags` holds the order counters by hours from click ("orders:<h>:<hour>",
    "gross:<cur>:<h>:<hour>"); an order counts if it came less than `window_h`
    hours after its click, as in the report. Without them (data kept before
    they were), the series' own order counters stand: the workspace's window.
    """
    if not lags:
        return dict(series)
    out = {k: v for k, v in series.items() if not k.startswith(("orders:", "gross:",
                                                                 "refunded:"))}
    for key, value in lags.items():
        parts = key.split(":")
        if parts[0] == "orders" and len(parts) == 3:
            lag, name = parts[1], f"orders:{parts[2]}"
        elif parts[0] in ("gross", "refunded") and len(parts) == 4:
            lag, name = parts[2], f"{parts[0]}:{parts[1]}:{parts[3]}"
        else:
            continue
        if int(lag) < window_h:
            out[name] = out.get(name, 0) + value
    return out


def bucket_starts(start_ms: int, end_ms: int, interval: str, tz: ZoneInfo) -> list[datetime]:
    """Local bucket starts covering [start, end), aware datetimes in `tz`."""
    local = datetime.fromtimestamp(start_ms / 1000, tz)
    if interval == "day":
        cur = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        cur = local.replace(minute=0, second=0, microsecond=0)
    out: list[datetime] = []
    end = datetime.fromtimestamp(end_ms / 1000, tz)
    while cur < end:
        out.append(cur)
        if interval == "day":
            # the next local midnight, whatever the day's length
            nxt = (cur + timedelta(days=1)).replace(tzinfo=None)
            cur = nxt.replace(tzinfo=tz)
        else:
            cur = datetime.fromtimestamp(cur.timestamp() + 3600, tz)
        if len(out) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} buckets")
    return out


def timeseries(series: Mapping[str, int], start_ms: int, end_ms: int, interval: str,
               tz: ZoneInfo, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Buckets with the requested metrics; money per currency as decimal strings."""
    starts = bucket_starts(start_ms, end_ms, interval, tz)
    edges = [int(s.timestamp() * 1000) for s in starts] + [end_ms]
    counts: list[dict[str, int]] = [defaultdict(int) for _ in starts]
    for key, value in series.items():
        name, _, hour = key.rpartition(":")
        ts = int(hour) * HOUR_MS
        if not start_ms <= ts < end_ms or not value:
            continue
        # the bucket holding this hour (buckets are few: a linear scan is fine)
        for i in range(len(starts)):
            if edges[i] <= ts < edges[i + 1]:
                counts[i][name] += value
                break
    out = []
    for start, c in zip(starts, counts, strict=True):
        row: dict[str, Any] = {"start": start.isoformat()}
        for metric in metrics:
            if metric in ("clicks", "non_human_clicks", "orders"):
                row[metric] = c.get(metric, 0)
            else:
                money: dict[str, str] = {}
                for name, value in c.items():
                    kind, _, cur = name.partition(":")
                    if metric == "net" and kind in ("gross", "refunded"):
                        sign = 1 if kind == "gross" else -1
                        money[cur] = str(int(money.get(cur, "0")) + sign * value)
                    elif kind == metric:
                        money[cur] = str(int(money.get(cur, "0")) + value)
                row[metric] = {cur: from_micro(int(v)) for cur, v in sorted(money.items())}
        out.append(row)
    return out
