"""Arrival order is not event order: the same events, processed one by one by the
real worker in any order (and some twice), always give identical reports."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings
from tracker.attribution import HOUR_MS, ClickRef
from tracker.events import Event
from tracker.identity import phone_hash
from tracker.keys import Keys
from tracker.metrics import campaign_report
from tracker.models import Click
from tracker.store import Store, connect
from tracker.worker import Worker

T0 = 1_790_000_000_000
WS = "acme"
PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/121 Mobile " \
           "Safari/537.36 WA4A/2.24.16.76"
PREVIEW = "WhatsApp/2.23.20.0 A"
SECRET = "join-test-secret"


def phone(r: str) -> str:
    return f"+4917600000{r[1:]:0>3}"


def ph(r: str) -> str:
    h = phone_hash(SECRET, phone(r))
    assert h is not None
    return h


Entry = tuple[str, dict[str, str]]


def click(cid: str, r: str, campaign: str, ts: int, ua: str = PHONE_UA) -> Entry:
    return ("click", Click(f"code{r}{campaign}", ts, cid, "GET", ua, "", "", "", WS, campaign,
                           r).entry())


def event(kind: str, key: str, ts: int, src: str = "api", **data: Any) -> Entry:
    return ("event", Event(kind, WS, src, key, ts, data).fields(ts))


def pixel(query: str, ts: int) -> tuple[str, dict[str, str]]:
    return ("event", {"type": "pixel", "ws": "", "src": "pixel", "key": "", "ts": str(ts),
                      "rcv": str(ts), "d": query, "ua": "", "ref": "", "ip": "", "dnt": ""})


def scenario() -> list[tuple[str, dict[str, str]]]:
    """Two campaigns, six recipients: every join the worker makes, once."""
    e: list[tuple[str, dict[str, str]]] = []
    for i, r in enumerate(["r1", "r2", "r3", "r4", "r5", "r6"]):
        e.append(event("message", f"msg:wA{r}", T0, message_id=f"wA{r}", campaign="A",
                       recipient=r, phone_hash=ph(r)))
        # statuses: read without delivered for r2, failed for r6, duplicates for r1
        if r == "r6":
            e.append(event("status", f"wa:wA{r}:failed", T0 + 60_000, "whatsapp",
                           message_id=f"wA{r}", status="failed"))
            continue
        e.append(event("status", f"wa:wA{r}:sent", T0 + 1000, "whatsapp",
                       message_id=f"wA{r}", status="sent"))
        if r != "r2":
            e.append(event("status", f"wa:wA{r}:delivered", T0 + 2000 + i, "whatsapp",
                           message_id=f"wA{r}", status="delivered"))
        if r in ("r1", "r2", "r3"):
            e.append(event("status", f"wa:wA{r}:read", T0 + 9000, "whatsapp",
                           message_id=f"wA{r}", status="read"))
    e.append(e[2])  # a duplicate delivery of a status
    # campaign B a day later to r1 and r2, named by biz_opaque_callback_data only
    for r in ("r1", "r2"):
        e.append(event("status", f"wa:wB{r}:delivered", T0 + 24 * HOUR_MS, "whatsapp",
                       message_id=f"wB{r}", status="delivered", campaign="B", recipient=r,
                       phone_hash=ph(r)))
    # clicks: previews everywhere, people on r1 (A, then B), r2 (A), r3 (A)
    e += [click("pv1", "r1", "A", T0 + 5000, PREVIEW), click("pv2", "r4", "A", T0 + 5000,
                                                              PREVIEW)]
    e += [click("c1", "r1", "A", T0 + HOUR_MS), click("c1b", "r1", "A", T0 + 2 * HOUR_MS),
          click("c2", "r2", "A", T0 + 3 * HOUR_MS), click("c3", "r3", "A", T0 + 4 * HOUR_MS),
          click("c4", "r1", "B", T0 + 25 * HOUR_MS), click("c5", "r2", "B", T0 + 26 * HOUR_MS)]
    # orders
    e.append(event("order", "shop:o1", T0 + 5 * HOUR_MS, "shopify", order_id="o1",
                   total="100.00", currency="EUR", click_id="c1", test=False))  # rule 1 -> A
    e.append(pixel("w=acme&e=purchase&oid=o1&v=120.00&cur=EUR&cid=c1", T0 + 5 * HOUR_MS))
    e.append(event("refund", "shop:rf1", T0 + 30 * HOUR_MS, "shopify", order_id="o1",
                   refund_id="rf1", amount="30.00", currency="EUR"))
    e.append(event("order", "shop:o2", T0 + 30 * HOUR_MS, "shopify", order_id="o2",
                   total="50.00", currency="EUR", phone_hashes=[ph("r2")], test=False))
    # ^ rule 2: r2's last click before the order is c5 (campaign B)
    e.append(event("order", "shop:o3", T0 + 6 * HOUR_MS, "shopify", order_id="o3",
                   total="70.00", currency="EUR", phone_hashes=[ph("r5")], test=False))
    # ^ r5 never clicked: not attributed
    e.append(event("order", "shop:o4", T0 + 6 * HOUR_MS, "shopify", order_id="o4",
                   total="999.00", currency="EUR", click_id="c3", test=True))  # test: excluded
    e.append(event("order", "shop:o5", T0 + 7 * HOUR_MS, "shopify", order_id="o5",
                   total="40.00", currency="EUR", click_id="c3", test=False))
    e.append(event("order_cancelled", "shop:x5", T0 + 8 * HOUR_MS, "shopify", order_id="o5"))
    e.append(pixel("w=acme&e=purchase&oid=o6&v=25.50&cur=EUR&cid=c3", T0 + 200 * HOUR_MS))
    # ^ pixel-only, but 196 h after the click: outside the 120 h window
    e.append(pixel("w=acme&e=purchase&oid=o7&v=12.00&cur=USD&cid=c2", T0 + 10 * HOUR_MS))
    # ^ pixel-only order in another currency, rule 1 -> A
    # replies and opt-outs
    e.append(event("reply", "wa:rp3", T0 + 3 * HOUR_MS, "whatsapp", phone_hash=ph("r3")))
    e.append(event("reply", "wa:rp1", T0 + 27 * HOUR_MS, "whatsapp", phone_hash=ph("r1")))
    e.append(event("reply", "wa:rp4", T0 + 4 * HOUR_MS, "whatsapp", phone_hash=ph("r4")))
    e.append(event("opt_out", "wa:rp4:opt_out", T0 + 4 * HOUR_MS, "whatsapp",
                   phone_hash=ph("r4")))
    e.append(event("opt_out", "wa:pref:r4", T0 + 5 * HOUR_MS, "whatsapp", phone_hash=ph("r4")))
    e.append(event("reply", "wa:rp9", T0 + 4 * HOUR_MS, "whatsapp", context_id="wBr2"))
    # campaign C: an order names only r7's phone, which only C's message (its send
    # log entry) tells; if the message comes last, it is what attributes the order
    e.append(event("message", "msg:wCr7", T0, message_id="wCr7", campaign="C",
                   recipient="r7", phone_hash=ph("r7")))
    e.append(click("c7", "r7", "C", T0 + HOUR_MS))
    e.append(event("order", "shop:o8", T0 + 2 * HOUR_MS, "shopify", order_id="o8",
                   total="20.00", currency="EUR", phone_hashes=[ph("r7")], test=False))
    return e


@contextlib.asynccontextmanager
async def scenario_worker(redis_url: str, **overrides: Any
                          ) -> AsyncIterator[tuple[Any, Store, Worker]]:
    """A connection, store and worker on a fresh key prefix holding the
    scenario's workspace; the prefix's keys are dropped afterwards (runs
    share the server)."""
    prefix = "t" + uuid.uuid4().hex[:12]
    s = make_settings(redis_url, prefix, reclaim_idle_ms=60_000, **overrides)
    conn = connect(redis_url)
    try:
        store = Store(conn, s)
        await store.create_workspace(WS)
        await conn.hset(s_keys(s).workspace(WS), "hs", SECRET)
        worker = Worker(s, conn, "w1")
        await worker.prepare()
        yield conn, store, worker
    finally:
        keys_left = [k async for k in conn.scan_iter(match=f"{prefix}:*")]
        if keys_left:
            await conn.delete(*keys_left)
        await conn.aclose()


async def run(redis_url: str, entries: list[tuple[str, dict[str, str]]],
              batch: int = 0) -> dict[str, Any]:
    """Feed entries one at a time, each fully processed before the next arrives;
    or, with `batch`, all at once, folded `batch` entries of a stream at a time
    (the worker reorders within a batch: messages, then statuses, last)."""
    async with scenario_worker(redis_url, worker_batch=batch or 500) as (conn, store, worker):
        keys = worker.keys
        for kind, fields in entries:
            stream = keys.click_stream(0) if kind == "click" else keys.event_stream(0)
            await conn.xadd(stream, fields)  # type: ignore[arg-type]
            if not batch:
                while await worker.run_once(block_ms=None):
                    pass
        while await worker.run_once(block_ms=None):
            pass
        assert worker.stats.invalid == 0
        out = {}
        for campaign in ("A", "B", "C"):
            agg, links, recipients, meta = await store.campaign_counts(WS, campaign)
            report = campaign_report(campaign, agg, links, recipients, meta, 120)
            report["rows"] = sorted(
                (await conn.hgetall(keys.order_rows(WS, campaign))).values())  # type: ignore[misc]
            report["window_24h"] = campaign_report(campaign, agg, links, recipients, meta,
                                                   24)["orders"]
            for name, key in (("series", keys.series(WS, campaign)),
                              ("per_link", keys.link_aggregates(WS, campaign)),
                              ("lags", keys.order_lags(WS, campaign))):
                counters = await conn.hgetall(key)  # type: ignore[misc]
                # a counter that went up and back down is the same as one never touched
                report[name] = {k: v for k, v in counters.items() if v != "0"}
            out[campaign] = report
        return out


def s_keys(s: Any) -> Keys:
    return Keys(s.key_prefix, s.partitions)


def test_the_canonical_order_gives_the_expected_numbers(redis_url: str) -> None:
    rep = asyncio.run(run(redis_url, scenario()))
    a, b = rep["A"], rep["B"]
    assert (a["recipients"], a["messages"], a["sent"], a["delivered"], a["read"], a["failed"]) \
        == (6, 6, 5, 5, 3, 1)
    assert (b["messages"], b["sent"], b["delivered"], b["recipients"]) == (2, 2, 2, 2)
    assert (a["clicks"], a["unique_clickers"], a["non_human_clicks"]) == (4, 3, 2)
    # o1 (click id) and o7 (pixel, USD) in A; o2 (last click) in B; o3 unattributed,
    # o4 a test, o5 cancelled, o6 outside the window
    assert (a["orders"], a["orders_by"]) == (2, {"click_id": 2, "last_click": 0})
    assert (b["orders"], b["orders_by"]) == (1, {"click_id": 0, "last_click": 1})
    assert a["revenue"]["EUR"]["gross"] == "100.00"  # the webhook's amount, not the pixel's
    assert (a["revenue"]["EUR"]["refunded"], a["revenue"]["EUR"]["net"]) == ("30.00", "70.00")
    assert a["revenue"]["USD"]["net"] == "12.00"
    assert b["revenue"]["EUR"]["net"] == "50.00"
    assert (a["converters"], b["converters"]) == (2, 1)
    assert a["window_24h"] == 2 and b["window_24h"] == 1  # o2 came 4 h after c5
    # r3 and r4 replied to A; r1 replied after B's message; the reply naming wBr2 is B's
    assert (a["replies"], b["replies"]) == (2, 2)
    assert (a["opt_outs"], b["opt_outs"]) == (1, 0)  # r4, twice, is one recipient
    assert a["ctr"] == {"value": 0.6, "numerator": "unique_clickers", "denominator": "delivered"}
    assert a["read_rate"]["value"] == 0.6 and a["delivery_rate"]["value"] == 1.0
    hour = (T0 + 5 * HOUR_MS) // HOUR_MS
    assert a["series"][f"orders:{hour}"] == "1"  # o1, placed at T0 + 5 h
    assert a["per_link"]["coder1A:orders"] == "1" and a["per_link"]["coder1A:clicks"] == "2"
    # a range report's counters: messages at their send hour with the state they
    # reached, each clicker at their first click, orders by hours from click
    h0 = T0 // HOUR_MS
    assert {k: a["series"].get(f"{k}:{h0}") for k in
            ("messages", "sent", "delivered", "read", "failed")} == \
        {"messages": "6", "sent": "5", "delivered": "5", "read": "3", "failed": "1"}
    assert b["series"][f"delivered:{h0 + 24}"] == "2"
    assert {k: v for k, v in a["series"].items() if k.startswith("unique_clickers:")} == \
        {f"unique_clickers:{h0 + 1}": "1", f"unique_clickers:{h0 + 3}": "1",
         f"unique_clickers:{h0 + 4}": "1"}
    assert a["lags"][f"orders:4:{hour}"] == "1" and a["lags"][f"converters:4:{hour}"] == "1"
    assert a["per_link"]["device=mobile:unique_clickers"] == "3"
    assert a["per_link"]["os=Android:orders"] == "2"
    c = rep["C"]
    assert (c["orders"], c["orders_by"], c["revenue"]["EUR"]["net"]) == \
        (1, {"click_id": 0, "last_click": 1}, "20.00")


REFERENCE: dict[str, Any] = {}


def reference(redis_url: str) -> dict[str, Any]:
    """The canonical order's report (computed once)."""
    if not REFERENCE:
        REFERENCE.update(asyncio.run(run(redis_url, scenario())))
    return REFERENCE


