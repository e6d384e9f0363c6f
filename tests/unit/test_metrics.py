from __future__ import annotations

import pytest

from tracker.metrics import campaign_report, range_aggregates, rate


def test_rate_names_its_parts_and_is_null_without_a_denominator() -> None:
    assert rate({"a": 1, "b": 4}, "a", "b") == {"value": 0.25, "numerator": "a", "denominator": "b"}
    assert rate({"a": 1}, "a", "b")["value"] is None
    assert rate({"a": 2, "b": 3}, "a", "b")["value"] == 0.666667


def test_report_from_aggregates() -> None:
    agg = {"clicks": 7, "unique_clickers": 3, "non_human_clicks": 5, "non_human:preview": 4,
           "non_human:head": 1, "device:mobile": 6, "device:desktop": 1, "os:iOS": 7}
    report = campaign_report("bf", agg, links=10, recipients=10)
    assert report["campaign"] == "bf"
    assert (report["links"], report["recipients"], report["clicks"]) == (10, 10, 7)
    assert report["non_human"] == {"preview": 4, "bot": 0, "head": 1}
    assert report["ctr_recipients"] == {"value": 0.3, "numerator": "unique_clickers",
                                        "denominator": "recipients"}
    assert report["clicks_by"]["device"] == {"desktop": 1, "mobile": 6}
    empty = campaign_report("none", {}, 0, 0)
    assert empty["clicks"] == 0 and empty["ctr_recipients"]["value"] is None


H = 3_600_000
SERIES = {"clicks:100": 3, "clicks:101": 2, "unique_clickers:100": 2, "delivered:99": 5,
          "replies:101": 1, "non_human:preview:100": 4, "non_human_clicks:100": 4,
          "gross:EUR:101": 7, "orders:101": 1}
LAGS = {"orders:2:101": 1, "orders:30:102": 1, "gross:EUR:2:101": 10_000_000,
        "gross:EUR:30:102": 5_000_000, "orders_in:EUR:2:101": 1, "orders_in:EUR:30:102": 1,
        "converters:2:101": 1, "converters:30:102": 1, "converters:30:101": -1}


@pytest.mark.parametrize(("start", "end", "expected"), [
    # everything
    (0, 200 * H, {"clicks": 5, "unique_clickers": 2, "delivered": 5, "unique:replies": 1,
                  "non_human:preview": 4, "non_human_clicks": 4, "orders:2": 1,
                  "orders:30": 1, "gross:EUR:2": 10_000_000, "gross:EUR:30": 5_000_000,
                  "orders_in:EUR:2": 1, "orders_in:EUR:30": 1, "converters:2": 1,
                  "converters:30": -1 + 1}),
    # one hour: [100 h, 101 h)
    (100 * H, 101 * H, {"clicks": 3, "unique_clickers": 2, "non_human:preview": 4,
                        "non_human_clicks": 4}),
    # an hour counts when it starts inside the range
    (100 * H + 1, 102 * H, {"clicks": 2, "unique:replies": 1, "orders:2": 1,
                            "gross:EUR:2": 10_000_000, "orders_in:EUR:2": 1,
                            "converters:2": 1, "converters:30": -1}),
    (102 * H, 103 * H, {"orders:30": 1, "gross:EUR:30": 5_000_000, "orders_in:EUR:30": 1,
                        "converters:30": 1}),
])
def test_range_aggregates(start: int, end: int, expected: dict[str, int]) -> None:
    got = range_aggregates(SERIES, LAGS, start, end)
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}


def test_a_range_report_says_so_and_counts_converters_once() -> None:
    agg = range_aggregates(SERIES, LAGS, 0, 200 * H)
    rep = campaign_report("c", agg, 10, 10, window_h=120, period=("a", "b"))
    assert (rep["from"], rep["to"], rep["clicks_by"]) == ("a", "b", None)
    assert rep["converters"] == 1 and rep["orders"] == 2
    assert rep["revenue"]["EUR"]["gross"] == "15.00"
    assert "first human click fell in the range" in rep["definitions"]["unique_clickers"]
    # a 24 h window: the order 30 h after its click is out, the converter stays
    rep = campaign_report("c", agg, 10, 10, window_h=24, period=("a", "b"))
    assert (rep["orders"], rep["converters"]) == (1, 1)
    assert campaign_report("c", agg, 10, 10)["from"] is None
