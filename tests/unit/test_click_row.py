"""The worker writes a click's row by hand; it must be exactly json.dumps's."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tracker.attribution import ClickRef
from tracker.keys import Keys
from tracker.models import CLICK, Click
from tracker.useragent import Client, classify
from tracker.worker import click_effect, click_row, packed_effect

text = st.text(max_size=40)


@given(ts=st.integers(min_value=0, max_value=2**53), code=text, recipient=text, ip=text,
       kind=text, device=text, os=text, browser=text)
def test_click_row_is_what_json_dumps_writes(ts: int, code: str, recipient: str, ip: str,
                                             kind: str, device: str, os: str,
                                             browser: str) -> None:
    click = Click(code=code, ts=ts, id="c1", method="GET", ua="", ref="", lang="", ip=ip,
                  ws="w", campaign="c", recipient=recipient)
    client = Client(kind=kind, device=device, os=os, browser=browser)
    expected = json.dumps({"ts": ts, "code": code, "recipient": recipient, "kind": kind,
                           "device": device, "os": os, "browser": browser, "ip": ip},
                          separators=(",", ":"))
    assert click_row(click, client) == expected
    assert json.loads(click_row(click, client))["recipient"] == recipient


@given(ts=st.integers(min_value=0, max_value=2**53), code=text, recipient=text, ip=text,
       ua=st.one_of(text, st.sampled_from([
           "WhatsApp/2.23.20.0 A", "python-requests/2.31",
           "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]"])),
       method=st.sampled_from(["GET", "HEAD"]))
def test_the_folds_row_is_click_row(ts: int, code: str, recipient: str, ip: str, ua: str,
                                    method: str) -> None:
    """click_effect makes the row with the client's part cached per user agent."""
    click = Click(code=code, ts=ts, id="c1", method=method, ua=ua, ref="", lang="", ip=ip,
                  ws="w", campaign="c", recipient=recipient)
    _, args = click_effect(Keys(), click)
    assert args[1] == click_row(click, classify(ua, method))


@given(ts=st.integers(min_value=0, max_value=2**53), code=text, recipient=text, ip=text,
       ws=text, campaign=text, cid=text,
       ua=st.one_of(text, st.sampled_from([
           "WhatsApp/2.23.20.0 A", "python-requests/2.31",
           "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]"])),
       method=st.sampled_from(["GET", "HEAD"]))
def test_a_packed_clicks_effect_is_click_effect(ts: int, code: str, recipient: str, ip: str,
                                                ws: str, campaign: str, cid: str, ua: str,
                                                method: str) -> None:
    """The worker's one-call path for the redirect's packed clicks gives what
    click_effect gives for the Click read from the same entry, and the ClickRef
    orders find a human click by (none for a preview or a bot)."""
    click = Click(code=code, ts=ts, id=cid, method=method, ua=ua, ref="r", lang="en", ip=ip,
                  ws=ws, campaign=campaign, recipient=recipient)
    fields = click.entry()
    # (a value holding the separator is not a click the redirect writes:
    # models.click_values makes it a space)
    assume(len(fields[CLICK].split("\x1f")) == 11)
    click = Click.from_entry(fields)
    keys, args, got_ws, ref = packed_effect(Keys(), fields[CLICK])
    assert (keys, args) == click_effect(Keys(), click)
    assert got_ws == ws
    if args[2] == "human":
        assert ref == ClickRef(cid, campaign, recipient, code, ts, True,
                               (args[5], args[6], args[7]))
        assert type(ref) is ClickRef
    else:
        assert ref is None


def test_a_packed_click_that_is_not_one_raises_value_error() -> None:
    good = Click("c", 1, "i", "GET", "ua", "", "", "ip", "w", "k", "r").entry()[CLICK]
    for bad in (good + "\x1fextra", good.rsplit("\x1f", 1)[0],
                good.replace("\x1f1\x1f", "\x1fx\x1f")):  # 12 values, 10, a time not a number
        with pytest.raises(ValueError):
            packed_effect(Keys(), bad)
        with pytest.raises(ValueError):
            Click.from_entry({CLICK: bad})
