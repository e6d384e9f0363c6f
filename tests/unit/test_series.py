from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from tracker.attribution import HOUR_MS, micro
from tracker.series import bucket_starts, timeseries

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def hour(text: str) -> int:
    return ms(text) // HOUR_MS


def test_a_berlin_day_is_a_berlin_day_across_dst() -> None:
    # Summer time starts on 2026-03-29 at 02:00 local: that day has 23 hours.
    starts = bucket_starts(ms("2026-03-28T00:00:00+01:00"), ms("2026-03-31T00:00:00+02:00"),
                           "day", BERLIN)
    assert [s.isoformat() for s in starts] == [
        "2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
    lengths = [(b.timestamp() - a.timestamp()) / 3600 for a, b in itertools.pairwise(starts)]
    assert lengths == [24, 23]


def test_buckets_sum_hours_and_empty_ones_are_zero() -> None:
    series = {
        f"clicks:{hour('2026-03-28T22:30:00+00:00')}": 3,  # 23:30 Berlin, the 28th
        f"clicks:{hour('2026-03-28T23:10:00+00:00')}": 2,  # 00:10 Berlin, the 29th
        f"orders:{hour('2026-03-30T10:00:00+00:00')}": 1,
        f"gross:EUR:{hour('2026-03-30T10:00:00+00:00')}": micro("89.90"),
        f"refunded:EUR:{hour('2026-03-30T10:00:00+00:00')}": micro("9.90"),
        f"clicks:{hour('2026-01-01T00:00:00+00:00')}": 99,  # outside the range
    }
    rows = timeseries(series, ms("2026-03-28T00:00:00+01:00"), ms("2026-03-31T00:00:00+02:00"),
                      "day", BERLIN, ["clicks", "orders", "net", "gross"])
    assert [(r["start"][:10], r["clicks"], r["orders"]) for r in rows] == [
        ("2026-03-28", 3, 0), ("2026-03-29", 2, 0), ("2026-03-30", 0, 1)]
    assert rows[2]["net"] == {"EUR": "80.00"} and rows[2]["gross"] == {"EUR": "89.90"}
    assert rows[0]["net"] == {}
    hourly = timeseries(series, ms("2026-03-28T22:00:00+00:00"),
                        ms("2026-03-29T01:00:00+00:00"), "hour", UTC, ["clicks"])
    assert [r["clicks"] for r in hourly] == [3, 2, 0]


def test_windowed_takes_orders_and_revenue_from_the_counters_by_hours_from_click() -> None:
    from tracker.series import windowed
    series = {"clicks:10": 3, "orders:12": 2, "gross:EUR:12": 70, "refunded:EUR:12": 5}
    lags = {"orders:1:12": 1, "orders:30:12": 1, "gross:EUR:1:12": 30,
            "gross:EUR:30:12": 40, "refunded:EUR:1:12": 5, "converters:1:12": 1}
    assert windowed(series, lags, 24) == {"clicks:10": 3, "orders:12": 1, "gross:EUR:12": 30,
                                          "refunded:EUR:12": 5}
    assert windowed(series, lags, 120) == {"clicks:10": 3, "orders:12": 2,
                                           "gross:EUR:12": 70, "refunded:EUR:12": 5}
    assert windowed(series, {}, 24) == series  # kept before the lag counters existed
