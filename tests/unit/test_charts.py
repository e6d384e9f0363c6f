"""The dashboard's SVG charts: well-formed, labelled, proportional, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tracker.dashboard.charts import columns, funnel

SVG = "{http://www.w3.org/2000/svg}"


def test_funnel_bars_are_proportional_and_labelled() -> None:
    svg = funnel([("Sent", 100, "messages"), ("Delivered", 50, "50.0 % of sent"),
                  ("Ordered", 0, "0.0 % of delivered")], "Funnel of <b>")
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Funnel of <b>"  # type: ignore[union-attr]
    assert "Delivered: 50 (50.0 % of sent)" in root.find(f"{SVG}desc").text  # type: ignore
    widths = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == 2 * widths[1] and widths[2] == 0


def test_columns_scale_to_the_largest_and_title_each_bucket() -> None:
    svg = columns("Clicks", ["Mon", "Tue", "Wed"], [4, 0, 2], unit=" EUR", ident="x")
    root = ET.fromstring(svg)
    rects = list(root.iter(f"{SVG}rect"))
    heights = [float(r.get("height", "0")) for r in rects]
    assert heights[0] == 2 * heights[2] and heights[1] == 0
    assert [r.find(f"{SVG}title").text for r in rects] == [  # type: ignore[union-attr]
        "Mon: 4 EUR", "Tue: 0 EUR", "Wed: 2 EUR"]
    assert root.get("aria-labelledby") == "x-t x-d"


def test_an_empty_chart_is_still_a_chart() -> None:
    ET.fromstring(columns("Clicks", [], []))
    ET.fromstring(funnel([]))
