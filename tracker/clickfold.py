"""What a batch of one campaign's clicks adds to its counters: the pure half
of the fold (scripts/apply_click.lua holds the half that needs Redis's state).

A click is the nine values `worker.click_effect` makes: click id, row, kind
(human|preview|bot|head), code, recipient, device, os, browser, unix hour.

Most of what a click counts under does not depend on anything stored: its
clicks, its device, OS and browser, its hour, its kind. Those increments are
summed here, per field, so the script gets one number per field and not nine
values per click. What depends on the stored state (is the click new, is the
recipient a new clicker, a new clicker of this link or device, did they
click earlier before) the script decides, from each recipient's tokens and
hours gathered here.

The script writes nothing unless every click is new; if some were folded
before (a redelivery), it says which, and the worker sums the rest again.
The sums assume every click counts, which is what happens nearly always.
"""

from __future__ import annotations

from collections.abc import Sequence

Click = Sequence[str]  # the nine values, as above


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

    def __init__(self, clicks: Sequence[Click]) -> None:
        self.clicks = clicks
        self.positions: list[int] = []  # of the clicks in ARGV, in `clicks`
        seen: set[str] = set()
        for i, click in enumerate(clicks):
            if click[0] not in seen:
                seen.add(click[0])
                self.positions.append(i)

    def drop(self, found: Sequence[int]) -> None:
        """Leave out the clicks the script found folded already (1-based, as in ARGV)."""
        gone = {self.positions[at - 1] for at in found}
        self.positions = [i for i in self.positions if i not in gone]

    def argv(self) -> list[str]:
        clicks = self.clicks
        totals: dict[str, int] = {}
        links: dict[str, int] = {}
        series: dict[str, int] = {}
        ids: list[str] = [str(len(self.positions))]
        # Clicks that count under the same fields are counted once: a link's
        # repeat clicks, a campaign link's clickers on the same phone.
        same: dict[tuple[str, str, bool, str, str, str, str], int] = {}
        people: dict[str, tuple[dict[str, None], list[int]]] = {}
        for i in self.positions:
            cid, row, kind, code, recipient, device, os_, browser, hour = clicks[i]
            ids += (cid, row)
            key = (kind, code, recipient == "", device, os_, browser, hour)
            same[key] = same.get(key, 0) + 1
            if kind == "human" and recipient:
                person = people.get(recipient)
                if person is None:
                    person = people[recipient] = ({}, [])
                tokens, hours = person
                tokens[code] = None
                tokens["device=" + device] = None
                tokens["os=" + os_] = None
                tokens["browser=" + browser] = None
                h = int(hour)
                if not hours or h < hours[-1]:
                    hours.append(h)
        for (kind, code, anonymous, device, os_, browser, hour), n in same.items():
            if kind == "human":
                for field in ("clicks", "device:" + device, "os:" + os_, "browser:" + browser):
                    totals[field] = totals.get(field, 0) + n
                for field in (code + ":clicks", f"device={device}:clicks",
                              f"os={os_}:clicks", f"browser={browser}:clicks"):
                    links[field] = links.get(field, 0) + n
                field = "clicks:" + hour
                series[field] = series.get(field, 0) + n
                if anonymous:
                    totals["anonymous_clicks"] = totals.get("anonymous_clicks", 0) + n
                    field = "anonymous_clicks:" + hour
                    series[field] = series.get(field, 0) + n
            else:
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
            out += (recipient, "".join(t + "\n" for t in tokens),
                    "".join(f"{h} " for h in hours))
        return out

    def results(self) -> list[int]:
        """Per click: 1 if this batch folded it, 0 if it was there before or
        earlier in the batch (once the script has applied the batch)."""
        out = [0] * len(self.clicks)
        for i in self.positions:
            out[i] = 1
        return out

