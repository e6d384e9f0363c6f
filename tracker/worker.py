"""The worker: read clicks through a consumer group, enrich, fold, ack.

Delivery is at-least-once (a crash between the fold and the XACK redelivers
the entry; XAUTOCLAIM hands a dead consumer's pending entries to a live
one), and every fold is exactly-once: the script that applies a click writes
its row and its counters in one atomic step and does nothing if the row is
already there (see scripts/apply_click.lua).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string  # json.dumps's, in C
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from .attribution import ClickRef, OrderState, clicks_needed_since, merge_order
from .clickfold import Batch
from .events import Event
from .joins import Effect, Joins, apply_effects, pixel_purchase
from .keys import CLICK_GROUP, Keys
from .models import CLICK, CLICK_FIELDS, US, Click, entry_values
from .resp import FastRedis, RespError
from .resp import supported as resp_supported
from .settings import Settings
from .store import Redis, Scripts, Store, connect, is_cluster_url
from .useragent import Client, classify
from .workspaces import WorkspaceConfig

log = logging.getLogger("tracker.worker")

Entry = tuple[str, dict[str, str] | None]
# An entry delivered this many times without being acknowledged is a suspect:
# from then on it is folded alone, so a crash or an error while it is the only
# entry in hand is its own. A crash kills every entry in flight, innocent ones
# too (a lane holds a batch, a process several lanes): counting deliveries
# alone would send those to the dead letters.
MAX_DELIVERIES = 5
# A suspect that failed this many times alone is poison: it moves to the
# dead-letter stream, with its error.
MAX_SOLO_ATTEMPTS = 3
CONFIG_TTL = 5.0  # seconds a worker trusts its copy of a workspace's settings
STATS_EVERY = 1.0  # seconds between a running worker's reports of its counters (/metrics)
DAY_MS = 86_400_000
SWEEP_EVERY_MS = DAY_MS  # one retention sweep a day in the group (see Worker.sweep)


@dataclass
class Stats:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    invalid: int = 0
    reclaimed: int = 0
    dead: int = 0
    errors: int = 0  # rounds that failed on Redis (an outage): retried
    started: float = field(default_factory=time.monotonic)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def consumer_name(settings: Settings) -> str:
    return settings.consumer or f"{socket.gethostname()}-{os.getpid()}"


def _click_keys(keys: Keys, ws: str, campaign: str) -> tuple[str, ...]:
    """The keys a click of this campaign folds into."""
    return _campaign_keys(keys.prefix, keys.partitions, ws, campaign)


# (cached: a batch has few campaigns; by the Keys' fields, which hash in C,
# where a Keys object hashes and compares in generated Python, twice a click)
@functools.lru_cache(maxsize=4096)
def _campaign_keys(prefix: str, partitions: int, ws: str, campaign: str) -> tuple[str, ...]:
    keys = Keys(prefix, partitions)
    return (
        keys.click_rows(ws, campaign),
        keys.aggregates(ws, campaign),
        keys.link_aggregates(ws, campaign),
        keys.clickers(ws, campaign),
        keys.link_clickers(ws, campaign),
        keys.series(ws, campaign),
        keys.first_clicks(ws, campaign),
        keys.clicker_state(ws, campaign),
    )


def click_row(click: Click, client: Client) -> str:
    """The click's row, as json.dumps(..., separators=(",", ":")) would write it
    (tested), with the C string escaper and no dict: json.dumps was a fifth of
    the worker's CPU."""
    return _row(click, _client_part(client))


def _row(click: Click, client_part: str) -> str:
    q = _json_string
    return (f'{{"ts":{click.ts},"code":{q(click.code)},"recipient":{q(click.recipient)},'
            f'{client_part},"ip":{q(click.ip)}}}')


def _client_part(client: Client) -> str:
    q = _json_string
    return (f'"kind":{q(client.kind)},"device":{q(client.device)},"os":{q(client.os)},'
            f'"browser":{q(client.browser)}')


@functools.lru_cache(maxsize=65_536)
def _classified(ua: str, method: str) -> tuple[Client, str, tuple[str, str, str]]:
    """classify's Client, its part of a click's row (escaped once per user
    agent, not once a click) and its (device, os, browser)."""
    client = classify(ua, method)
    return client, _client_part(client), (client.device, client.os, client.browser)


