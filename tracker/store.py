"""Async Redis I/O for the API and the CLI: workspaces, keys, links, reports.

The redirect's hot path and the worker have their own small I/O
(`redirect.py`, `worker.py`); everything here may take a few round trips.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError, ResponseError

from . import keys as keymod
from .clock import iso_ms, now_ms
from .identity import identity_hash
from .keys import Keys
from .links import new_code
from .messages import CampaignSpec, Registration
from .models import Link
from .settings import Settings
from .validation import LinkSpec
from .workspaces import WorkspaceConfig

Redis = aioredis.Redis

WORKSPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Words the router serves itself; a code never takes one of them.
RESERVED_CODES = frozenset({"dashboard", "healthz", "readyz", "metrics", "openapi", "webhooks"})
# Codes per create_links call: one script runs alone on the server, so keep
# each call short enough not to stall redirects.
CREATE_CHUNK = 1000


class WorkspaceExists(Exception):
    pass


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def connect(url: str, *, timeout: float | None = 5.0) -> Redis:
    """A client for `url`: one server, or with redis+cluster:// (rediss+cluster://)
    a Redis Cluster, found from the node(s) named in the URL.

    The cluster client is typed as the single-node one: tracker uses only the
    commands both share, and every script, transaction and multi-key command
    stays within one hash tag (see keys.py).
    """
    if is_cluster_url(url):
        from redis.asyncio.cluster import ClusterNode, RedisCluster
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        plain = url.replace("+cluster", "", 1)
        rest = plain.split("://", 1)[1]
        auth, _, hosts = rest.rpartition("@")
        hosts = hosts.split("/", 1)[0]
        nodes = [ClusterNode(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]))
                 for h in hosts.split(",") if h]
        user, _, password = auth.partition(":") if auth else ("", "", "")
        # One quick retry, not redis-py's default of three with backoff: a
        # redirect whose master is down should reach the outage spool in
        # milliseconds, and a worker retries its whole round anyway.
        cluster = RedisCluster(
            startup_nodes=nodes, decode_responses=True, socket_connect_timeout=2.0,
            socket_timeout=timeout, username=user or None, password=password or None,
            ssl=plain.startswith("rediss://"), require_full_coverage=False,
            retry=Retry(NoBackoff(), 1),
        )
        return cast(Redis, cluster)
    extra: dict[str, Any] = {}
    if url.startswith("redis://"):
        extra["connection_class"] = _HiredisPackedConnection
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=timeout,
        health_check_interval=30,
        **extra,
    )


class _HiredisPackedConnection(aioredis.Connection):
    """redis-py's asyncio connection packs commands in Python, its sync one with
    hiredis in C; this one uses the sync one's packer. A 1,000-link script call
    is 8,000 arguments: packing them was a quarter of the batch API's time."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._serializer.pack(*args)
        return packed


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        source = resources.files("tracker").joinpath(f"scripts/{name}.lua").read_text()
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    async def __call__(self, r: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await r.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A restarted or flushed Redis forgets scripts; EVAL loads it again.
            return await r.eval(self.source, len(keys), *keys, *args)


class Scripts:
    create_links = Script.load("create_links")
    claim_index = Script.load("claim_index")
    redirect_miss = Script.load("redirect_miss")
    apply_click = Script.load("apply_click")
    intake = Script.load("intake")
    ensure = Script.load("ensure")
    apply_status = Script.load("apply_status")
    join_clicks = Script.load("join_clicks")

    @classmethod
    def all(cls) -> list[Script]:
        return [cls.create_links, cls.claim_index, cls.redirect_miss, cls.apply_click,
                cls.intake, cls.ensure, cls.apply_status, cls.join_clicks]


SCOPES = ("full", "read")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_id(digest: str) -> str:
    """A key's public name: the start of its hash (never the key)."""
    return digest[:12]


def destination_id(url: str) -> str:
    """A final URL's id in the destinations table (72 bits of its hash)."""
    return base64.urlsafe_b64encode(hashlib.blake2b(url.encode(), digest_size=9).digest()
                                    ).decode()


def index_field(recipient: str, url: str) -> str:
    # The final URL (UTM merged) identifies the destination: a different utm
    # object is a different link. Hashed so the index stays small.
    return f"{recipient}\x1f{hashlib.blake2b(url.encode(), digest_size=12).hexdigest()}"


class Store:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.key_prefix, settings.partitions)

    # -- set-up -------------------------------------------------------------------
    async def prepare(self) -> None:
        """Load scripts and create the consumer groups (idempotent)."""
        for script in Scripts.all():
            await self.redis.script_load(script.source)
        for stream in self.keys.click_streams() + self.keys.event_streams():
            try:
                # From id 0: clicks written before any worker started still count.
                await self.redis.xgroup_create(stream, keymod.CLICK_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # -- workspaces -----------------------------------------------------------------
    async def create_workspace(self, name: str) -> str:
        """Create a workspace and its first API key; returns the key (shown once)."""
        if not WORKSPACE_RE.match(name):
            raise ValueError(
                "workspace name: 1-63 characters of a-z, 0-9, '-' and '_', "
                "starting with a letter or digit"
            )
        created = await self.redis.hsetnx(self.keys.workspace(name), "created_at", now_ms())
        if not created:
            raise WorkspaceExists(name)
        # The key of the workspace's phone/email hashes; never leaves Redis.
        await self.redis.hsetnx(self.keys.workspace(name), "hs", secrets.token_hex(32))
        await self.redis.sadd(self.keys.workspaces(), name)
        return await self.add_api_key(name)

    async def add_api_key(self, ws: str, scope: str = "full") -> str:
        """A new key; only its hash is stored (a leaked database leaks no key)."""
        if scope not in SCOPES:
            raise ValueError(f"scope: one of {', '.join(SCOPES)}")
        api_key = "trk_" + secrets.token_urlsafe(32)
        digest = hash_key(api_key)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.api_key(digest), mapping={"ws": ws, "scope": scope,
                                                      "created": now_ms()})
        pipe.hset(self.keys.workspace_keys(ws), key_id(digest), digest)
        await pipe.execute()
        return api_key

    async def list_keys(self, ws: str) -> list[dict[str, Any]]:
        ids: dict[str, str] = await self.redis.hgetall(self.keys.workspace_keys(ws))  # type: ignore[assignment]
        out = []
        for kid, digest in sorted(ids.items()):
            rec = await self.redis.hgetall(self.keys.api_key(digest))
            if rec:
                out.append({"key_id": kid, "scope": rec.get("scope", "full"),
                            "created_at": iso_ms(int(rec.get("created", 0)))})
        return out

    async def revoke_key(self, ws: str, kid: str) -> bool:
        """Revoked at once: the next request with the key is a 401."""
        digest = await self.redis.hget(self.keys.workspace_keys(ws), kid)
        if not digest:
            return False
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.api_key(str(digest)))
        pipe.hdel(self.keys.workspace_keys(ws), kid)
        await pipe.execute()
        return True

    async def key_scope(self, ws: str, kid: str) -> str | None:
        digest = await self.redis.hget(self.keys.workspace_keys(ws), kid)
        if not digest:
            return None
        scope = await self.redis.hget(self.keys.api_key(str(digest)), "scope")
        return str(scope) if scope else None

    async def workspace_exists(self, ws: str) -> bool:
        return bool(await self.redis.exists(self.keys.workspace(ws)))

    async def workspace_config(self, ws: str) -> WorkspaceConfig | None:
        h: dict[str, str] = await self.redis.hgetall(self.keys.workspace(ws))  # type: ignore[assignment]
        if not h:
            return None
        if not h.get("hs"):
            await self.redis.hsetnx(self.keys.workspace(ws), "hs", secrets.token_hex(32))
            h["hs"] = str(await self.redis.hget(self.keys.workspace(ws), "hs"))
        return WorkspaceConfig.from_hash(ws, h)

    async def update_workspace(self, ws: str, fields: dict[str, str]) -> WorkspaceConfig:
        await self.redis.hset(self.keys.workspace(ws), mapping=fields)  # type: ignore[arg-type]
        if "ff" in fields:
            # The web processes read this one set, not every workspace's record.
            if fields["ff"] == "1":
                await self.redis.sadd(self.keys.fire_and_forget(), ws)
            else:
                await self.redis.srem(self.keys.fire_and_forget(), ws)
        config = await self.workspace_config(ws)
        assert config is not None
        return config

    async def key_use(self, api_key: str) -> tuple[str, str, int] | None:
        """(workspace, scope, requests this minute) in one round trip: the key's
        record and its per-minute counter (a fixed window, gone after 2 minutes).

        Looked up by the key's SHA-256: a timing difference can only reveal
        something about a hash, never about a key.
        """
        digest = hash_key(api_key)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.api_key(digest), ["ws", "scope"])
        counter = self.keys.rate(key_id(digest), now_ms() // 60_000)
        pipe.incr(counter)
        pipe.expire(counter, 120)
        (ws, scope), used, _ = await pipe.execute()
        return (str(ws), str(scope or "full"), int(used)) if ws else None

    # -- links ----------------------------------------------------------------------
    async def get_link(self, code: str) -> Link | None:
        h: dict[str, str] = await self.redis.hgetall(self.keys.link(code))  # type: ignore[assignment]
        if not h:
            return None
        await self._resolve([(code, h)])
        return Link.from_hash(code, h)

    async def _resolve(self, hashes: Sequence[tuple[str, dict[str, str]]]) -> None:
        """Fill in each link's URL ("u") from its destination id ("d")."""
        todo = [(code, h) for code, h in hashes if "u" not in h and h.get("d")]
        if not todo:
            return
        pipe = self.redis.pipeline(transaction=False)
        for code, h in todo:
            pipe.hget(self.keys.destinations_for(code), h["d"])
        for (_, h), url in zip(todo, await pipe.execute(), strict=True):
            h["u"] = str(url or "")

    async def link_urls(self, codes: Sequence[str]) -> dict[str, str]:
        """code -> final URL, for many links (two round trips)."""
        pipe = self.redis.pipeline(transaction=False)
        for code in codes:
            pipe.hmget(self.keys.link(code), ["u", "d"])
        hashes = [(code, {k: v for k, v in (("u", u), ("d", d)) if v})
                  for code, (u, d) in zip(codes, await pipe.execute(), strict=True)]
        await self._resolve(hashes)
        return {code: h.get("u", "") for code, h in hashes}

    async def create_links(
        self, ws: str, specs: Sequence[LinkSpec], hash_secret: str = ""
    ) -> list[Link]:
        """Create links idempotently; results in the order of `specs`.

        1. Look the (campaign, recipient, destination) triples up in each
           campaign's index: existing links are returned as they are.
        2. Reserve fresh codes for the rest, per partition, redrawing any
           that collide.
        3. Claim the index entries; where a concurrent request won the
           claim, drop our copy and return theirs.
        """
        created = now_ms()
        by_triple: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, spec in enumerate(specs):
            by_triple[(spec.campaign, spec.recipient, spec.url)].append(i)
        triples = list(by_triple)

        # One HMGET per campaign and thousand links, not one HGET a link: the
        # client's per-command cost was a tenth of the batch API's time.
        by_campaign: dict[str, list[int]] = defaultdict(list)
        for i, (campaign, _, _) in enumerate(triples):
            by_campaign[campaign].append(i)
        pipe = self.redis.pipeline(transaction=False)
        chunks: list[list[int]] = []
        for campaign, idxs in by_campaign.items():
            for start in range(0, len(idxs), CREATE_CHUNK):
                chunk = idxs[start:start + CREATE_CHUNK]
                pipe.hmget(self.keys.link_index(ws, campaign),
                           [index_field(triples[i][1], triples[i][2]) for i in chunk])
                chunks.append(chunk)
        existing: list[str | None] = [None] * len(triples)
        for chunk, values in zip(chunks, await pipe.execute(), strict=True):
            for i, value in zip(chunk, values, strict=True):
                existing[i] = value

        code_of: dict[tuple[str, str, str], str] = {}
        fresh: list[tuple[str, str, str]] = []
        for triple, code in zip(triples, existing, strict=True):
            if code:
                code_of[triple] = code
            else:
                fresh.append(triple)

        spec_of = {t: specs[by_triple[t][0]] for t in fresh}
        candidates = await self._reserve_codes(ws, [spec_of[t] for t in fresh], created)
        for triple, code in zip(fresh, candidates, strict=True):
            code_of[triple] = code

        losers = await self._claim(ws, fresh, candidates, code_of)
        if losers:
            await self.redis.delete(*[self.keys.link(c) for c in losers])
        await self.redis.sadd(
            self.keys.workspace_campaigns(ws), *{spec.campaign for spec in specs}
        )
        await self.save_identities(ws, [
            (identity_hash(hash_secret, kind, value), spec.recipient)
            for spec in specs
            for kind, value in (("phone", spec.phone), ("email", spec.email))
            if value and hash_secret
        ])

        ours = dict(zip(candidates, (spec_of[t] for t in fresh), strict=True))
        need = [c for c in set(code_of.values()) if c not in ours or c in losers]
        links: dict[str, Link] = {}
        if need:
            pipe = self.redis.pipeline(transaction=False)
            for code in need:
                pipe.hgetall(self.keys.link(code))
            found = [(code, h) for code, h in zip(need, await pipe.execute(), strict=True) if h]
            await self._resolve(found)
            for code, h in found:
                links[code] = Link.from_hash(code, h)
        for code, spec in ours.items():
            if code not in losers:
                links[code] = _link_of(code, ws, spec, created)
        out: list[Link] = []
        for spec in specs:
            code = code_of[(spec.campaign, spec.recipient, spec.url)]
            out.append(links.get(code) or _link_of(code, ws, spec, created))
        return out

    async def _reserve_codes(self, ws: str, specs: Sequence[LinkSpec], created: int) -> list[str]:
        codes: list[str] = [""] * len(specs)
        todo = list(range(len(specs)))
        while todo:
            by_partition: dict[int, list[int]] = defaultdict(list)
            for i in todo:
                # A recipient's links live in the recipient's partition, so all
                # their clicks land in one stream (read in order by one consumer).
                recipient = specs[i].recipient
                code = self._draw(self.keys.partition(recipient) if recipient else None)
                codes[i] = code
                by_partition[self.keys.partition(code)].append(i)
            pipe = self.redis.pipeline(transaction=False)
            calls: list[list[int]] = []
            for idxs in by_partition.values():
                for start in range(0, len(idxs), CREATE_CHUNK):
                    chunk = idxs[start : start + CREATE_CHUNK]
                    args: list[Any] = []
                    for i in chunk:
                        s = specs[i]
                        args += [ws, s.campaign, s.recipient, destination_id(s.url),
                                 "" if s.expires_at is None else s.expires_at,
                                 s.metadata or "", created, s.url]
                    partition = self.keys.partition(codes[chunk[0]])
                    pipe.execute_command(
                        "EVALSHA", Scripts.create_links.sha, len(chunk) + 1,
                        *[self.keys.link(codes[i]) for i in chunk],
                        self.keys.destinations(partition), *args,
                    )
                    calls.append(chunk)
            try:
                results = await pipe.execute()
            except NoScriptError:
                await self.redis.script_load(Scripts.create_links.source)
                continue  # nothing was written by a failed EVALSHA: draw again
            todo = [i for chunk, res in zip(calls, results, strict=True)
                    for i, ok in zip(chunk, res, strict=True) if not ok]
        return codes

    async def _claim(
        self,
        ws: str,
        fresh: list[tuple[str, str, str]],
        candidates: list[str],
        code_of: dict[tuple[str, str, str], str],
    ) -> set[str]:
        by_campaign: dict[str, list[int]] = defaultdict(list)
        for i, (campaign, _, _) in enumerate(fresh):
            by_campaign[campaign].append(i)
        losers: set[str] = set()
        for campaign, idxs in by_campaign.items():
            for start in range(0, len(idxs), CREATE_CHUNK):
                chunk = idxs[start : start + CREATE_CHUNK]
                args: list[str] = []
                for i in chunk:
                    _, recipient, url = fresh[i]
                    args += [index_field(recipient, url), candidates[i], recipient]
                won = await Scripts.claim_index(
                    self.redis,
                    [self.keys.link_index(ws, campaign), self.keys.recipients(ws, campaign)],
                    args,
                )
                for i, winner in zip(chunk, won, strict=True):
                    if winner != candidates[i]:
                        losers.add(candidates[i])
                        code_of[fresh[i]] = winner
        return losers

    def _draw(self, partition: int | None = None) -> str:
        """A fresh random code; with `partition`, one that falls in it (about
        `partitions` draws, a few microseconds each)."""
        while True:
            code = new_code(self.settings.code_length)
            if code in RESERVED_CODES:
                continue
            if partition is None or self.keys.partition(code) == partition:
                return code

    async def update_link(self, link: Link, changes: dict[str, Any]) -> Link:
        key = self.keys.link(link.code)
        pipe = self.redis.pipeline(transaction=True)
        if "disabled" in changes:
            if changes["disabled"]:
                pipe.hset(key, "x", "1")
            else:
                pipe.hdel(key, "x")
        if "expires_at" in changes:
            if changes["expires_at"] is None:
                pipe.hdel(key, "e")
            else:
                pipe.hset(key, "e", changes["expires_at"])
        await pipe.execute()
        return await self.get_link(link.code) or link

    async def delete_link(self, link: Link) -> None:
        """Delete the link and its index entry; clicks already counted stay counted."""
        await self.redis.delete(self.keys.link(link.code))
        field = index_field(link.recipient, link.url)
        idx = self.keys.link_index(link.ws, link.campaign)
        # Only our own entry: compare-and-delete is not needed for correctness
        # (a re-created link under the same triple has a different code) but
        # keeps a stale DELETE from unhooking a newer link.
        if await self.redis.hget(idx, field) == link.code:
            await self.redis.hdel(idx, field)

    # -- identities, messages, campaigns ------------------------------------------------
    async def save_identities(self, ws: str, pairs: Sequence[tuple[str, str]]) -> None:
        """phone/email hash -> recipient, so an order's customer finds their clicks."""
        if not pairs:
            return
        pipe = self.redis.pipeline(transaction=False)
        for ident, recipient in pairs:
            pipe.hset(self.keys.identities(ws), ident, recipient)
        await pipe.execute()

    async def register_messages(self, ws: str, regs: Sequence[Registration]) -> None:
        """The send log: wamid -> campaign and recipient. Idempotent (HSET)."""
        pipe = self.redis.pipeline(transaction=False)
        for reg in regs:
            # The send time is filled in by the worker from the message event.
            pipe.hsetnx(self.keys.message_index(ws), reg.message_id,
                        f"{reg.campaign}\x1f{reg.recipient}\x1f")
        for campaign in {reg.campaign for reg in regs}:
            pipe.sadd(self.keys.workspace_campaigns(ws), campaign)
        await pipe.execute()
        await self.save_identities(
            ws, [(reg.phone_hash, reg.recipient) for reg in regs if reg.phone_hash]
        )

    async def put_campaign(self, ws: str, campaign: str, spec: CampaignSpec) -> dict[str, str]:
        fields = {"name": spec.name, "spend": spec.spend, "currency": spec.currency,
                  "updated_at": str(now_ms())}
        if spec.sent_at is not None:
            fields["sent_at"] = str(spec.sent_at)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.campaign_meta(ws, campaign), mapping=fields)  # type: ignore[arg-type]
        pipe.sadd(self.keys.workspace_campaigns(ws), campaign)
        pipe.hgetall(self.keys.campaign_meta(ws, campaign))
        meta: dict[str, str] = (await pipe.execute())[-1]
        return meta

    async def campaigns(self, ws: str) -> list[tuple[str, dict[str, str]]]:
        names = sorted(str(n) for n in await self.redis.smembers(self.keys.workspace_campaigns(ws)))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.campaign_meta(ws, name))
        metas = await pipe.execute()
        return list(zip(names, metas, strict=True))

    # -- reports --------------------------------------------------------------------
    async def campaign_counts(
        self, ws: str, campaign: str
    ) -> tuple[dict[str, int], int, int, dict[str, str]]:
        """(aggregate counters, links, recipients, campaign settings): one round
        trip, O(1) in the number of clicks and events."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.aggregates(ws, campaign))
        pipe.hlen(self.keys.link_index(ws, campaign))
        pipe.scard(self.keys.recipients(ws, campaign))
        pipe.hgetall(self.keys.campaign_meta(ws, campaign))
        agg, links, recipients, meta = await pipe.execute()
        return {k: int(v) for k, v in agg.items()}, int(links), int(recipients), meta

    async def campaign_series(self, ws: str, campaign: str
                              ) -> tuple[dict[str, int], dict[str, int]]:
        """(hourly counters, order counters by hours from click and order hour)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.series(ws, campaign))
        pipe.hgetall(self.keys.order_lags(ws, campaign))
        series, lags = await pipe.execute()
        return ({str(k): int(v) for k, v in series.items()},
                {str(k): int(v) for k, v in lags.items()})

    async def campaign_known(self, ws: str, campaign: str) -> bool:
        return bool(await self.redis.sismember(self.keys.workspace_campaigns(ws), campaign))


def _link_of(code: str, ws: str, spec: LinkSpec, created: int) -> Link:
    return Link(
        code=code,
        ws=ws,
        campaign=spec.campaign,
        recipient=spec.recipient,
        url=spec.url,
        created_at=created,
        expires_at=spec.expires_at,
        metadata=spec.metadata,
    )
