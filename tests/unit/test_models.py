"""The click-stream entry's layout: what the redirect writes, the worker reads."""

from __future__ import annotations

import pytest

from tracker.models import (
    CLICK,
    CLICK_FIELDS,
    US,
    Click,
    click_field,
    click_values,
    entry_clicks,
    entry_values,
)

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15"


def test_a_click_round_trips_through_its_entry() -> None:
    click = Click("AbCdEfGh", 1_763_880_000_123, "AAAAAAAAAAAA", "GET", UA,
                  "https://wa.me/", "de-DE", "10.1.2.0", "acme", "bf24", "r1")
    entry = click.entry()
    assert list(entry) == [CLICK]
    assert entry[CLICK].count(US) == len(CLICK_FIELDS) - 1
    assert Click.from_entry(entry) == click


def test_entries_of_the_older_layout_are_still_read() -> None:
    # Written before clicks were packed: one field per value (and entries of
    # that age may lack the optional ones).
    old = {"code": "AbCdEfGh", "ts": "1763880000123", "id": "AAAAAAAAAAAA", "method": "HEAD",
           "ua": UA, "ref": "", "lang": "", "ip": "", "ws": "acme", "campaign": "bf24",
           "recipient": "r1"}
    assert Click.from_entry(old) == Click("AbCdEfGh", 1_763_880_000_123, "AAAAAAAAAAAA",
                                          "HEAD", UA, "", "", "", "acme", "bf24", "r1")
    minimal = {"code": "AbCdEfGh", "ts": "1", "id": "x", "ws": "acme", "campaign": "bf24"}
    assert Click.from_entry(minimal).method == "GET"


@pytest.mark.parametrize("fields, error", [
    ({CLICK: US.join(["AbCdEfGh", "1", "x"])}, ValueError),  # too few values
    ({CLICK: US.join(["v"] * 12)}, ValueError),  # too many
    ({CLICK: US.join(["AbCdEfGh", "soon", *["v"] * 9])}, ValueError),  # time not a number
    ({"garbage": "1"}, KeyError),
])
def test_entries_we_did_not_write_are_refused(fields: dict[str, str],
                                              error: type[Exception]) -> None:
    with pytest.raises(error):
        Click.from_entry(fields)


def test_a_unit_separator_in_a_header_cannot_shift_the_values() -> None:
    # Only a malformed request carries one; it becomes a space.
    values = click_values("AbCdEfGh", "1", "x", "GET", f"evil{US}ua", f"{US}", "de", "")
    click = Click.from_entry({CLICK: US.join([values, "acme", "bf24", "r1"])})
    assert (click.ua, click.ref, click.lang) == ("evil ua", " ", "de")
    assert (click.ws, click.campaign, click.recipient) == ("acme", "bf24", "r1")
    assert click_values("a", "b") == f"a{US}b"


def test_an_entry_of_several_clicks_gives_each() -> None:
    clicks = [Click("AbCdEfGh", 1_763_880_000_123 + i, f"AAAAAAAAAAA{i}", "GET", UA, "", "",
                    "10.1.2.0", "acme", "bf24", f"r{i}") for i in range(3)]
    entry = {click_field(i): c.entry()[CLICK] for i, c in enumerate(clicks)}
    assert list(entry) == ["click", "click2", "click3"]
    assert [Click.from_entry(f) for f in entry_clicks(entry)] == clicks
    one = clicks[0].entry()
    assert entry_clicks(one) == [one]
    older = {"code": "AbCdEfGh", "ts": "1", "id": "x", "ws": "acme", "campaign": "bf"}
    assert entry_clicks(older) == [older]
    # (the worker's reading: the packed values, or None for the older layout)
    assert entry_values(entry) == [c.entry()[CLICK] for c in clicks]
    assert entry_values(one) == [one[CLICK]]
    assert entry_values(older) is None
