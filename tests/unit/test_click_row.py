"""The worker writes a click's row by hand; it must be exactly json.dumps's."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tracker.models import Click
from tracker.useragent import Client
from tracker.worker import click_row

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