def click_effect(keys: Keys, click: Click) -> tuple[tuple[str, ...], list[str]]:
    """KEYS and ARGV of apply_click for one click (pure). The KEYS are the same
    tuple for every click of a campaign (the batch is grouped by it)."""
    client, part, _ = _classified(click.ua, click.method)
    row = _row(click, part)
    return (
        _click_keys(keys, click.ws, click.campaign),
        [click.id, row, client.kind, click.code, click.recipient,
         client.device, client.os, client.browser, str(click.ts // 3_600_000)],
    )


# KEYS and ARGV of apply_click for a click, its workspace, and its ClickRef if a human's
Effects = tuple[tuple[str, ...], list[str], str, ClickRef | None]
_PACKED = len(CLICK_FIELDS)
_new_ref = functools.partial(tuple.__new__, ClickRef)


def packed_effect(keys: Keys, packed: str) -> Effects:
    """click_effect of a click as the redirect packs it (models.CLICK's value),
    its workspace, and where orders can find it if it is a human's: what the
    worker does a click, in one call, with no Click and no dict a click. (The
    same as click_effect(keys, Click.from_entry({CLICK: packed})): tested.
    The six calls a click it replaces, each a Python frame, were about half
    of this work.) Raises ValueError as Click.from_entry does."""
    v = packed.split(US)
    if len(v) != _PACKED:
        raise ValueError(f"a click has {_PACKED} values, this one {len(v)}")
    code, ts_text, cid, method, ua, _, _, ip, ws, campaign, recipient = v
    ts = int(ts_text)
    client, part, classes = _classified(ua, method)
    q = _json_string
    row = (f'{{"ts":{ts},"code":{q(code)},"recipient":{q(recipient)},'
           f'{part},"ip":{q(ip)}}}')
    kind = client.kind
    args = [cid, row, kind, code, recipient, *classes, str(ts // 3_600_000)]
    ref = (_new_ref((cid, campaign, recipient, code, ts, True, classes))
           if kind == "human" else None)
    return _campaign_keys(keys.prefix, keys.partitions, ws, campaign), args, ws, ref


def _fields_effect(keys: Keys, fields: dict[str, str]) -> Effects:
    """packed_effect of an entry of the older layout (a field per value)."""
    click = Click.from_entry(fields)
    ckeys, args = click_effect(keys, click)
    ref = (ClickRef(click.id, click.campaign, click.recipient, click.code, click.ts, True,
                    (args[5], args[6], args[7])) if args[2] == "human" else None)
    return ckeys, args, click.ws, ref


class Worker:
    def __init__(self, settings: Settings, redis: Redis, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.store = Store(redis, settings)
        self.keys = self.store.keys
        self.consumer = consumer or consumer_name(settings)
        self.stats = Stats()
        self._last_reclaim = 0.0
        self._last_trim = time.monotonic()
        self._last_sweep = time.monotonic()
        self._sweeping: asyncio.Task[None] | None = None
        self._last_publish = 0.0
        url = settings.effective_redis_url
        self.fast: FastRedis | None = FastRedis(url) if resp_supported(url) else None
        # Reads block: they get their own connection, so a blocked read never
        # holds up a fold's commands behind it.
        self.reader: FastRedis | None = (
            FastRedis(url, timeout=settings.worker_block_ms / 1000 + 5)
            if resp_supported(url) else None)
        self.joins = Joins(redis, self.keys, self.fast)
        self.cluster = is_cluster_url(url)
        self._turn = 0
        self._busy: set[tuple[str, str]] = set()  # (stream, entry id) being folded here
        # Set while reads come back full: the extra lanes work only then.
        self._backlog = asyncio.Event()
        self._configs: dict[str, tuple[WorkspaceConfig | None, float]] = {}

    async def prepare(self) -> None:
        await self.store.prepare()

    async def aclose(self) -> None:
        """Close the lean clients (the caller owns `redis`)."""
        for fast in (self.fast, self.reader):
            if fast is not None:
                await fast.aclose()

    async def config(self, ws: str) -> WorkspaceConfig | None:
        """Workspace settings, cached for a few seconds (they rarely change)."""
        now = time.monotonic()
        hit = self._configs.get(ws)
        if hit is not None and now - hit[1] < CONFIG_TTL:
            return hit[0]
        cfg = await self.store.workspace_config(ws)
        self._configs[ws] = (cfg, now)
        return cfg

    def streams(self) -> list[str]:
        return self.keys.click_streams() + self.keys.event_streams()

    async def read(self, block_ms: int | None) -> list[tuple[str, list[Entry]]]:
        if self.cluster and self.keys.partitions > 1:
            return await self._read_partitions(block_ms)
        return await self._read(self.streams(), block_ms)

    async def _read(self, streams: list[str], block_ms: int | None
                    ) -> list[tuple[str, list[Entry]]]:
        if self.reader is not None:
            return await self._read_fast(streams, block_ms)
        reply = await self.redis.xreadgroup(
            CLICK_GROUP, self.consumer, {s: ">" for s in streams},
            count=self.settings.worker_batch, block=block_ms,
        )
        # decode_responses=True: redis-py's stubs do not know the reply is str.
        out: list[tuple[str, list[Entry]]] = [tuple(pair) for pair in reply or []]
        return out

    async def _read_fast(self, streams: list[str], block_ms: int | None
                         ) -> list[tuple[str, list[Entry]]]:
        """XREADGROUP through the lean client: redis-py's reply parsing (a dict
        per entry, in Python) was a tenth of the worker's CPU."""
        assert self.reader is not None
        args: list[Any] = ["XREADGROUP", "GROUP", CLICK_GROUP, self.consumer,
                           "COUNT", self.settings.worker_batch]
        if block_ms is not None:
            args += ["BLOCK", block_ms]
        args += ["STREAMS", *streams, *[">"] * len(streams)]
        try:
            reply = await self.reader.call(*args)
        except RespError as exc:
            raise ResponseError(str(exc)) from None  # as redis-py would: the lane retries
        # (a click is one field: its dict is made without zip's two slices)
        return [(stream, [(entry_id, {fields[0]: fields[1]} if len(fields) == 2 else
                           dict(zip(fields[::2], fields[1::2], strict=True))
                           if fields else None) for entry_id, fields in entries])
                for stream, entries in reply or []]

    async def _read_partitions(self, block_ms: int | None) -> list[tuple[str, list[Entry]]]:
        """On a cluster one XREADGROUP may name only one slot's streams: read each
        partition (its click and event streams share a hash tag) at once, without
        blocking; when all are empty, block on one partition in turn, for a
        share of `block_ms`, so an idle worker sleeps and a new entry anywhere
        waits at most about `block_ms`."""
        n = self.keys.partitions
        pairs = [[self.keys.click_stream(p), self.keys.event_stream(p)] for p in range(n)]
        replies = await asyncio.gather(*(self._read(pair, None) for pair in pairs))
        out = [item for reply in replies for item in reply]
        if out or block_ms is None:
            return out
        self._turn = (self._turn + 1) % n
        return await self._read(pairs[self._turn], max(1, block_ms // n))

    async def process(self, stream: str, entries: Sequence[Entry]) -> int:
        """Fold a batch of entries, then acknowledge them all. Returns how many
        clicks and events they held (an entry can hold several clicks)."""
        ids = [entry_id for entry_id, _ in entries]
        busy = {(stream, i) for i in ids}
        self._busy |= busy  # this process's lanes never reclaim them meanwhile
        try:
            if stream.endswith(":events"):
                await self._events(stream, entries)
                held = len(entries)
            else:
                held = await self._clicks(stream, entries)
            if ids:
                await self._ack(stream, ids)
        finally:
            self._busy -= busy
        self.stats.read += len(entries)
        return held

    async def _ack(self, stream: str, ids: list[str]) -> None:
        if self.fast is None:
            await self.redis.xack(stream, CLICK_GROUP, *ids)
            return
        # The lean client: redis-py's XACK of a batch's ids cost the worker
        # more CPU than reading them (a profile of a drain in 300-click batches:
        # about 1.4 us a click).
        try:
            await self.fast.call("XACK", stream, CLICK_GROUP, *ids)
        except RespError as exc:
            raise ResponseError(str(exc)) from None  # as redis-py would: the lane retries

    async def dead_letter(self, stream: str, entry_id: str, fields: dict[str, str] | None,
                          error: str) -> None:
        """Set an entry aside with its error, instead of blocking the group."""
        self.stats.dead += 1
        log.warning("dead-lettered %s from %s: %s", entry_id, stream, error)
        await self.redis.xadd(self.keys.dead_letters(), {
            "stream": stream, "id": entry_id, "error": error[:1000],
            "fields": json.dumps(fields or {})[:100_000], "consumer": self.consumer,
        }, maxlen=100_000, approximate=True)

    async def _clicks(self, stream: str, entries: Sequence[Entry]) -> int:
        """Fold the entries' clicks; returns how many they held."""
        calls: list[tuple[tuple[str, ...], list[str]]] = []
        joins: dict[str, list[ClickRef]] = defaultdict(list)
        folds: list[asyncio.Future[None]] = []
        held = 0
        for entry_id, fields in entries:
            if not fields:
                held += 1
                continue  # trimmed or deleted before we got to it: nothing to fold
            values = entry_values(fields)
            effect: Callable[[Keys, Any], Effects]
            items: Sequence[Any]
            one: Any  # a packed click, or the older layout's fields
            if values is None:  # an entry of the older layout: a field per value
                effect, items = _fields_effect, (fields,)
            else:
                effect, items = packed_effect, values
            held += len(items)
            for one in items:
                try:
                    keys, args, ws, ref = effect(self.keys, one)
                except (KeyError, ValueError) as exc:
                    self.stats.invalid += 1
                    await self.dead_letter(stream, entry_id,
                                           {CLICK: one} if values is not None else dict(one),
                                           f"invalid click: {exc!r}")
                    continue
                calls.append((keys, args))
                if ref is not None:
                    joins[ws].append(ref)
            if len(calls) >= self.settings.worker_batch:
                # Entries of many clicks each (the redirect's ticks): fold a
                # batch's worth at a time, so no script holds Redis (and the
                # redirects' writes behind it) for longer than a batch's, and
                # prepare the next while Redis runs it (folds do not depend on
                # their order: the arrival-order test).
                folds.append(asyncio.ensure_future(self._fold(calls, joins)))
                calls, joins = [], defaultdict(list)
                await asyncio.sleep(0)  # (its script goes out now)
        folds.append(asyncio.ensure_future(self._fold(calls, joins)))
        for outcome in await asyncio.gather(*folds, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome  # nothing is acknowledged: redelivered, folded again harmlessly
        return held

    async def _fold(self, calls: Sequence[tuple[tuple[str, ...], list[str]]],
                    joins: dict[str, list[ClickRef]]) -> None:
        if calls:
            results = await self._apply(calls)
            for res in results:
                if res == 1:
                    self.stats.applied += 1
                else:
                    self.stats.duplicates += 1
        for ws, refs in joins.items():
            cfg = await self.config(ws)
            if cfg is not None:
                effects = await self.joins.clicks(ws, refs, cfg)
                await apply_effects(self.redis, self.keys, effects)

    async def _events(self, stream: str, entries: Sequence[Entry]) -> None:
        """Fold events one by one, except the send log's messages and statuses
        (most of a campaign's events): messages are indexed together, per
        workspace, and statuses looked up together, after the rest. Folds do
        not depend on arrival order (the arrival-order property test), so the
        batch may be reordered; messages go before statuses, so a message and
        its statuses in one batch find each other at once."""
        statuses: list[tuple[Event, WorkspaceConfig]] = []
        messages: dict[str, list[Event]] = defaultdict(list)
        for entry_id, fields in entries:
            if not fields:
                continue
            try:
                if fields.get("type") in ("status", "message"):
                    event = Event.from_fields(fields)
                    for name in (("message_id",) if event.type == "status" else
                                 ("message_id", "campaign", "recipient")):
                        str(event.data[name])  # (KeyError: invalid)
                    cfg = await self.config(event.ws)
                    if cfg is not None and not event.data.get("stale"):
                        if event.type == "status":
                            statuses.append((event, cfg))
                        else:
                            messages[event.ws].append(event)
                    self.stats.applied += 1
                    continue
                effects = await self._event(fields)
            except (KeyError, ValueError, TypeError) as exc:
                self.stats.invalid += 1
                await self.dead_letter(stream, entry_id, fields, f"invalid event: {exc!r}")
                continue
            await apply_effects(self.redis, self.keys, effects)
            self.stats.applied += 1
        for ws, batch in messages.items():
            cfg = await self.config(ws)
            if cfg is not None:
                await apply_effects(self.redis, self.keys,
                                    await self.joins.messages(ws, batch, cfg))
        if statuses:
            await apply_effects(self.redis, self.keys, await self.joins.statuses(statuses))

    async def _event(self, fields: dict[str, str]) -> list[Effect]:
        if fields.get("type") == "pixel":
            found = pixel_purchase(fields)
            if found is None:
                return []
            ws, data = found
            cfg = await self.config(ws)
            if cfg is None or (cfg.respect_dnt and fields.get("dnt") == "1"):
                return []
            ts = int(fields["ts"])

            def mutate(state: OrderState) -> OrderState:
                return merge_order(state, "pixel_purchase", "pixel", ts, data)

            return await self.joins.order(ws, data["order_id"], cfg, mutate)
        event = Event.from_fields(fields)
        cfg = await self.config(event.ws)
        if cfg is None or event.data.get("stale"):
            return []  # unknown workspace, or a replayed delivery: never counted
        return await self.joins.event(event, cfg)

    async def _apply(self, calls: Sequence[tuple[tuple[str, ...], list[str]]]) -> list[int]:
        """Fold clicks: one script call per campaign in the batch (the script's own
        overhead was most of a click's cost in Redis), its counters summed here
        (clickfold.Batch); per click, in `calls` order, 1 if folded now, 0 if
        folded before."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, (keys, _) in enumerate(calls):
            groups.setdefault(keys, []).append(i)
        batches = [(keys, members, Batch([calls[i][1] for i in members]))
                   for keys, members in groups.items()]
        todo = batches
        loaded = False
        while todo:
            commands = [["EVALSHA", Scripts.apply_click.sha, len(keys), *keys, *batch.argv()]
                        for keys, _, batch in todo]
            replies: list[Any]
            if self.fast is not None:
                # The lean client: redis-py's packing cost more than the fold itself.
                replies = await self.fast.call_many(commands)
                failed: list[Exception] = [x for x in replies if isinstance(x, RespError)]
                missing = all("NOSCRIPT" in str(x) for x in failed)
            else:
                pipe = self.redis.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
                failed = [x for x in replies if isinstance(x, Exception)]
                missing = all(isinstance(x, NoScriptError) for x in failed)
            if failed:
                if loaded or not missing:
                    raise failed[0]
                # Redis lost its scripts (restart): load and run the batch again;
                # the already-applied marker makes the rerun harmless.
                await self.redis.script_load(Scripts.apply_click.source)
                loaded = True
                continue
            # A script that found clicks folded before wrote nothing: the rest
            # go again, summed without them (a redelivery; rare).
            again = []
            for (keys, members, batch), found in zip(todo, replies, strict=True):
                if found:
                    batch.drop([int(x) for x in found])
                    if batch.positions:
                        again.append((keys, members, batch))
            todo = again
        out = [0] * len(calls)
        for _, members, batch in batches:
            for i, result in zip(members, batch.results(), strict=True):
                out[i] = result
        return out

    async def reclaim(self) -> int:
        """Take over entries idle longer than the reclaim time (a dead consumer's);
        fold those delivered too often alone, and set aside those that keep
        failing alone (poison)."""
        total = 0
        idle = self.settings.reclaim_idle_ms
        for stream in self.streams():
            start = "-"
            while True:
                # decode_responses=True: the replies are str, which redis-py's stubs miss
                pending: list[dict[str, Any]] = await self.redis.xpending_range(
                    stream, CLICK_GROUP, min=start, max="+",
                    count=self.settings.worker_batch, idle=idle)
                if not pending:
                    break
                suspects, claim = [], []
                for p in pending:
                    entry_id = str(p["message_id"])
                    if (stream, entry_id) in self._busy:
                        continue  # one of our own lanes is folding it right now
                    if int(p["times_delivered"]) >= MAX_DELIVERIES:
                        suspects.append((entry_id, int(p["times_delivered"])))
                    else:
                        claim.append(entry_id)
                for entry_id, times in suspects:
                    total += await self._fold_alone(stream, entry_id, times + 1)
                if claim:
                    # XCLAIM with the idle time again: an entry another consumer
                    # touched meanwhile stays theirs.
                    entries: list[Entry] = await self.redis.xclaim(  # type: ignore[assignment]
                        stream, CLICK_GROUP, self.consumer, idle, list[Any](claim))
                    if entries:
                        total += len(entries)
                        await self.process(stream, entries)
                if len(pending) < self.settings.worker_batch:
                    break
                start = "(" + str(pending[-1]["message_id"])
        self.stats.reclaimed += total
        return total

    async def _fold_alone(self, stream: str, entry_id: str, times: int) -> int:
        """Fold one suspect entry on its own (see MAX_DELIVERIES). Its attempts
        are counted in Redis before each try, so a crash counts too."""
        claimed: list[Entry] = await self.redis.xclaim(  # type: ignore[assignment]
            stream, CLICK_GROUP, self.consumer, self.settings.reclaim_idle_ms, [entry_id])
        if not claimed:
            return 0  # another consumer took it meanwhile
        tries_key = self.keys.solo_attempts(stream)
        tries = int(await self.redis.hincrby(tries_key, entry_id, 1))
        cid, fields = claimed[0]
        if tries > MAX_SOLO_ATTEMPTS:
            error = str(await self.redis.hget(tries_key, f"{entry_id}:error") or "a crash")
            await self.dead_letter(stream, cid, fields, f"delivered {times} times, failed "
                                   f"{tries - 1} times alone: {error}")
            await self.redis.xack(stream, CLICK_GROUP, cid)
            await self.redis.hdel(tries_key, entry_id, f"{entry_id}:error")
            return 0
        try:
            await self.process(stream, claimed)
        except (RedisError, OSError):
            raise  # Redis, not the entry: the round is retried
        except Exception as exc:  # any bug this entry triggers: counted, not fatal
            log.warning("entry %s from %s failed alone (%d of %d): %r", entry_id, stream,
                        tries, MAX_SOLO_ATTEMPTS, exc)
            await self.redis.hset(tries_key, f"{entry_id}:error", repr(exc)[:500])
            return 0
        await self.redis.hdel(tries_key, entry_id, f"{entry_id}:error")
        return 1

    async def trim(self) -> int:
        """Trim each stream below what the group has acknowledged, keeping the
        retention period: never an entry a worker has not folded (XTRIM MINID)."""
        keep_from = (time.time_ns() // 1_000_000) - self.settings.stream_retention_ms
        removed = 0
        for stream in self.streams():
            groups = await self.redis.xinfo_groups(stream)
            if not groups:
                continue
            # The first id each group still needs: its oldest pending entry, or the
            # one after the last it was given. XTRIM MINID keeps ids >= the bound.
            safe: list[tuple[int, int]] = [(keep_from, 0)]
            for g in groups:
                if g["pending"]:
                    first = await self.redis.xpending_range(stream, g["name"], min="-",
                                                            max="+", count=1)
                    safe.append(_id(str(first[0]["message_id"])))
                else:
                    ms, seq = _id(str(g["last-delivered-id"]))
                    safe.append((ms, seq + 1))
            ms, seq = min(safe)
            if ms > 0:
                removed += int(await self.redis.xtrim(stream, minid=f"{ms}-{seq}",
                                                      approximate=False))
        return removed

    async def sweep(self) -> bool:
        """The retention sweeps (rows, the joins' clicks, the orders' waits for
        clicks), if it is this worker's turn: one worker of the group a day.
        Each sweep reads every kept click of a workspace (about 25 us a click,
        the benchmark's "past the raw retention" row), and retention counts in
        days: hourly, or in every worker, they would cost more over a click's
        life than folding it."""
        if not await self.redis.set(self.keys.sweep_turn(), self.consumer, nx=True,
                                    px=SWEEP_EVERY_MS):
            return False
        await self.sweep_rows()
        await self.sweep_clicks()
        await self.sweep_waits()
        return True

    async def _sweep_beside(self) -> None:
        try:
            await self.sweep()
        except Exception:  # the next one, in an hour or a day, starts over
            self.stats.errors += 1
            log.exception("retention sweep failed")

    async def sweep_rows(self, now: int | None = None) -> int:
        """Drop raw click rows past their workspace's retention; aggregates stay.

        A row is also the "already applied" marker of its click, so rows are
        never dropped sooner than the streams' own retention plus a day: no
        redelivery can outlive its marker.
        """
        now = now if now is not None else time.time_ns() // 1_000_000
        removed = 0
        for ws, cfg in await self._workspaces():
            cutoff = now - max(cfg.raw_retention_days * DAY_MS, self._redelivery_ms)
            for campaign in sorted(await self.redis.smembers(
                    self.keys.workspace_campaigns(ws))):
                key = self.keys.click_rows(ws, str(campaign))
                cursor = 0
                while True:
                    cursor, rows = await self.redis.hscan(key, cursor=cursor, count=1000)
                    assert isinstance(rows, dict)
                    old = [k for k, v in rows.items() if json.loads(v)["ts"] < cutoff]
                    if old:
                        removed += int(await self.redis.hdel(key, *old))
                    if cursor == 0:
                        break
        return removed

    async def sweep_clicks(self, now: int | None = None) -> int:
        """Forget clicks the joins no longer need (`clicks_needed_since`): the
        click index and the recipients' histories would otherwise grow with
        every click for good (about 150 bytes a click)."""
        now = now if now is not None else time.time_ns() // 1_000_000
        removed = 0
        for ws, cfg in await self._workspaces():
            # (an order arrives at most as late as an entry can be redelivered)
            before = clicks_needed_since(now, cfg.attribution_window_h, self._redelivery_ms,
                                         cfg.raw_retention_days * DAY_MS)
            removed += await self.joins.forget_clicks(ws, before)
        return removed

    async def sweep_waits(self, now: int | None = None) -> int:
        """Forget the orders' waits for click ids that did not come within an
        entry's redelivery: kept, they grew for good (a pixel naming made-up
        click ids), and while any is kept every click batch looks them up."""
        now = now if now is not None else time.time_ns() // 1_000_000
        removed = 0
        for ws, _cfg in await self._workspaces():
            removed += await self.joins.forget_waits(ws, now - self._redelivery_ms, now)
        return removed

    @property
    def _redelivery_ms(self) -> int:
        """How long after its time an entry can still reach a worker: the
        streams' retention, and a day."""
        return self.settings.stream_retention_ms + DAY_MS

    async def _workspaces(self) -> list[tuple[str, WorkspaceConfig]]:
        """Every workspace that still exists, with its settings, in name order."""
        out: list[tuple[str, WorkspaceConfig]] = []
        for ws in sorted(str(w) for w in await self.redis.smembers(self.keys.workspaces())):
            cfg = await self.config(ws)
            if cfg is not None:
                out.append((ws, cfg))
        return out

    async def run_once(self, block_ms: int | None = None) -> int:
        """One read-process-ack round (and a reclaim when due). Returns how many
        clicks and events the entries it read held: the lanes' measure of a
        backlog (an entry of the redirect's can hold a few dozen clicks)."""
        now = time.monotonic()
        if now - self._last_reclaim >= self.settings.reclaim_idle_ms / 2000:
            self._last_reclaim = now
            await self.reclaim()
        if now - self._last_trim >= 60:
            self._last_trim = now
            await self.trim()
        if now - self._last_sweep >= 3600 and (self._sweeping is None or self._sweeping.done()):
            self._last_sweep = now
            # Beside the lanes, not in one: a sweep of millions of clicks takes
            # a minute, which a lane would not fold (nor its siblings, which
            # wait for a backlog it would not see).
            self._sweeping = asyncio.create_task(self._sweep_beside())
        n = 0
        for stream, entries in await self.read(block_ms):
            n += await self.process(stream, entries)
        return n

    async def publish_stats(self) -> None:
        s = self.stats
        await self.redis.hset(self.keys.worker_stats(), self.consumer, json.dumps({
            "read": s.read, "applied": s.applied, "duplicates": s.duplicates,
            "invalid": s.invalid, "dead": s.dead, "reclaimed": s.reclaimed,
            "errors": s.errors}))

    async def run(self, stop: asyncio.Event) -> None:
        await self.prepare()
        # What start-up allocated lives as long as the process: out of the
        # collector's way, so the collections a batch's allocations trigger
        # stay cheap (a py-spy profile of the worker keeping up with the
        # redirect: the collector was a tenth of its CPU).
        gc.collect()
        gc.freeze()
        # A batch's objects (a tuple, a dict and strings a click) die by
        # reference counting, and nearly all of them at the batch's end; at
        # the default threshold (700) the young collections ran several times
        # a batch over objects still in use. (Measured: 3 % of the worker's
        # instructions a click, callgrind, 300-click batches.)
        gc.set_threshold(max(10_000, 20 * self.settings.worker_batch), 10, 10)
        log.info("worker %s reading %s", self.consumer, ", ".join(self.streams()))
        # Several read-fold-ack loops in one process: while Redis runs one
        # batch's scripts, Python prepares the next (measured: 23.8k clicks/s
        # with one lane, 32.7k with three). Safe because every fold is
        # idempotent and independent of arrival order (the arrival-order
        # property test); each loop acks only what it folded, and reclaim skips
        # what a sibling lane holds. A crash takes more entries in flight with
        # it, but poison is judged by failures alone (MAX_SOLO_ATTEMPTS), so
        # none of them is dead-lettered (the SIGKILL test).
        await asyncio.gather(*(self._lane(stop, i) for i in range(self.settings.worker_lanes)))
        if self._sweeping is not None:  # idempotent: the group's next turn does it all
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
        with contextlib.suppress(RedisError, OSError):
            await self.publish_stats()  # (the last rounds' too)
        log.info("worker %s stopped: %s", self.consumer, self.stats)

    async def _lane(self, stop: asyncio.Event, lane: int = 0) -> None:
        """One read-fold-ack loop. Lanes after the first wait while the worker
        keeps up (its reads come back short): splitting a trickle into more,
        smaller batches only adds overhead per click (measured in the redirect
        benchmark), so they join in only when there is a backlog."""
        while not stop.is_set():
            if lane and not self._backlog.is_set():
                with contextlib.suppress(TimeoutError):  # to look at `stop` again
                    await asyncio.wait_for(self._backlog.wait(), 1.0)
                continue
            try:
                n = await self.run_once(self.settings.worker_block_ms)
                if n >= self.settings.worker_batch:
                    self._backlog.set()
                else:
                    self._backlog.clear()
                if time.monotonic() - self._last_publish >= STATS_EVERY:
                    # (a round can be a few ms: publishing each cost the
                    # worker a redis-py command a round)
                    self._last_publish = time.monotonic()
                    await self.publish_stats()
                if 0 < n < self.settings.worker_batch and self.settings.worker_linger_ms:
                    # Keeping up: let the next clicks gather into a batch.
                    # Read as soon as they come, a busy redirect's clicks
                    # came a few dozen a batch, and the fold's cost per
                    # batch (two scripts, the read, the ack) weighed on the
                    # cores the web shares.
                    await asyncio.sleep(self.settings.worker_linger_ms / 1000)
            except (RedisError, OSError) as exc:
                self.stats.errors += 1
                log.warning("worker round failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1)
            except Exception:
                # Anything else must not take the process (and its sibling lanes)
                # down: seen as uvloop's RuntimeError on a transport a sibling's
                # failure had closed, while a cluster master was down. What this
                # round held stays pending: reclaimed, and judged alone if it
                # keeps failing (MAX_SOLO_ATTEMPTS).
                self.stats.errors += 1
                log.exception("worker round failed; retrying in 1 s")
                await asyncio.sleep(1)


def lower_priority(nice: int) -> None:
    """Run at least this nice (TRACKER_WORKER_NICE): never raises the
    priority, which would need privileges (and is not ours to take)."""
    if nice and os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)


async def run_worker(settings: Settings) -> None:
    lower_priority(settings.worker_nice)
    redis = connect(settings.effective_redis_url, timeout=settings.worker_block_ms / 1000 + 5)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Finish the batch in hand, ack it, then leave.
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(settings, redis)
    try:
        await worker.run(stop)
    finally:
        await worker.aclose()
        await redis.aclose()