def shuffled(seed: int, repeats: int) -> list[tuple[str, dict[str, str]]]:
    """The scenario in a random order, with some entries delivered twice."""
    entries = scenario()
    rng = random.Random(seed)
    entries += [rng.choice(entries) for _ in range(repeats)]  # redeliveries
    rng.shuffle(entries)
    return entries


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), repeats=st.integers(0, 8))
def test_any_arrival_order_gives_the_same_report(redis_url: str, seed: int,
                                                 repeats: int) -> None:
    assert asyncio.run(run(redis_url, shuffled(seed, repeats))) == reference(redis_url)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), repeats=st.integers(0, 8), batch=st.integers(1, 60))
def test_any_arrival_order_in_batches_gives_the_same_report(redis_url: str, seed: int,
                                                            repeats: int, batch: int) -> None:
    assert asyncio.run(run(redis_url, shuffled(seed, repeats), batch)) == reference(redis_url)


def test_scenario_is_valid(r: redis.Redis) -> None:
    assert len(scenario()) > 40


async def moved_order(redis_url: str, crash: bool) -> dict[str, Any]:
    """r2 clicks in campaign A, orders (last click: A), then a later click in B
    arrives and moves the order to B. With `crash`, the worker dies after the
    join that moved the order committed and before its effects were applied;
    the click is then delivered again, as after a reclaim."""
    async with scenario_worker(redis_url) as (conn, store, worker):
        keys = worker.keys
        first = [event("message", "msg:wAr2", T0, message_id="wAr2", campaign="A",
                       recipient="r2", phone_hash=ph("r2")),
                 click("c2", "r2", "A", T0 + 3 * HOUR_MS),
                 event("order", "shop:o2", T0 + 30 * HOUR_MS, "shopify", order_id="o2",
                       total="50.00", currency="EUR", phone_hashes=[ph("r2")], test=False)]
        for kind, fields in first:
            stream = keys.click_stream(0) if kind == "click" else keys.event_stream(0)
            await conn.xadd(stream, fields)  # type: ignore[arg-type]
            while await worker.run_once(block_ms=None):
                pass
        late = click("c5", "r2", "B", T0 + 26 * HOUR_MS)[1]
        if crash:
            c = Click.from_entry(late)
            cfg = await worker.config(WS)
            assert cfg is not None
            ref = ClickRef(c.id, c.campaign, c.recipient, c.code, c.ts)
            assert await worker.joins.clicks(WS, [ref], cfg)  # effects lost with the process
        await conn.xadd(keys.click_stream(0), late)  # type: ignore[arg-type]
        while await worker.run_once(block_ms=None):
            pass
        out = {}
        for campaign in ("A", "B"):
            agg, links, recipients, meta = await store.campaign_counts(WS, campaign)
            out[campaign] = campaign_report(campaign, agg, links, recipients, meta, 120)
        return out


