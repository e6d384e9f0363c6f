"""What the worker sums of a batch of clicks before apply_click sees it."""

from __future__ import annotations

from typing import Any

import pytest

from tracker.clickfold import Batch

H = 490_000  # a unix hour


def click(cid: str, kind: str = "human", code: str = "abc", recipient: str = "r1",
          device: str = "mobile", os: str = "Android", browser: str = "Chrome",
          hour: int = H) -> list[str]:
    return [cid, f"row-{cid}", kind, code, recipient, device, os, browser, str(hour)]


def parse(argv: list[str]) -> dict[str, Any]:
    """ARGV back into its parts (the layout apply_click reads)."""
    n = int(argv[0])
    out: dict[str, Any] = {"clicks": list(zip(argv[1:2 * n:2], argv[2:2 * n + 1:2],
                                              strict=True))}
    at = 2 * n + 1
    for part in ("totals", "links", "series"):
        m = int(argv[at])
        out[part] = {argv[at + 1 + 2 * j]: int(argv[at + 2 + 2 * j]) for j in range(m)}
        at += 1 + 2 * m
    k = int(argv[at])
    out["recipients"] = [tuple(argv[at + 1 + 3 * j:at + 4 + 3 * j]) for j in range(k)]
    assert at + 1 + 3 * k == len(argv)
    return out


def test_a_human_click_counts_under_its_fields_and_brings_its_recipients_tokens() -> None:
    assert parse(Batch([click("c1")]).argv()) == {
        "clicks": [("c1", "row-c1")],
        "totals": {"clicks": 1, "device:mobile": 1, "os:Android": 1, "browser:Chrome": 1},
        "links": {"abc:clicks": 1, "device=mobile:clicks": 1, "os=Android:clicks": 1,
                  "browser=Chrome:clicks": 1},
        "series": {f"clicks:{H}": 1},
        "recipients": [("r1", "abc\ndevice=mobile\nos=Android\nbrowser=Chrome\n", f"{H} ")],
    }


def test_clicks_of_the_same_fields_are_summed() -> None:
    got = parse(Batch([click("c1"), click("c2", recipient="r2"), click("c3")]).argv())
    assert got["totals"]["clicks"] == got["links"]["abc:clicks"] == 3
    assert got["series"] == {f"clicks:{H}": 3}
    assert [r for r, _, _ in got["recipients"]] == ["r1", "r2"]


@pytest.mark.parametrize(("kind", "recipient", "totals", "links", "series", "recipients"), [
    ("human", "", {"clicks": 1, "anonymous_clicks": 1, "device:mobile": 1, "os:Android": 1,
                   "browser:Chrome": 1},
     {"abc:clicks": 1, "device=mobile:clicks": 1, "os=Android:clicks": 1,
      "browser=Chrome:clicks": 1},
     {f"clicks:{H}": 1, f"anonymous_clicks:{H}": 1}, []),
    ("preview", "r1", {"non_human_clicks": 1, "non_human:preview": 1},
     {"abc:non_human_clicks": 1},
     {f"non_human:preview:{H}": 1, f"non_human_clicks:{H}": 1}, []),
    ("head", "", {"non_human_clicks": 1, "non_human:head": 1}, {"abc:non_human_clicks": 1},
     {f"non_human:head:{H}": 1, f"non_human_clicks:{H}": 1}, []),
])
def test_anonymous_and_non_human_clicks(kind: str, recipient: str, totals: dict[str, int],
                                        links: dict[str, int], series: dict[str, int],
                                        recipients: list[Any]) -> None:
    got = parse(Batch([click("c1", kind=kind, recipient=recipient)]).argv())
    assert (got["totals"], got["links"], got["series"], got["recipients"]) == (
        totals, links, series, recipients)


def test_a_recipients_tokens_come_once_in_click_order() -> None:
    got = parse(Batch([click("c1"), click("c2", code="xyz", device="desktop", os="Windows"),
                       click("c3")]).argv())
    assert got["recipients"] == [("r1", "abc\ndevice=mobile\nos=Android\nbrowser=Chrome\n"
                                        "xyz\ndevice=desktop\nos=Windows\n", f"{H} ")]


@pytest.mark.parametrize(("hours", "chain"), [
    ([5], "5"),
    ([5, 7, 9], "5"),  # later clicks never move a first hour
    ([5, 7, 3, 4, 1], "5 3 1"),  # each earlier than every click before it
    ([2, 2, 1, 1], "2 1"),
])
def test_a_recipients_hours_are_those_earlier_than_all_before(hours: list[int],
                                                               chain: str) -> None:
    batch = Batch([click(f"c{i}", hour=H + h) for i, h in enumerate(hours)])
    [(_, _, got)] = parse(batch.argv())["recipients"]
    assert got == "".join(f"{H + int(h)} " for h in chain.split())


def test_an_id_twice_in_a_batch_counts_once() -> None:
    batch = Batch([click("c1"), click("c2"), click("c1", device="desktop")])
    got = parse(batch.argv())
    assert got["clicks"] == [("c1", "row-c1"), ("c2", "row-c2")]
    assert got["totals"]["clicks"] == 2 and "device:desktop" not in got["totals"]
    assert batch.results() == [1, 1, 0]


def test_clicks_folded_before_are_dropped_and_the_rest_summed_again() -> None:
    batch = Batch([click("c1"), click("c1"), click("c2", kind="bot"), click("c3", hour=H - 1)])
    batch.drop([1, 3])  # ARGV's first and third: c1 and c3
    got = parse(batch.argv())
    assert got["clicks"] == [("c2", "row-c2")]
    assert got["totals"] == {"non_human_clicks": 1, "non_human:bot": 1}
    assert got["recipients"] == []
    assert batch.results() == [0, 0, 1, 0]
    batch.drop([1])
    assert parse(batch.argv())["clicks"] == [] and batch.results() == [0, 0, 0, 0]
