"""What a batch of one campaign's clicks adds to its counters: the pure half
of the fold (scripts/apply_click.lua holds the half that needs Redis's state).

A click is the nine values `worker.click_effect` makes: click id, row, kind
(human|preview|bot|head), code, recipient, device, os, browser, unix hour.

Most of what a click counts under does not depend on anything stored: its
clicks, its device, OS and browser, its hour, its kind. Those increments are
summed here, per field, so the script gets one number per field and not nine
values per click. What depends on the stored state (is the click new, is the
recipient a new clicker, a new clicker of this link or device, is this
their earliest click) the script decides, from each recipient's tokens and
hours gathered here.

The script writes nothing unless every click is new; if some were folded
before (a redelivery), it says which, and the worker sums the rest again.
The sums assume every click counts, which is what happens nearly always.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

ClickValues = Sequence[str]  # the nine values, as above (not models.Click)


class Batch:
    """A campaign's clicks, as apply_click's ARGV: every click id once (the
    first time it is in the batch), summed counters, the recipients' tokens.

    ARGV: n, then n (click id, row) pairs; then for each of the campaign's
    totals, per-link counters and time series: a count m and m (field,
    increment) pairs; then a count k and k (recipient, tokens, hours): the
    tokens a recipient's human clicks count under (link code, "device=<d>",
    "os=<o>", "browser=<b>"), each followed by a newline, in the order the
    clicks bring them; and the hours of those clicks that came before every
    earlier click of theirs in the batch, in batch order (so each is earlier
    than the one before it), each followed by a space. Nearly always that is
    one hour, their first click's; the script moves a clicker's first hour
    through them as it would click by click."""

    def __init__(self, clicks: Sequence[ClickValues]) -> None:
        self.clicks = clicks
        # Of the clicks in ARGV, their places in `clicks`: each id's first.
        self.positions: list[int] = list(range(len(clicks)))
        if len({click[0] for click in clicks}) < len(clicks):
            first: dict[str, int] = {}
            for i, click in enumerate(clicks):
                first.setdefault(click[0], i)
            self.positions = list(first.values())

    def drop(self, found: Sequence[int]) -> None:
        """Leave out the clicks the script found folded already (1-based, as in ARGV)."""
        gone = {self.positions[at - 1] for at in found}
        self.positions = [i for i in self.positions if i not in gone]

    def argv(self) -> list[str]:
        clicks = self.clicks
        ids: list[str] = [str(len(self.positions))]
        # Clicks that count under the same fields are counted once: a link's
        # repeat clicks, a campaign link's clickers on the same phone. (Each
        # such group's first click is the only one that can bring a recipient
        # a new token or an earlier hour, so the groups, in the order they
        # first come, give the recipients' tokens and hours too.)
        same: dict[tuple[str, str, str, str, str, str, str], int] = {}
        for i in self.positions:
            cid, row, kind, code, recipient, device, os_, browser, hour = clicks[i]
            ids += (cid, row)
            key = (kind, code, recipient, device, os_, browser, hour)
            same[key] = same.get(key, 0) + 1
        # Human clicks by device/OS/browser, by link and by hour; each name
        # made once a batch for each (string building was most of the time).
        by_class: dict[tuple[str, str, str], int] = {}
        by_code: dict[str, int] = {}
        by_hour: dict[str, int] = {}
        anonymous: dict[str, int] = {}
        non_human: dict[tuple[str, str, str], int] = {}
        people: dict[str, tuple[dict[str, None], list[str]]] = {}
        for (kind, code, recipient, device, os_, browser, hour), n in same.items():
            if kind != "human":
                key3 = (kind, code, hour)
                non_human[key3] = non_human.get(key3, 0) + n
                continue
            cls = (device, os_, browser)
            by_class[cls] = by_class.get(cls, 0) + n
            by_code[code] = by_code.get(code, 0) + n
            by_hour[hour] = by_hour.get(hour, 0) + n
            if not recipient:
                anonymous[hour] = anonymous.get(hour, 0) + n
                continue
            person = people.get(recipient)
            if person is None:
                person = people[recipient] = ({}, [hour])
            elif int(hour) < int(person[1][-1]):
                person[1].append(hour)
            tokens = person[0]
            tokens[code] = None
            for token in _names(cls)[2]:
                tokens[token] = None
        totals: dict[str, int] = {}
        links: dict[str, int] = {}
        series: dict[str, int] = {}
        if by_class:
            totals["clicks"] = sum(by_class.values())
        for cls, n in by_class.items():
            fields, link_fields, _ = _names(cls)
            for field in fields:
                totals[field] = totals.get(field, 0) + n
            for field in link_fields:
                links[field] = links.get(field, 0) + n
        for code, n in by_code.items():
            links[code + ":clicks"] = n
        for hour, n in by_hour.items():
            series["clicks:" + hour] = n
        if anonymous:
            totals["anonymous_clicks"] = sum(anonymous.values())
        for hour, n in anonymous.items():
            series["anonymous_clicks:" + hour] = n
        for (kind, code, hour), n in non_human.items():
            for field in ("non_human_clicks", "non_human:" + kind):
                totals[field] = totals.get(field, 0) + n
            field = code + ":non_human_clicks"
            links[field] = links.get(field, 0) + n
            for field in (f"non_human:{kind}:{hour}", "non_human_clicks:" + hour):
                series[field] = series.get(field, 0) + n
        out = ids
        for counters in (totals, links, series):
            out.append(str(len(counters)))
            for field, n in counters.items():
                out += (field, str(n))
        out.append(str(len(people)))
        for recipient, (tokens, hours) in people.items():
            out += (recipient, "\n".join(tokens) + "\n", " ".join(hours) + " ")
        return out

    def results(self) -> list[int]:
        """Per click: 1 if this batch folded it, 0 if it was there before or
        earlier in the batch (once the script has applied the batch)."""
        out = [0] * len(self.clicks)
        for i in self.positions:
            out[i] = 1
        return out


Names = tuple[tuple[str, str, str], tuple[str, str, str], tuple[str, str, str]]


@functools.lru_cache(maxsize=4096)
def _names(cls: tuple[str, str, str]) -> Names:
    """A device/OS/browser's fields in the totals and per-link counters, and its
    tokens (a campaign's clicks come from a few of each)."""
    device, os_, browser = cls
    tokens = (f"device={device}", f"os={os_}", f"browser={browser}")
    return ((f"device:{device}", f"os:{os_}", f"browser:{browser}"),
            (f"{tokens[0]}:clicks", f"{tokens[1]}:clicks", f"{tokens[2]}:clicks"), tokens)
