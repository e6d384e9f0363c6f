"""The worker against a real Redis: folds, exactly once, through redelivery and reclaim."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest
import redis
from starlette.testclient import TestClient

from tracker.keys import CLICK_GROUP, Keys
from tracker.models import Click
from tracker.settings import Settings
from tracker.store import connect
from tracker.worker import MAX_SOLO_ATTEMPTS, Entry, Worker

T = TypeVar("T")

PHONE = ("Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
         "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 WA4A/2.24.1.6")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Safari/537.36")
PREVIEW = "WhatsApp/2.23.20.0 A"


def with_worker(settings: Settings, fn: Callable[[Worker], Awaitable[T]],
                consumer: str = "w1") -> T:
    async def go() -> T:
        conn = connect(settings.effective_redis_url)
        try:
            worker = Worker(settings, conn, consumer)
            await worker.prepare()
            return await fn(worker)
        finally:
            await conn.aclose()

    return asyncio.run(go())


async def drain(worker: Worker) -> int:
    total = 0
    while n := await worker.run_once(block_ms=None):
        total += n
    return total


def report(client: TestClient, auth: dict[str, str], campaign: str = "bf") -> dict[str, Any]:
    res = client.get(f"/api/v1/campaigns/{campaign}/report", headers=auth)
    assert res.status_code == 200
    body: dict[str, Any] = res.json()
    return body


def links(client: TestClient, auth: dict[str, str], recipients: list[str]) -> list[str]:
    res = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/p", "campaign": "bf", "recipients": recipients})
    return [x["code"] for x in res.json()["links"]]


def test_clicks_are_folded_into_campaign_metrics(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    a, b, c, _ = links(client, auth, ["a", "b", "c", "d"])
    wide = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/all", "campaign": "bf"}).json()["code"]
    client.get(f"/{a}", headers={"user-agent": PREVIEW})  # WhatsApp fetched a preview
    client.get(f"/{a}", headers={"user-agent": PREVIEW})  # ... page and og:image
    client.get(f"/{a}", headers={"user-agent": PHONE})    # then the recipient tapped
    client.get(f"/{a}", headers={"user-agent": PHONE})    # and came back
    client.get(f"/{b}", headers={"user-agent": DESKTOP})
    client.head(f"/{b}", headers={"user-agent": DESKTOP})  # a scanner's HEAD
    client.get(f"/{c}", headers={"user-agent": "python-requests/2.31"})
    client.get(f"/{wide}", headers={"user-agent": PHONE})
    assert with_worker(settings, drain) == 8
    rep = report(client, auth)
    assert rep["links"] == 5 and rep["recipients"] == 4
    assert rep["clicks"] == 4  # a twice, b once, the campaign-wide link once
    assert rep["unique_clickers"] == 2  # a and b
    assert rep["anonymous_clicks"] == 1
    assert rep["non_human_clicks"] == 4
    assert rep["non_human"] == {"preview": 2, "bot": 1, "head": 1}
    assert rep["ctr_recipients"] == {"value": 0.5, "numerator": "unique_clickers",
                                     "denominator": "recipients"}
    assert rep["clicks_by"]["device"] == {"desktop": 1, "mobile": 3}
    assert rep["clicks_by"]["browser"]["WhatsApp in-app"] == 3


def test_a_redelivered_entry_counts_once(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    [a] = links(client, auth, ["a"])
    for _ in range(3):
        client.get(f"/{a}", headers={"user-agent": PHONE})
    stream = Keys(prefix).click_stream(0)

    async def crash_before_ack(worker: Worker) -> None:
        # Fold the entries but "crash" before XACK: they stay pending.
        [(_, entries)] = await worker.read(block_ms=None)
        calls = [worker_effect(worker, fields) for _, fields in entries]
        await worker._apply(calls)

    with_worker(settings, crash_before_ack)
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 3
    assert report(client, auth)["clicks"] == 3

    async def redeliver(worker: Worker) -> None:
        # The same consumer restarts and reads its own pending entries again (id 0).
        reply = await worker.redis.xreadgroup(CLICK_GROUP, "w1", {stream: "0"})
        [(name, entries)] = reply
        assert len(entries) == 3
        await worker.process(name, entries)

    with_worker(settings, redeliver)
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 0
    rep = report(client, auth)
    assert (rep["clicks"], rep["unique_clickers"]) == (3, 1)


HOUR = 3_600_000
T = 490_000 * HOUR  # an hour boundary, in ms


def _click(cid: str, campaign: str, recipient: str, at: int, ua: str = PHONE,
           code: str = "abc") -> Click:
    """A click of workspace "w", `at` hours after T."""
    return Click(code, T + at * HOUR + 1, cid, "GET", ua, "", "", "", "w", campaign, recipient)


def test_a_batch_folds_as_its_clicks_one_by_one(settings: Settings, r: redis.Redis) -> None:
    """apply_click reads a batch's state once and writes it once: the result
    must be what folding each click alone gives, duplicates in the batch and
    clicks that arrive before an earlier one included."""
    from tracker.worker import _click_keys, click_effect



    def batches(campaign: str) -> list[list[Click]]:
        return [[_click("c1", campaign, "r1", 2), _click("c2", campaign, "r1", 0, DESKTOP),
                 _click("c1", campaign, "r1", 2),  # the same entry twice in one batch
                 _click("c3", campaign, "r2", 1, code="xyz"), _click("c4", campaign, "", 0),
                 _click("c5", campaign, "r1", 1, PREVIEW), _click("c6", campaign, "r1", 3)],
                [_click("c2", campaign, "r1", 0, DESKTOP),  # delivered again
                 _click("c7", campaign, "r2", 0), _click("c8", campaign, "r2", 0)]]

    async def fold(worker: Worker) -> tuple[list[Any], list[Any]]:
        alone = [(await worker._apply([click_effect(worker.keys, c)]))[0]
                 for batch in batches("alone") for c in batch]
        together = [x for batch in batches("together")
                    for x in await worker._apply([click_effect(worker.keys, c)
                                                  for c in batch])]
        return alone, together

    alone, together = with_worker(settings, fold)
    assert alone == together == [1, 1, 0, 1, 1, 1, 1, 0, 1, 1]
    keys = Keys(settings.key_prefix)

    def state(campaign: str) -> list[Any]:
        return [r.smembers(k) if r.type(k) == "set" else r.hgetall(k)
                for k in _click_keys(keys, "w", campaign)]

    assert state("alone") == state("together")
    totals = r.hgetall(keys.aggregates("w", "together"))
    assert (totals["clicks"], totals["unique_clickers"], totals["anonymous_clicks"],
            totals["non_human_clicks"]) == ("7", "2", "1", "1")
    # each clicker at the hour of their earliest click, whatever the order,
    # and counted once under each link, device, os and browser they used
    states = {who: value.split("\n") for who, value in
              r.hgetall(keys.clicker_state("w", "together")).items()}
    assert {who: parts[0] for who, parts in states.items()} == {"r1": str(T // HOUR),
                                                                "r2": str(T // HOUR)}
    assert states["r1"][-1] == states["r2"][-1] == ""  # (each token ends in a newline)
    assert sorted(states["r1"][1:-1]) == sorted([
        "abc", "device=mobile", "os=Android", "browser=WhatsApp in-app",
        "device=desktop", "os=Windows", "browser=Chrome"])
    assert sorted(states["r2"][1:-1]) == sorted([
        "xyz", "abc", "device=mobile", "os=Android", "browser=WhatsApp in-app"])


def test_random_batches_fold_as_their_clicks_one_by_one(settings: Settings,
                                                         r: redis.Redis) -> None:
    """The worker sums a batch's counters and the script decides the rest
    (clickfold.Batch): for batches of any mix (repeat clicks, clicks of
    several links, devices and hours, anonymous and non-human ones, the same
    entry twice in a batch, entries folded in an earlier batch), the stored
    result must be what folding each click alone gives."""
    import random

    from tracker.worker import _click_keys, click_effect

    uas = [PHONE, DESKTOP, PREVIEW, "python-requests/2.31"]

    def scenario(seed: int) -> list[list[tuple[str, str, int, str, str]]]:
        rng = random.Random(seed)
        # an entry delivered again is the same entry: a pool of clicks, drawn with repeats
        pool = [(f"c{i}", rng.choice(["r1", "r2", "r3", ""]), rng.randrange(6),
                 rng.choice(uas), rng.choice(["abc", "xyz"])) for i in range(30)]
        return [[rng.choice(pool) for _ in range(rng.randrange(1, 16))] for _ in range(4)]

    def clicks(batch: list[tuple[str, str, int, str, str]], campaign: str) -> list[Click]:
        return [_click(cid, campaign, who, at, ua, code) for cid, who, at, ua, code in batch]

    seeds = range(25)

    async def fold(worker: Worker) -> list[tuple[list[Any], list[Any]]]:
        out = []
        for seed in seeds:
            batches = scenario(seed)
            alone = [(await worker._apply([click_effect(worker.keys, c)]))[0]
                     for batch in batches for c in clicks(batch, f"alone{seed}")]
            together = [x for batch in batches
                        for x in await worker._apply([click_effect(worker.keys, c)
                                                      for c in clicks(batch, f"together{seed}")])]
            out.append((alone, together))
        return out

    results = with_worker(settings, fold)
    keys = Keys(settings.key_prefix)

    def state(campaign: str) -> list[Any]:
        return [r.hgetall(k) for k in _click_keys(keys, "w", campaign)]

    for seed, (alone, together) in zip(seeds, results, strict=True):
        assert alone == together, seed
        assert state(f"alone{seed}") == state(f"together{seed}"), seed
        assert sum(alone) == len({c[0] for batch in scenario(seed) for c in batch}), seed
        assert r.hlen(keys.clicker_state("w", f"together{seed}")) > 0, seed


def worker_effect(worker: Worker, fields: dict[str, str] | None) -> Any:
    from tracker.models import Click
    from tracker.worker import click_effect

    assert fields is not None
    return click_effect(worker.keys, Click.from_entry(fields))


def test_a_dead_consumers_pending_entries_are_reclaimed_once(
    client: TestClient, auth: dict[str, str], redis_url: str, prefix: str, r: redis.Redis
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(redis_url, prefix, reclaim_idle_ms=100)
    codes = links(client, auth, ["a", "b"])
    for code in codes * 2:
        client.get(f"/{code}", headers={"user-agent": PHONE})
    stream = Keys(prefix).click_stream(0)

    async def dies_halfway(worker: Worker) -> None:
        [(_, entries)] = await worker.read(block_ms=None)
        # It folded the first two entries, then died (no ack, never came back).
        await worker._apply([worker_effect(worker, f) for _, f in entries[:2]])

    with_worker(settings, dies_halfway, consumer="dead")
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 4

    async def live(worker: Worker) -> int:
        await asyncio.sleep(0.15)  # past the reclaim idle time
        return await worker.reclaim()

    assert with_worker(settings, live, consumer="alive") == 4
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 0
    rep = report(client, auth)
    assert (rep["clicks"], rep["unique_clickers"]) == (4, 2)


def test_reclaim_never_takes_what_a_sibling_lane_is_folding(
    client: TestClient, auth: dict[str, str], redis_url: str, prefix: str, r: redis.Redis
) -> None:
    """Lanes of one process share its consumer name: one lane's reclaim must leave
    the entries another lane holds (each would count as one more delivery, and
    five make an entry poison)."""
    from tests.conftest import make_settings

    settings = make_settings(redis_url, prefix, reclaim_idle_ms=100)
    for code in links(client, auth, ["a", "b", "c"]):
        client.get(f"/{code}", headers={"user-agent": PHONE})
    stream = Keys(prefix).click_stream(0)

    async def lanes(worker: Worker) -> tuple[int, int, int]:
        [(_, entries)] = await worker.read(block_ms=None)
        worker._busy |= {(stream, entry_id) for entry_id, _ in entries}  # a lane holds them
        await asyncio.sleep(0.15)  # past the reclaim idle time
        while_held = await worker.reclaim()
        times = max(int(p["times_delivered"]) for p in await worker.redis.xpending_range(
            stream, CLICK_GROUP, min="-", max="+", count=10))
        worker._busy.clear()  # the lane died without acking
        await asyncio.sleep(0.15)
        return while_held, times, await worker.reclaim()

    assert with_worker(settings, lanes, consumer="w1") == (0, 1, 3)
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 0
    assert report(client, auth)["clicks"] == 3


def test_entries_we_did_not_write_are_acked_not_folded(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    [a] = links(client, auth, ["a"])
    stream = Keys(prefix).click_stream(0)
    r.xadd(stream, {"garbage": "1"})
    r.xadd(stream, {"code": a, "ts": "not-a-number", "id": "x", "ws": "acme", "campaign": "bf"})
    client.get(f"/{a}", headers={"user-agent": PHONE})
    worker_stats = with_worker(settings, _stats)
    assert worker_stats == (3, 1, 2)
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 0
    assert report(client, auth)["clicks"] == 1


def test_clicks_of_the_older_layout_still_count(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    # Entries a redirect of the previous release wrote (a field per value),
    # still in the stream at the upgrade, count like the packed ones around them.
    [a] = links(client, auth, ["a"])
    stream = Keys(prefix).click_stream(0)
    client.get(f"/{a}", headers={"user-agent": PHONE})
    now = int(time.time() * 1000)
    r.xadd(stream, {"code": a, "ts": str(now), "id": "old1", "method": "GET", "ua": PHONE,
                    "ref": "", "lang": "", "ip": "", "ws": "acme", "campaign": "bf",
                    "recipient": "a"})
    client.get(f"/{a}", headers={"user-agent": PHONE})
    assert with_worker(settings, _stats) == (3, 3, 0)
    rep = report(client, auth)
    assert (rep["clicks"], rep["unique_clickers"]) == (3, 1)
    old = [f for _, f in r.xrange(stream) if "code" in f]
    assert len(old) == 1 and Click.from_entry(old[0]).id == "old1"


def test_an_entry_of_many_clicks_folds_each_and_sets_aside_only_a_bad_one(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    """The redirect writes a tick's clicks as one entry (models.click_field):
    each is folded, once, and one the worker cannot read goes to the dead
    letters alone."""
    from tracker.models import CLICK, click_field

    a, b = links(client, auth, ["a", "b"])
    stream = Keys(prefix).click_stream(0)
    now = int(time.time() * 1000)

    def value(cid: str, code: str, who: str, ua: str = PHONE) -> str:
        return Click(code, now, cid, "GET", ua, "", "", "", "acme", "bf", who).entry()[CLICK]

    values = [value("p1", a, "a"), value("p2", a, "a", PREVIEW), "not a click",
              value("p3", b, "b", DESKTOP)]
    r.xadd(stream, {click_field(i): v for i, v in enumerate(values)})
    r.xadd(stream, {CLICK: value("p4", b, "b")})
    assert with_worker(settings, _stats) == (2, 4, 1)
    rep = report(client, auth)
    assert (rep["clicks"], rep["non_human_clicks"], rep["unique_clickers"]) == (3, 1, 2)
    [(_, dead)] = r.xrange(Keys(prefix).dead_letters())
    assert json.loads(dead["fields"]) == {CLICK: "not a click"}
    # delivered again (a crash before the XACK): nothing counts twice
    r.execute_command("XGROUP", "SETID", stream, CLICK_GROUP, "0")
    with_worker(settings, drain)
    assert report(client, auth)["clicks"] == 3


def _entries_of_many_clicks(r: redis.Redis, prefix: str, code: str) -> str:
    """Six entries of seven clicks of recipient "a" on `code`, as the redirect
    writes a tick's clicks (models.click_field); returns the stream."""
    from tracker.models import CLICK, click_field

    stream = Keys(prefix).click_stream(0)
    now = int(time.time() * 1000)
    for e in range(6):
        r.xadd(stream, {click_field(i): Click(code, now, f"e{e}c{i}", "GET", PHONE, "", "", "",
                                              "acme", "bf", "a").entry()[CLICK]
                        for i in range(7)})
    return stream