def test_a_crash_after_an_order_moved_changes_no_converter(redis_url: str) -> None:
    """The order's old pair (campaign A, r2) must lose its converter on
    redelivery, though the order already names only the new pair (found by
    the SIGKILL simulation: converters 251 where 250 were expected)."""
    clean = asyncio.run(moved_order(redis_url, crash=False))
    assert (clean["A"]["converters"], clean["B"]["converters"]) == (0, 1)
    assert (clean["A"]["orders"], clean["B"]["orders"]) == (0, 1)
    assert asyncio.run(moved_order(redis_url, crash=True)) == clean


DAY_MS = 24 * HOUR_MS


async def feed_one_by_one(conn: Any, worker: Worker, entries: list[Entry]) -> None:
    """Each entry into its stream, and folded before the next comes."""
    for kind, fields in entries:
        stream = worker.keys.click_stream(0) if kind == "click" else worker.keys.event_stream(0)
        await conn.xadd(stream, fields)
        while await worker.run_once(block_ms=None):
            pass


async def forgotten(redis_url: str, sweep: bool) -> dict[str, Any]:
    """Two orders attributed, one by its click id (r1), one by the last click
    (r2); months later both recipients click again, the sweep (with `sweep`)
    forgets the old clicks, and both orders are refunded in part."""
    async with scenario_worker(redis_url) as (conn, store, worker):
        keys = worker.keys

        async def feed(entries: list[Entry]) -> None:
            await feed_one_by_one(conn, worker, entries)

        later = T0 + 150 * DAY_MS
        await feed([
            *(event("message", f"msg:wA{r}", T0, message_id=f"wA{r}", campaign="A",
                    recipient=r, phone_hash=ph(r)) for r in ("r1", "r2")),
            click("c1", "r1", "A", T0 + HOUR_MS), click("c2", "r2", "A", T0 + 3 * HOUR_MS),
            event("order", "shop:o1", T0 + 5 * HOUR_MS, "shopify", order_id="o1",
                  total="100.00", currency="EUR", click_id="c1", test=False),
            event("order", "shop:o2", T0 + 6 * HOUR_MS, "shopify", order_id="o2",
                  total="50.00", currency="EUR", phone_hashes=[ph("r2")], test=False),
            click("c1late", "r1", "A", later), click("c2late", "r2", "A", later)])
        index = keys.click_index(WS)
        assert await conn.hlen(index) == 4
        out: dict[str, Any] = {}
        if sweep:
            now = T0 + 200 * DAY_MS  # 90 days' raw retention: clicks before day 110 go
            version = int(await conn.get(keys.join_version(WS)))
            assert await worker.sweep_clicks(now) == 2
            assert int(await conn.get(keys.join_version(WS))) > version
            assert await worker.sweep_clicks(now) == 0
            out["index"] = sorted(await conn.hkeys(index))  # type: ignore[misc]
            out["histories"] = [await conn.zrange(keys.recipient_clicks(WS, r), 0, -1)
                                for r in ("r1", "r2")]
        await feed([event("refund", f"shop:rf{o}", T0 + 201 * DAY_MS, "shopify", order_id=o,
                          refund_id=f"rf{o}", amount=amount, currency="EUR")
                    for o, amount in (("o1", "30.00"), ("o2", "10.00"))])
        assert await conn.hlen(keys.click_waits(WS)) == 0  # no order waits for a swept click
        agg, links, recipients, meta = await store.campaign_counts(WS, "A")
        out["report"] = campaign_report("A", agg, links, recipients, meta, 120)
        out["rows"] = sorted(await conn.hgetall(keys.order_rows(WS, "A")))  # type: ignore[misc]
        out["per_link"] = {k: v for k, v in (await conn.hgetall(  # type: ignore[misc]
            keys.link_aggregates(WS, "A"))).items() if v != "0"}
        return out


