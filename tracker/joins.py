"""The worker's joins: events in, campaign effects out. Async Redis I/O.

Each join reads the workspace's join state, computes with the pure functions
of `attribution.py`, and writes back in one optimistic transaction (WATCH on
the workspace's join version; every join write raises it, so a join that
read state another worker changed meanwhile runs again). What a join
returns are effects on campaigns, applied afterwards by `apply_effects`:

- `Ensure`: set one fact's contribution at a version (scripts/ensure.lua);
- `Status`: register a message and fold status bits (scripts/apply_status.lua).

Both are idempotent and order-proof, so a crash between the join and its
effects, or a redelivery, re-sends the same effects and changes nothing.
Facts keep the campaigns they ever contributed to, so an order that moves
from one campaign to another (a late click) is taken out of the first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from redis.exceptions import NoScriptError, WatchError

from .attribution import (
    EMPTY,
    HOUR_MS,
    STATUS_BITS,
    ClickRef,
    Contribution,
    OrderState,
    attribute,
    converter_contribution,
    engagement_contribution,
    kept_click,
    last_message_before,
    merge_order,
    order_contribution,
)
from .clock import now_ms
from .events import Event
from .keys import Keys
from .money import check_currency, fmt, parse_amount
from .resp import FastRedis, RespError
from .store import Redis, Script, Scripts
from .workspaces import WorkspaceConfig

log = logging.getLogger("tracker.joins")
T = TypeVar("T")
US = "\x1f"


@dataclass(frozen=True)
class Ensure:
    ws: str
    campaign: str
    fact: str
    version: int
    contribution: str  # JSON


@dataclass(frozen=True)
class Status:
    ws: str
    campaign: str
    message_id: str
    bits: int
    recipient: str
    sent_ms: int | None = None  # the send log's time, for the time series


Effect = Ensure | Status


def waiting_orders(value: str | None) -> tuple[list[str], int | None]:
    """The orders that wait for a click id, and since when (unix ms; None for
    a wait stored before waits kept their time)."""
    if not value:
        return [], None
    data = json.loads(value)
    if isinstance(data, list):
        return [str(o) for o in data], None
    return [str(o) for o in data["orders"]], int(data["since"])


def wait_value(orders: Iterable[str], since: int) -> str:
    """A wait as stored: its orders, and when the first began waiting (what
    the retention sweep goes by: the click never came)."""
    return json.dumps({"orders": sorted(set(orders)), "since": since}, sort_keys=True)


def _ms(sent: str) -> int | None:
    """The send log's time: empty while the API has registered the message and
    the worker has not yet read its message event (which fills it in)."""
    return int(sent) if sent else None


def _fact_effects(ws: str, fact: str, rec: dict[str, str], campaign: str,
                  contribution: Contribution) -> tuple[list[Effect], dict[str, str]]:
    """Effects of a fact now contributing `contribution` to `campaign` ("" = none),
    and the fields to store on the fact (its version and campaigns)."""
    new_json = contribution.to_json()
    empty = EMPTY.to_json()
    old = json.loads(rec.get("contrib") or "{}")  # campaign -> contribution json
    new = {campaign: new_json} if campaign and new_json != empty else {}
    version = int(rec.get("v") or 0) + (1 if new != old else 0)
    camps = set(json.loads(rec.get("camps") or "[]")) | set(new)
    effects: list[Effect] = [Ensure(ws, c, fact, version, new.get(c, empty))
                             for c in sorted(camps)]
    return effects, {"v": str(version), "camps": json.dumps(sorted(camps)),
                     "contrib": json.dumps(new, sort_keys=True)}


class Joins:
    def __init__(self, redis: Redis, keys: Keys, fast: FastRedis | None = None) -> None:
        self.redis = redis
        self.fast = fast  # the lean client, where the worker has one
        self.keys = keys
        # One join of a workspace at a time in this process: the worker's lanes
        # would otherwise make each other's optimistic transactions retry
        # (seen: a cluster drain twice as long with three lanes). Processes
        # still meet only through WATCH.
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, ws: str) -> asyncio.Lock:
        lock = self._locks.get(ws)
        if lock is None:
            lock = self._locks[ws] = asyncio.Lock()
        return lock

    async def _txn(self, ws: str, body: Callable[[Any], Awaitable[T]]) -> T:
        """Run `body` (reads, then pipe.multi() and writes) until no one interfered.

        The pipeline is typed Any: redis-py's stubs do not model a WATCHed
        pipeline's two modes (commands run at once, then queued after multi()).
        """
        jv = self.keys.join_version(ws)
        async with self._lock(ws):
            for _ in range(1000):
                async with self.redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(jv)
                        result = await body(pipe)
                        pipe.incr(jv)
                        await pipe.execute()
                        return result
                    except WatchError:
                        continue
        raise RuntimeError(f"join of workspace {ws!r} kept conflicting")

    # -- clicks ------------------------------------------------------------------------
    async def _script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        if self.fast is not None:
            # A batch is a long command: redis-py's packing in Python cost more
            # than the script.
            try:
                return await self.fast.call("EVALSHA", script.sha, len(keys), *keys, *args)
            except RespError as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                return await self.fast.call("EVAL", script.source, len(keys), *keys, *args)
        try:
            return await self.redis.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.redis.eval(script.source, len(keys), *keys, *args)

    async def clicks(self, ws: str, refs: Sequence[ClickRef],
                     cfg: WorkspaceConfig) -> list[Effect]:
        """Index human clicks; re-attribute orders their recipients or ids already have."""
        if not refs:
            return []
        k = self.keys
        # (each recipient once: their history is written with one ZADD)
        histories: dict[str, list[Any]] = {}
        args: list[Any] = [len(refs)]
        for ref in refs:
            args += (ref.click_id, ref.encode())
            if ref.recipient:
                history = histories.get(ref.recipient)
                if history is None:
                    history = histories[ref.recipient] = []
                history += (ref.ts, ref.click_id)
        for history in histories.values():
            args.append(len(history) // 2)
            args += history
        recipients = list(histories)
        keys = [k.click_index(ws), k.join_version(ws), k.click_waits(ws),
                *k.recipients_clicks_and_orders(ws, recipients)]
        async with self._lock(ws):  # it raises the join version: see _locks
            with_orders, waiting = await self._script(Scripts.join_clicks, keys, args)
        orders: set[str] = set()
        for j in with_orders:
            members = await self.redis.smembers(k.recipient_orders(ws, recipients[int(j) - 1]))
            orders |= {str(m) for m in members}
        for waited in waiting[1::2]:
            orders |= set(waiting_orders(waited)[0])
        effects: list[Effect] = []
        for order_id in sorted(orders):
            effects += await self.order(ws, str(order_id), cfg)
        return effects

    async def forget_clicks(self, ws: str, before: int) -> int:
        """Sweep the clicks older than `before` (ms) from the workspace's join
        state: the click index and the recipients' histories. Returns how many
        index entries went.

        What was attributed stays so: an order keeps the click it got
        (`kept_click`), and an order arriving later cannot qualify for so old
        a click (`attribution.clicks_needed_since`). Idempotent, and safe
        beside the joins: it raises the join version, as their writes do
        (scripts/forget_clicks.lua, a call a page).
        """
        k = self.keys
        index = k.click_index(ws)
        removed = 0
        async for entries in self._pages(index):
            old = [ref for ref in (ClickRef.decode(i, v) for i, v in entries.items())
                   if ref.ts < before]
            if old:
                histories = [k.recipient_clicks(ws, r)
                             for r in sorted({ref.recipient for ref in old if ref.recipient})]
                async with self._lock(ws):  # it raises the join version: see _locks
                    removed += int(await self._script(
                        Scripts.forget_clicks, [index, k.join_version(ws), *histories],
                        [before, *(ref.click_id for ref in old)]))
        return removed

    async def _pages(self, key: str) -> AsyncIterator[dict[str, str]]:
        """A hash a page at a time (HSCAN), for the sweeps: each page is
        handled before the next is read."""
        cursor = 0
        while True:
            cursor, page = await self.redis.hscan(key, cursor=cursor, count=1000)
            assert isinstance(page, dict)
            yield {str(f): str(v) for f, v in page.items()}
            if cursor == 0:
                return

    async def forget_waits(self, ws: str, before: int, now: int) -> int:
        """Sweep the waits for click ids that began before `before` (ms): by
        then a click that was coming has come (its order was attributed
        again, and the wait only cost every click batch a look), and one that
        has not never will (a made-up id, a pixel's). A wait stored without
        its time is given `now`, and goes a sweep's bound later. Returns how
        many went. Idempotent; a wait an order changed meanwhile is left for
        the next sweep (scripts/forget_waits.lua, a call a page)."""
        k = self.keys
        waits = k.click_waits(ws)
        removed = 0
        async for entries in self._pages(waits):
            args: list[str] = []
            for cid, value in entries.items():
                orders, since = waiting_orders(value)
                if since is None:
                    args += (cid, value, wait_value(orders, now))
                elif since < before:
                    args += (cid, value, "")
            if args:
                async with self._lock(ws):  # it raises the join version: see _locks
                    removed += int(await self._script(
                        Scripts.forget_waits, [waits, k.join_version(ws)], args))
        return removed

    # -- orders ------------------------------------------------------------------------
    async def order(self, ws: str, order_id: str, cfg: WorkspaceConfig,
                    mutate: Callable[[OrderState], OrderState] | None = None) -> list[Effect]:
        k = self.keys

        async def body(pipe: Any) -> list[Effect]:
            okey = k.order(ws, order_id)
            rec: dict[str, str] = await pipe.hgetall(okey)
            state = OrderState.from_json(order_id, rec.get("state"))
            if mutate is not None:
                state = mutate(state)
            own_ids = list(dict.fromkeys(c for c in (state.click_id, state.pixel_click_id) if c))
            # The click it was attributed to, which the sweep may have taken
            # from the index and the histories since: still its candidate.
            kept = kept_click(json.loads(rec.get("attr") or "null"))
            own: list[ClickRef] = []
            if own_ids:
                vals = await pipe.hmget(k.click_index(ws), own_ids)
                by_id = {i: ClickRef.decode(i, v)
                         for i, v in zip(own_ids, vals, strict=True) if v}
                if kept is not None and kept[0] == "click_id" and kept[1].click_id in own_ids:
                    by_id.setdefault(kept[1].click_id, kept[1])
                own = [by_id[i] for i in own_ids if i in by_id]
            recipients: set[str] = set()
            if state.identities:
                vals = await pipe.hmget(k.identities(ws), list(state.identities))
                recipients |= {v for v in vals if v}
            if state.recipient:
                recipients.add(state.recipient)
            customer: list[ClickRef] = []
            if state.ts is not None:
                for r in sorted(recipients):
                    last = await pipe.zrevrangebyscore(
                        k.recipient_clicks(ws, r), state.ts, "-inf", start=0, num=1)
                    if last:
                        v = await pipe.hget(k.click_index(ws), last[0])
                        if v:
                            customer.append(ClickRef.decode(last[0], v))
                if (kept is not None and kept[0] == "last_click" and kept[1].recipient in recipients
                        and all(c.click_id != kept[1].click_id for c in customer)):
                    # (a later click of theirs before the order still wins)
                    customer.append(kept[1])
            missing: dict[str, tuple[list[str], int | None]] = {}
            unseen = [c for c in own_ids if c not in {x.click_id for x in own}]
            if unseen:
                vals = await pipe.hmget(k.click_waits(ws), unseen)
                missing = {c: waiting_orders(v) for c, v in zip(unseen, vals, strict=True)}
            attr = attribute(state, own, customer, cfg.attribution_window_h)
            contrib = order_contribution(state, attr)
            campaign = attr.campaign if attr else ""
            effects, fields = _fact_effects(ws, f"o:{order_id}", rec, campaign, contrib)
            live = attr is not None and contrib != EMPTY
            pair = f"{attr.campaign}{US}{attr.recipient}" if live and attr else ""
            # Converters: a recipient with attributed orders converts once per
            # campaign, at the hour of their quickest order. Every pair the
            # order ever counted for is kept ("pairs"), as facts keep their
            # campaigns: a crash after an order moved to another pair, before
            # its effects were applied, must re-send the old pair's removal on
            # redelivery, when "pair" already names only the new one.
            ever = json.loads(rec.get("pairs") or "[]")
            pairs = {p for p in (*ever, rec.get("pair", ""), pair)
                     if p and not p.endswith(US)}
            cv_writes: dict[str, str] = {}
            for p in sorted(pairs):
                stored = json.loads(await pipe.hget(k.converters(ws), p) or "{}")
                # order id -> [hours from click, order hour] (a bare number:
                # stored before order hours were kept)
                hours = dict(stored.get("orders", {}))
                hours.pop(order_id, None)
                if p == pair and attr is not None and state.ts is not None:
                    hours[order_id] = [attr.hours, state.ts // HOUR_MS]
                c, r = p.split(US, 1)
                pairs_of = [(int(v[0]), int(v[1])) if isinstance(v, list) else (int(v), None)
                            for v in hours.values()]
                cv_effects, cv_fields = _fact_effects(
                    ws, f"cv:{r}", stored, c, converter_contribution(pairs_of))
                effects += cv_effects
                cv_writes[p] = json.dumps({**cv_fields, "orders": hours}, sort_keys=True)
            pipe.multi()
            pipe.hset(okey, mapping={**fields, "state": state.to_json(), "pair": pair,
                                     "pairs": json.dumps(sorted(pairs)),
                                     "attr": json.dumps(attr.as_json() if attr else None)})
            if cv_writes:
                pipe.hset(k.converters(ws), mapping=cv_writes)
            for r in recipients:
                pipe.sadd(k.recipient_orders(ws, r), order_id)
            for ident in state.identities:
                pipe.sadd(k.identity_orders(ws, ident), order_id)
            for cid, (waiting, since) in missing.items():
                # The click is not here yet (a lagging stream): when it comes,
                # this order is attributed again. (Or it never comes: a made-up
                # id, another workspace's; the sweep forgets the wait then.)
                pipe.hset(k.click_waits(ws), cid,
                          wait_value({*waiting, order_id}, now_ms() if since is None else since))
            return effects

        return await self._txn(ws, body)

    # -- messages and statuses -----------------------------------------------------------
    async def message(self, ws: str, message_id: str, campaign: str, recipient: str,
                      ts: int, identity: str, cfg: WorkspaceConfig,
                      bits: int = 0) -> list[Effect]:
        """A message of the send log: index it, release parked statuses, and
        re-attribute what was waiting for this recipient."""
        k = self.keys

        async def body(pipe: Any) -> tuple[int, set[str], set[str]]:
            parked = int(await pipe.hget(k.parked(ws), message_id) or 0)
            facts = set(await pipe.smembers(k.recipient_facts(ws, recipient)))
            facts |= set(await pipe.smembers(k.message_facts(ws, message_id)))
            orders: set[str] = set()
            if identity:
                facts |= set(await pipe.smembers(k.identity_facts(ws, identity)))
                orders = set(await pipe.smembers(k.identity_orders(ws, identity)))
            pipe.multi()
            pipe.hset(k.message_index(ws), message_id, f"{campaign}{US}{recipient}{US}{ts}")
            pipe.zadd(k.recipient_messages(ws, recipient), {message_id: ts})
            if identity:
                pipe.hsetnx(k.identities(ws), identity, recipient)
            return parked, facts, orders

        parked, facts, orders = await self._txn(ws, body)
        effects: list[Effect] = [Status(ws, campaign, message_id, parked | bits, recipient,
                                         ts)]
        for fact in sorted(facts):
            effects += await self.engagement(ws, fact, cfg)
        for order_id in sorted(orders):
            effects += await self.order(ws, order_id, cfg)
        return effects

    async def statuses(self, events: Sequence[tuple[Event, WorkspaceConfig]]) -> list[Effect]:
        """Many statuses: the send log is read once for all of them (one round
        trip; a status at a time was most of a mixed stream's time), and only
        those whose message is not in it take the one-by-one path."""
        pipe = self.redis.pipeline(transaction=False)
        for ev, _ in events:
            pipe.hget(self.keys.message_index(ev.ws), str(ev.data["message_id"]))
        effects: list[Effect] = []
        for (ev, cfg), known in zip(events, await pipe.execute(), strict=True):
            if known:
                campaign, recipient, sent = str(known).split(US)
                effects.append(Status(ev.ws, campaign, str(ev.data["message_id"]),
                                      STATUS_BITS.get(str(ev.data.get("status")), 0),
                                      recipient, _ms(sent)))
            else:
                effects += await self.status(ev.ws, ev, cfg)
        return effects

    async def messages(self, ws: str, events: Sequence[Event], cfg: WorkspaceConfig
                       ) -> list[Effect]:
        """Many messages of one workspace's send log, as `message` does each,
        in one script call (join_messages.lua), then their follow-ups."""
        k = self.keys
        keys = [k.message_index(ws), k.parked(ws), k.identities(ws), k.join_version(ws)]
        args: list[Any] = []
        for ev in events:
            d = ev.data
            mid, recipient = str(d["message_id"]), str(d["recipient"])
            identity = str(d.get("phone_hash") or "")
            keys += [k.recipient_messages(ws, recipient), k.recipient_facts(ws, recipient),
                     k.message_facts(ws, mid), k.identity_facts(ws, identity),
                     k.identity_orders(ws, identity)]
            args += [mid, f"{d['campaign']}{US}{recipient}{US}{ev.ts}", ev.ts, recipient,
                     identity]
        async with self._lock(ws):  # it raises the join version: see _locks
            reply = await self._script(Scripts.join_messages, keys, args)
        effects: list[Effect] = []
        facts: set[str] = set()
        orders: set[str] = set()
        for ev, (parked, found_facts, found_orders) in zip(events, reply, strict=True):
            effects.append(Status(ws, str(ev.data["campaign"]), str(ev.data["message_id"]),
                                  int(parked), str(ev.data["recipient"]), ev.ts))
            facts |= {str(f) for f in found_facts}
            orders |= {str(o) for o in found_orders}
        for fact in sorted(facts):
            effects += await self.engagement(ws, fact, cfg)
        for order_id in sorted(orders):
            effects += await self.order(ws, order_id, cfg)
        return effects

    async def status(self, ws: str, ev: Event, cfg: WorkspaceConfig) -> list[Effect]:
        data = ev.data
        message_id = str(data["message_id"])
        bits = STATUS_BITS.get(str(data.get("status")), 0)
        k = self.keys
        known = await self.redis.hget(k.message_index(ws), message_id)
        if known:
            campaign, recipient, sent = str(known).split(US)
            return [Status(ws, campaign, message_id, bits, recipient, _ms(sent))]
        if data.get("campaign") and data.get("recipient"):
            # biz_opaque_callback_data named them: as good as the send log.
            return await self.message(ws, message_id, str(data["campaign"]),
                                      str(data["recipient"]), ev.ts,
                                      str(data.get("phone_hash") or ""), cfg, bits)

        async def park(pipe: Any) -> list[Effect]:
            # Checked and parked in one transaction with the send log, so a
            # message registered meanwhile cannot miss this status.
            found = await pipe.hget(k.message_index(ws), message_id)
            if found:
                campaign, recipient, sent = str(found).split(US)
                pipe.multi()
                return [Status(ws, campaign, message_id, bits, recipient, _ms(sent))]
            old = int(await pipe.hget(k.parked(ws), message_id) or 0)
            pipe.multi()
            pipe.hset(k.parked(ws), message_id, old | bits)
            return []

        return await self._txn(ws, park)

    # -- replies and opt-outs ---------------------------------------------------------------
    async def engagement(self, ws: str, key: str, cfg: WorkspaceConfig,
                         ev: Event | None = None) -> list[Effect]:
        """A reply, opt-out or opt-in belongs to the campaign of the recipient's
        latest message before it, within the attribution window (or to the
        message it answers, when WhatsApp names it)."""
        k = self.keys

        async def body(pipe: Any) -> list[Effect]:
            fkey = k.fact(ws, key)
            rec: dict[str, str] = await pipe.hgetall(fkey)
            if ev is not None:
                d = ev.data
                identity = str(d.get("phone_hash") or d.get("email_hash") or d.get("user_hash")
                               or "")
                info = {"kind": ev.type, "ts": ev.ts, "recipient": d.get("recipient", ""),
                        "identity": identity, "campaign": d.get("campaign", ""),
                        "context": d.get("context_id") or d.get("message_id") or ""}
            else:
                info = json.loads(rec["info"])
            campaign = recipient = ""
            if info["context"]:
                found = await pipe.hget(k.message_index(ws), info["context"])
                if found:
                    campaign, recipient, _ = str(found).split(US)
            if not campaign:
                recipient = str(info["recipient"] or "")
                if not recipient and info["identity"]:
                    recipient = str(await pipe.hget(k.identities(ws), info["identity"]) or "")
                if recipient and info["campaign"]:
                    campaign = str(info["campaign"])
                elif recipient:
                    ts = int(info["ts"])
                    window = cfg.attribution_window_h * 3_600_000
                    ids = await pipe.zrangebyscore(
                        k.recipient_messages(ws, recipient), ts - window, ts, withscores=True)
                    if ids:
                        vals = await pipe.hmget(k.message_index(ws), [m for m, _ in ids])
                        sent = [(int(score), str(v).split(US)[0])
                                for (_, score), v in zip(ids, vals, strict=True) if v]
                        campaign = last_message_before(sent, ts, cfg.attribution_window_h) or ""
            contrib = (engagement_contribution(info["kind"], recipient, int(info["ts"]))
                       if campaign else EMPTY)
            effects, fields = _fact_effects(ws, f"e:{key}", rec, campaign, contrib)
            pipe.multi()
            pipe.hset(fkey, mapping={**fields, "info": json.dumps(info, sort_keys=True)})
            if recipient:
                pipe.sadd(k.recipient_facts(ws, recipient), key)
            elif info["identity"]:
                pipe.sadd(k.identity_facts(ws, info["identity"]), key)
            if info["context"] and not campaign:
                # It answers a message we do not know yet: look again when we do.
                pipe.sadd(k.message_facts(ws, info["context"]), key)
            return effects

        return await self._txn(ws, body)

    # -- one event ---------------------------------------------------------------------
    async def event(self, ev: Event, cfg: WorkspaceConfig) -> list[Effect]:
        ws, d = ev.ws, ev.data
        if ev.type == "message":
            return await self.message(ws, str(d["message_id"]), str(d["campaign"]),
                                      str(d["recipient"]), ev.ts,
                                      str(d.get("phone_hash") or ""), cfg)
        if ev.type == "status":
            return await self.status(ws, ev, cfg)
        if ev.type in ("reply", "opt_out", "opt_in"):
            return await self.engagement(ws, ev.key, cfg, ev)
        if ev.type in ("order", "order_cancelled", "refund"):
            kind, src, ts = ev.type, ev.src, ev.ts

            def mutate(state: OrderState) -> OrderState:
                return merge_order(state, kind, src, ts, d)

            return await self.order(ws, str(d["order_id"]), cfg, mutate)
        return []


def pixel_purchase(fields: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
    """(workspace, purchase data) from a raw pixel entry, if it is a valid purchase."""
    q = {k: v[0] for k, v in parse_qs(fields.get("d", "")).items() if v}
    if q.get("e") != "purchase" or not q.get("oid") or not q.get("w"):
        return None
    data: dict[str, Any] = {"order_id": q["oid"][:100], "click_id": q.get("cid", "")[:64]}
    try:
        data["total"] = fmt(parse_amount(q.get("v", "")))
        data["currency"] = check_currency(q.get("cur"))
    except ValueError:
        pass  # a purchase without usable amounts still names its click
    return q["w"], data


async def apply_effects(redis: Redis, keys: Keys, effects: Sequence[Effect]) -> None:
    """Apply campaign effects in one pipeline (each is idempotent)."""
    if not effects:
        return
    for attempt in (1, 2):
        pipe = redis.pipeline(transaction=False)
        for e in effects:
            # (execute_command: a cluster pipeline refuses its evalsha helper)
            if isinstance(e, Ensure):
                pipe.execute_command(
                    "EVALSHA", Scripts.ensure.sha, 7, keys.contributions(e.ws, e.campaign),
                    keys.aggregates(e.ws, e.campaign), keys.set_counts(e.ws, e.campaign),
                    keys.order_rows(e.ws, e.campaign), keys.series(e.ws, e.campaign),
                    keys.link_aggregates(e.ws, e.campaign), keys.order_lags(e.ws, e.campaign),
                    e.fact, e.version, e.contribution)
            else:
                hour = "" if e.sent_ms is None else str(e.sent_ms // HOUR_MS)
                pipe.execute_command(
                    "EVALSHA", Scripts.apply_status.sha, 4, keys.message_bits(e.ws, e.campaign),
                    keys.aggregates(e.ws, e.campaign), keys.recipients(e.ws, e.campaign),
                    keys.series(e.ws, e.campaign), e.message_id, e.bits, e.recipient, hour)
                pipe.sadd(keys.workspace_campaigns(e.ws), e.campaign)
        results = await pipe.execute(raise_on_error=False)
        errors = [r for r in results if isinstance(r, Exception)]
        if not errors:
            return
        if attempt == 1 and all(isinstance(x, NoScriptError) for x in errors):
            for script in (Scripts.ensure, Scripts.apply_status):
                await redis.script_load(script.source)
            continue
        raise errors[0]
