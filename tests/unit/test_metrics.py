from __future__ import annotations

from tracker.metrics import campaign_report, rate


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