def test_orders_keep_their_clicks_when_the_sweep_forgets_them(redis_url: str) -> None:
    """A refund months after the order is attributed again with the order's
    clicks gone from the join state: the revenue is reduced, not lost (nor
    moved to the recipient's later clicks), and the sweep kept what is new."""
    swept = asyncio.run(forgotten(redis_url, sweep=True))
    assert swept.pop("index") == ["c1late", "c2late"]
    assert swept.pop("histories") == [["c1late"], ["c2late"]]
    rep = swept["report"]
    assert (rep["orders"], rep["orders_by"]) == (2, {"click_id": 1, "last_click": 1})
    assert rep["revenue"]["EUR"] == {**rep["revenue"]["EUR"], "gross": "150.00",
                                     "refunded": "40.00", "net": "110.00"}
    assert rep["converters"] == 2
    assert swept["per_link"]["os=Android:orders"] == "2"  # the click's classes kept too
    assert swept == asyncio.run(forgotten(redis_url, sweep=False))


def test_one_worker_of_the_group_sweeps_once_a_day(redis_url: str) -> None:
    """The retention sweeps read every kept click: the group runs them once
    a day, whichever worker's turn comes first."""
    from tracker.joins import wait_value

    async def go() -> None:
        async with scenario_worker(redis_url) as (conn, _store, worker):
            keys = worker.keys
            await conn.hset(keys.workspace(WS), "retention_days", "30")
            await conn.sadd(keys.workspace_campaigns(WS), "A")  # as its links would
            old = int(time.time() * 1000) - 40 * DAY_MS
            for cid in ("c1", "c2"):
                await conn.xadd(keys.click_stream(0), click(cid, "r1", "A", old)[1])
            while await worker.run_once(block_ms=None):
                pass
            # an order's wait for a click that never came, as old
            await conn.hset(keys.click_waits(WS), "c9", wait_value(["o9"], old))
            assert await conn.hlen(keys.click_index(WS)) == 2
            assert await conn.hlen(keys.click_rows(WS, "A")) == 2
            other = Worker(worker.settings, conn, "w2")
            assert await worker.sweep()
            assert not await other.sweep()  # not its turn
            assert await conn.hlen(keys.click_index(WS)) == 0
            assert await conn.hlen(keys.click_rows(WS, "A")) == 0
            assert not await conn.exists(keys.recipient_clicks(WS, "r1"))
            assert not await conn.exists(keys.click_waits(WS))
            assert 23 * HOUR_MS < await conn.pttl(keys.sweep_turn()) <= 24 * HOUR_MS
            assert await conn.get(keys.sweep_turn()) == "w1"

    asyncio.run(go())


