"""The worker writes a click's row by hand; it must be exactly json.dumps's."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tracker.keys import Keys
from tracker.models import Click
from tracker.useragent import Client, classify
from tracker.worker import click_effect, click_row

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