def test_entries_of_many_clicks_are_folded_a_batch_of_clicks_at_a_time(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    """However many clicks a read brings, no fold script gets more than about
    TRACKER_WORKER_BATCH of them: a script holds Redis, and the redirects'
    writes wait behind it. A round counts the clicks it read, not the entries
    (the lanes' measure of a backlog: more lanes, no lingering)."""
    from dataclasses import replace

    [a] = links(client, auth, ["a"])
    _entries_of_many_clicks(r, prefix, a)
    sizes: list[int] = []

    async def fold(worker: Worker) -> None:
        apply = worker._apply

        async def spy(calls: Sequence[tuple[tuple[str, ...], list[str]]]) -> list[int]:
            sizes.append(len(calls))
            return await apply(calls)

        worker._apply = spy  # type: ignore[method-assign]
        assert await worker.run_once(block_ms=None) == 42

    with_worker(replace(settings, worker_batch=10), fold)
    assert sum(sizes) == 42 and max(sizes) <= 10 + 6
    assert report(client, auth)["clicks"] == 42


def test_a_failed_batch_of_a_read_leaves_the_whole_read_unacknowledged(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    """A read's batches fold side by side; if one fails, the read is not
    acknowledged (redelivered, it folds again without counting twice)."""
    from dataclasses import replace

    [a] = links(client, auth, ["a"])
    stream = _entries_of_many_clicks(r, prefix, a)

    async def second_fails(worker: Worker) -> None:
        apply, made = worker._apply, []

        async def flaky(calls: Sequence[tuple[tuple[str, ...], list[str]]]) -> list[int]:
            made.append(len(calls))
            if len(made) == 2:
                raise RuntimeError("a batch failed")
            return await apply(calls)

        worker._apply = flaky  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="a batch failed"):
            await worker.run_once(block_ms=None)
        assert len(made) == 3  # every batch ran; the read waited for all of them

    small = replace(settings, worker_batch=10)
    with_worker(small, second_fails)
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 6
    assert report(client, auth)["clicks"] == 28  # the two batches that folded
    r.execute_command("XGROUP", "SETID", stream, CLICK_GROUP, "0")
    with_worker(small, drain)
    assert report(client, auth)["clicks"] == 42


async def _stats(worker: Worker) -> tuple[int, int, int]:
    await drain(worker)
    return worker.stats.read, worker.stats.applied, worker.stats.invalid


def test_worker_stops_on_signal_after_acking(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    [a] = links(client, auth, ["a"])
    client.get(f"/{a}", headers={"user-agent": PHONE})

    async def run_then_stop(worker: Worker) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        while worker.stats.read < 1:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    with_worker(settings, run_then_stop)
    assert r.xpending(Keys(prefix).click_stream(0), CLICK_GROUP)["pending"] == 0
    assert report(client, auth)["clicks"] == 1


def test_a_running_worker_does_not_collect_garbage_several_times_a_batch(
        settings: Settings) -> None:
    # A batch's few thousand objects die together at its end, by reference
    # counting: the young generation's threshold stays above them.
    import gc

    before = gc.get_threshold()

    async def run_then_stop(worker: Worker) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)

    try:
        with_worker(settings, run_then_stop)
        assert gc.get_threshold()[0] >= 10 * settings.worker_batch
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_a_running_worker_reports_its_counters_once_a_second_and_when_it_stops(
        settings: Settings, r: redis.Redis, prefix: str) -> None:
    from dataclasses import replace

    published: list[int] = []

    async def run_then_stop(worker: Worker) -> None:
        publish = worker.publish_stats

        async def counted() -> None:
            published.append(worker.stats.read)
            await publish()

        worker.publish_stats = counted  # type: ignore[method-assign]
        stream = worker.keys.click_stream(0)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for n in range(20):  # rounds of a few ms each, for about half a second
            await worker.redis.xadd(stream, Click(  # type: ignore[arg-type]
                "abc", int(time.time() * 1000), f"c{n}", "GET", PHONE, "", "", "", "w",
                "stats", f"r{n}").entry())
            await asyncio.sleep(0.025)
        while worker.stats.read < 20:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    with_worker(replace(settings, worker_linger_ms=0, worker_block_ms=10), run_then_stop)
    # at the first round, then at the stop (not once a round: there were about 20)
    assert len(published) == 2 and published[-1] == 20
    stats = json.loads(r.hget(Keys(prefix).worker_stats(), "w1") or "{}")
    assert stats["read"] == 20


def test_poison_entries_go_to_the_dead_letter_stream(
    client: TestClient, auth: dict[str, str], redis_url: str, prefix: str, r: redis.Redis
) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import make_settings

    settings = make_settings(redis_url, prefix, reclaim_idle_ms=100)
    a, b = links(client, auth, ["a", "b"])
    keys = Keys(prefix)
    stream = keys.click_stream(0)
    r.xadd(stream, {"garbage": "1"})  # unreadable: set aside at once
    client.get(f"/{a}", headers={"user-agent": PHONE})
    client.get(f"/{b}", headers={"user-agent": PHONE})
    doomed = [e for e, _ in r.xrange(stream)][1]  # a's click

    async def crashes_every_time(worker: Worker) -> list[int]:
        # Both valid entries were in flight when five consumers died before
        # acking (a crash takes every entry in hand with it): suspects, from
        # now on folded alone. b's folds; a's fold keeps failing (here: a bug
        # it triggers), so after three failures alone it is poison.
        for _ in range(5):
            await worker.redis.xclaim(stream, CLICK_GROUP, "doomed", 0,
                                      [e for e, _ in r.xrange(stream)][1:])
        real = worker._clicks

        async def broken(s: str, entries: Sequence[Entry]) -> None:
            if any(entry_id == doomed for entry_id, _ in entries):
                raise RuntimeError("a bug this entry triggers")
            await real(s, entries)

        worker._clicks = broken  # type: ignore[method-assign]
        folded = []
        for _ in range(MAX_SOLO_ATTEMPTS + 1):
            await asyncio.sleep(0.15)
            folded.append(await worker.reclaim())
        return folded

    async def first_read(worker: Worker) -> None:
        [(_, entries)] = await worker.read(block_ms=None)
        await worker.process(stream, entries[:1])  # the garbage: dead-lettered and acked

    with_worker(settings, first_read)
    assert with_worker(settings, crashes_every_time) == [1, 0, 0, 0]
    dead = [f for _, f in r.xrange(keys.dead_letters())]
    assert [d["error"].split(":")[0] for d in dead] == [
        "invalid click", "delivered 10 times, failed 3 times alone"]
    assert "a bug this entry triggers" in dead[1]["error"]
    assert Click.from_entry(json.loads(dead[1]["fields"])).code == a  # the raw entry, kept
    assert json.loads(dead[0]["fields"]) == {"garbage": "1"}
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 0
    assert not r.exists(keys.solo_attempts(stream))
    assert report(client, auth)["clicks"] == 1  # b's, folded alone
    status = subprocess.run(
        [sys.executable, "-m", "tracker", "worker", "status"], capture_output=True, text=True,
        env={**os.environ, "REDIS_URL": redis_url, "TRACKER_KEY_PREFIX": prefix},
        check=True)
    doc = json.loads(status.stdout)
    assert doc["dead_letters"]["count"] == 2
    assert doc["streams"][stream]["pending"] == 0


def test_trim_removes_only_what_was_read_and_acknowledged(
    client: TestClient, auth: dict[str, str], redis_url: str, prefix: str, r: redis.Redis
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(redis_url, prefix, stream_retention_ms=0)
    [a] = links(client, auth, ["a"])
    for _ in range(3):
        client.get(f"/{a}", headers={"user-agent": PHONE})
    stream = Keys(prefix).click_stream(0)
    ids = [i for i, _ in r.xrange(stream)]

    async def partly(worker: Worker) -> int:
        [(name, entries)] = await worker.read(block_ms=None)
        await worker.process(name, entries[:2])  # the third stays pending (a crash)
        return await worker.trim()

    client.get(f"/{a}", headers={"user-agent": PHONE})  # a fourth, not read at all
    assert with_worker(settings, partly) == 2
    assert [i for i, _ in r.xrange(stream)][:1] == [ids[2]]  # pending and unread are kept
    assert r.xlen(stream) == 2

    async def finish(worker: Worker) -> int:
        await asyncio.sleep(0.05)
        await worker.redis.xautoclaim(stream, CLICK_GROUP, "w1", 0)
        await drain(worker)
        [(name, entries)] = await worker.redis.xreadgroup(CLICK_GROUP, "w1", {stream: "0"})
        await worker.process(name, entries)
        return await worker.trim()

    assert with_worker(settings, finish) == 2
    assert r.xlen(stream) == 0
    assert report(client, auth)["clicks"] == 4  # trimming never changes a number


def test_raw_rows_past_retention_go_and_aggregates_stay(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    import time

    client.patch("/api/v1/workspace", headers=auth, json={"raw_retention_days": 30})
    [a] = links(client, auth, ["a"])
    for _ in range(3):
        client.get(f"/{a}", headers={"user-agent": PHONE})
    with_worker(settings, drain)
    rows = Keys(prefix).click_rows("acme", "bf")
    assert r.hlen(rows) == 3
    now = time.time_ns() // 1_000_000
    assert with_worker(settings, lambda w: w.sweep_rows(now + 29 * 86_400_000)) == 0
    assert with_worker(settings, lambda w: w.sweep_rows(now + 31 * 86_400_000)) == 3
    assert r.hlen(rows) == 0
    rep = report(client, auth)
    assert (rep["clicks"], rep["unique_clickers"]) == (3, 1)  # the numbers stay


def test_a_lane_survives_an_unexpected_error(settings: Settings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A round that fails with something other than a Redis error (uvloop's
    RuntimeError on a closed transport, a bug) is logged and retried: it must
    not take the process and its sibling lanes down."""
    import tracker.worker

    monkeypatch.setattr(tracker.worker.asyncio, "sleep", _no_wait)

    async def run(worker: Worker) -> tuple[int, int]:
        stop = asyncio.Event()
        rounds = 0

        async def flaky(block_ms: int | None = None) -> int:
            nonlocal rounds
            rounds += 1
            if rounds == 1:
                raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
            if rounds == 3:
                stop.set()
            return 0

        worker.run_once = flaky  # type: ignore[method-assign]
        await asyncio.wait_for(worker._lane(stop), 5)
        return rounds, worker.stats.errors

    assert with_worker(settings, run) == (3, 1)


async def _no_wait(delay: float) -> None:
    return None


def test_clickers_of_the_older_state_layout_count_as_before(
        settings: Settings, r: redis.Redis) -> None:
    """Campaigns folded before the clicker state (sets of clickers and of
    "token recipient", a hash of first hours) keep their counts exactly: the
    same clicks give the same numbers as if the older script had folded them
    all, including clickers from before first hours were kept."""
    from pathlib import Path

    from tracker.worker import _click_keys, click_effect

    old_source = (Path(__file__).parent.parent / "fixtures" / "apply_click_sets.lua").read_text()
    old_sha = r.script_load(old_source)
    keys = Keys(settings.key_prefix)


    def before(campaign: str) -> list[Click]:
        return [_click("c1", campaign, "r1", 2), _click("c2", campaign, "r2", 1, DESKTOP, "xyz"),
                _click("c3", campaign, "r3", 4), _click("c4", campaign, "r5", 1),
                _click("c5", campaign, "r5", 1, DESKTOP)]

    def after(campaign: str) -> list[Click]:
        return [_click("c6", campaign, "r1", 3),  # nothing new about r1
                _click("c7", campaign, "r1", 0, DESKTOP),  # a new device, an earlier hour
                _click("c8", campaign, "r2", 1),  # a new link and device for r2
                _click("c9", campaign, "r3", 5),  # r3 had no first hour
                _click("c10", campaign, "r4", 2, code="xyz"),  # a new clicker
                _click("c1", campaign, "r1", 2),  # delivered again
                _click("c11", campaign, "", 1), _click("c12", campaign, "r5", 0, PREVIEW),
                _click("c13", campaign, "r5", 3, DESKTOP)]

    def fold_old(clicks: list[Click]) -> list[Any]:
        effects = [click_effect(keys, c) for c in clicks]
        return list(r.evalsha(old_sha, 7, *effects[0][0][:7],  # type: ignore[arg-type]
                              *[a for _, args in effects for a in args]))

    def counters(campaign: str) -> list[dict[str, str]]:
        k = _click_keys(keys, "w", campaign)
        return [r.hgetall(k[1]), r.hgetall(k[2]), r.hgetall(k[5])]

    for campaign in ("reference", "upgraded"):
        fold_old(before(campaign))
        # r3 clicked before first hours were kept: a clicker without one
        r.hdel(keys.first_clicks("w", campaign), "r3")
    expected = fold_old(after("reference"))

    async def fold_new(worker: Worker) -> list[Any]:
        return await worker._apply([click_effect(worker.keys, c) for c in after("upgraded")])

    assert with_worker(settings, fold_new) == expected == [1, 1, 1, 1, 1, 0, 1, 1, 1]
    assert counters("upgraded") == counters("reference")
    totals = counters("upgraded")[0]
    assert (totals["clicks"], totals["unique_clickers"]) == ("12", "5")
    # the older keys are read, never written; the state holds who clicked since
    assert not r.exists(keys.clicker_state("w", "reference"))
    state = r.hgetall(keys.clicker_state("w", "upgraded"))
    assert sorted(state) == ["r1", "r2", "r3", "r4", "r5"]
    assert state["r1"].startswith(f"{T // HOUR}\n~\n")  # r1's first hour moved
    assert state["r3"].startswith(f"{T // HOUR + 5}\n~\n")
    assert state["r4"].split("\n")[1] == "xyz"  # a new clicker has no older state

    # and the upgraded campaign folds on as a campaign folded only by the
    # current script does
    async def fold_more(worker: Worker) -> list[Any]:
        more = [_click("c20", "upgraded", "r1", 1, DESKTOP, "xyz"),
                _click("c21", "upgraded", "r5", 0)]
        return await worker._apply([click_effect(worker.keys, c) for c in more])

    with_worker(settings, fold_more)
    fold_old([_click("c20", "reference", "r1", 1, DESKTOP, "xyz"),
              _click("c21", "reference", "r5", 0)])
    assert counters("upgraded") == counters("reference")


def test_a_worker_that_keeps_up_lets_clicks_gather_into_batches(settings: Settings) -> None:
    """After a short read (no backlog) a lane waits TRACKER_WORKER_LINGER_MS
    before reading again: clicks that come one by one meanwhile are folded as
    one batch, not one round (two scripts, a read and an ack) each."""
    from dataclasses import replace

    sizes: list[int] = []

    async def run(worker: Worker) -> None:
        read = worker.read

        async def recorded(block_ms: int | None) -> list[tuple[str, list[Entry]]]:
            got = await read(block_ms)
            sizes.extend(len(entries) for _, entries in got)
            return got

        worker.read = recorded  # type: ignore[method-assign]
        stream = worker.keys.click_stream(0)

        async def click(n: int) -> None:
            await worker.redis.xadd(stream, Click(  # type: ignore[arg-type]
                "abc", int(time.time() * 1000), f"c{n}", "GET", PHONE, "", "", "", "w",
                "linger", f"r{n}").entry())

        async def folded(n: int) -> None:
            while worker.stats.read < n:
                await asyncio.sleep(0.005)

        stop = asyncio.Event()
        lanes = asyncio.create_task(worker.run(stop))
        await click(0)
        await asyncio.wait_for(folded(1), 5)
        for n in range(1, 6):  # one every 20 ms, well inside the 400 ms wait
            await click(n)
            await asyncio.sleep(0.02)
        await asyncio.wait_for(folded(6), 5)
        stop.set()
        await asyncio.wait_for(lanes, 5)

    with_worker(replace(settings, worker_linger_ms=400, worker_block_ms=50), run)
    assert [n for n in sizes if n] == [1, 5]


def test_a_broken_click_in_an_entry_of_many_is_set_aside_alone(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis
) -> None:
    """An entry of the fast path holds a tick's clicks: one that cannot be read
    goes to the dead letters with its own value; the others fold, once each."""
    from tracker.models import CLICK, click_field

    [a] = links(client, auth, ["a"])
    client.get(f"/{a}", headers={"user-agent": PHONE})
    keys = Keys(settings.key_prefix)
    stream = keys.click_stream(0)
    [(_, fields)] = r.xrange(stream)
    click = Click.from_entry(fields)
    broken = click._replace(id="x2").entry()[CLICK].replace(f"\x1f{click.ts}\x1f", "\x1fsoon\x1f")
    values = [click._replace(id="x1").entry()[CLICK], broken,
              click._replace(id="x3", ts=click.ts + 1).entry()[CLICK]]
    r.xadd(stream, {click_field(i): v for i, v in enumerate(values)})
    with_worker(settings, drain)
    [(_, dead)] = r.xrange(keys.dead_letters())
    assert dead["error"].startswith("invalid click: ValueError")
    assert json.loads(dead["fields"]) == {CLICK: broken}
    assert report(client, auth)["clicks"] == 3  # the first, x1 and x3
    assert r.xpending(stream, CLICK_GROUP)["pending"] == 0


def test_a_large_click_join_indexes_every_click_and_finds_waiting_orders(
    api_key: str, settings: Settings, r: redis.Redis
) -> None:
    """The click join of a batch larger than the script's slices (1,000 values):
    every click in the index, each recipient's in their history at its time,
    and the orders that wait for a click id or are a recipient's found."""
    from tracker.attribution import ClickRef

    keys = Keys(settings.key_prefix)
    ws = "acme"  # (api_key's)
    refs = ([ClickRef(f"b{i}", "bf", "big", "B", 1_000 + i) for i in range(1_100)]
            + [ClickRef("s0", "bf", "small", "S", 5)]
            + [ClickRef(f"n{i}", "bf", "", "N", 7) for i in range(199)])
    r.sadd(keys.recipient_orders(ws, "small"), "o-small")
    r.hset(keys.click_waits(ws), "b1099", json.dumps(["o-waiting"]))
    asked: list[str] = []

    async def join(worker: Worker) -> None:
        cfg = await worker.config(ws)
        assert cfg is not None

        async def order(ws_: str, order_id: str, cfg_: object) -> list[object]:
            asked.append(order_id)
            return []

        worker.joins.order = order  # type: ignore[assignment,method-assign]
        await worker.joins.clicks(ws, refs, cfg)

    with_worker(settings, join)
    assert sorted(asked) == ["o-small", "o-waiting"]
    index = r.hgetall(keys.click_index(ws))
    assert len(index) == 1_300
    assert all(ClickRef.decode(ref.click_id, index[ref.click_id]) == ref for ref in refs)
    big = r.zrange(keys.recipient_clicks(ws, "big"), 0, -1, withscores=True)
    assert big == [(f"b{i}", 1_000.0 + i) for i in range(1_100)]
    assert r.zrange(keys.recipient_clicks(ws, "small"), 0, -1, withscores=True) == [("s0", 5.0)]
    assert r.get(keys.join_version(ws)) == "1"