def test_a_due_sweep_runs_beside_the_lanes(redis_url: str) -> None:
    """An hour after the last look, a round starts the day's sweep as a task
    of its own and goes on folding: a lane never waits for a sweep."""
    async def go() -> None:
        async with scenario_worker(redis_url) as (conn, _store, worker):
            keys = worker.keys
            await conn.hset(keys.workspace(WS), "retention_days", "30")
            await conn.sadd(keys.workspace_campaigns(WS), "A")
            old = int(time.time() * 1000) - 40 * DAY_MS
            await conn.xadd(keys.click_stream(0), click("c1", "r1", "A", old)[1])
            while await worker.run_once(block_ms=None):
                pass
            assert worker._sweeping is None
            worker._last_sweep -= 3600
            await conn.xadd(keys.click_stream(0), click("c2", "r1", "A", old)[1])
            assert await worker.run_once(block_ms=None) == 1  # the round folded its click
            sweeping = worker._sweeping
            assert sweeping is not None
            await sweeping
            assert await conn.get(keys.sweep_turn()) == "w1"
            # c1 was there before the sweep began (c2 came while it ran: either way)
            assert "c1" not in await conn.hkeys(keys.click_index(WS))  # type: ignore[misc]
            assert "c1" not in await conn.hkeys(keys.click_rows(WS, "A"))  # type: ignore[misc]
            assert await worker.run_once(block_ms=None) == 0
            assert worker._sweeping is sweeping  # not due again for an hour

    asyncio.run(go())


def test_waits_for_clicks_that_never_come_are_swept(redis_url: str) -> None:
    """An order names a click id before its click (a lagging stream) or one
    that never comes (made up, as a pixel can): it waits, with its time. The
    sweep forgets waits older than an entry's redelivery (by then the click
    came, or never will), gives a wait stored without its time the sweep's,
    and leaves a wait an order changed since it read it."""
    from tracker.joins import wait_value, waiting_orders
    from tracker.store import Scripts

    async def go() -> None:
        async with scenario_worker(redis_url) as (conn, store, worker):
            keys = worker.keys
            waits = keys.click_waits(WS)

            async def feed(entries: list[Entry]) -> None:
                await feed_one_by_one(conn, worker, entries)

            start = int(time.time() * 1000)
            await feed([
                event("order", "shop:o1", T0 + 2 * HOUR_MS, "shopify", order_id="o1",
                      total="100.00", currency="EUR", click_id="late", test=False),
                event("order", "shop:o2", T0 + 2 * HOUR_MS, "shopify", order_id="o2",
                      total="20.00", currency="EUR", click_id="ghost", test=False),
                click("late", "r1", "A", T0 + HOUR_MS)])  # it came after its order
            await conn.hset(waits, "legacy", '["o3"]')  # (as stored before waits had a time)
            stored = await conn.hgetall(waits)  # type: ignore[misc]
            assert sorted(stored) == ["ghost", "late", "legacy"]
            for cid, order in (("late", "o1"), ("ghost", "o2")):
                orders, since = waiting_orders(stored[cid])
                assert orders == [order]
                assert since is not None and start <= since <= int(time.time() * 1000)

            now = start + HOUR_MS
            assert await worker.sweep_waits(now) == 0  # none is a redelivery old
            assert waiting_orders(await conn.hget(waits, "legacy")) == (["o3"], now)
            # an order joined "ghost" after a sweep read it: the sweep leaves it be
            version = int(await conn.get(keys.join_version(WS)))
            assert await Scripts.forget_waits(conn, [waits, keys.join_version(WS)], [
                "ghost", wait_value(["o2"], 1), ""]) == 0
            assert await conn.hexists(waits, "ghost")
            assert int(await conn.get(keys.join_version(WS))) == version + 1

            later = now + worker._redelivery_ms + 1
            assert await worker.sweep_waits(later) == 3
            assert await conn.hlen(waits) == 0
            assert await worker.sweep_waits(later) == 0
            # the order whose click came late was attributed, and stays so
            await feed([event("refund", "shop:rf1", T0 + 3 * HOUR_MS, "shopify", order_id="o1",
                              refund_id="rf1", amount="30.00", currency="EUR")])
            agg, links, recipients, meta = await store.campaign_counts(WS, "A")
            rep = campaign_report("A", agg, links, recipients, meta, 120)
            assert (rep["orders"], rep["orders_by"]) == (1, {"click_id": 1, "last_click": 0})
            assert rep["revenue"]["EUR"]["net"] == "70.00"
            assert await conn.hlen(waits) == 0  # its click is in the index: no new wait

    asyncio.run(go())
