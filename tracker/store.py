"""Async Redis I/O for the API and the CLI: workspaces, keys, links, reports.

The redirect's hot path and the worker have their own small I/O
(`redirect.py`, `worker.py`); everything here may take a few round trips.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections import defaultdict
from collections.abc import Iterator, Sequence
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
from .links import code_key, derived_codes, template_id
from .messages import CampaignSpec, Registration
from .models import DELETED, US, Link, link_record, record_template
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
    if url.startswith("redis://") and not _packs_with_hiredis():
        extra["connection_class"] = _HiredisPackedConnection
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=timeout,
        health_check_interval=30,
        **extra,
    )


@functools.cache
def _packs_with_hiredis() -> bool:
    """Whether redis-py's asyncio connection packs commands with hiredis itself
    (newer releases do: their `_command_packer`); older ones pack in Python."""
    return getattr(aioredis.Connection(), "_command_packer", None) is not None


class _HiredisPackedConnection(aioredis.Connection):
    """Older redis-py's asyncio connection packs commands in Python, its sync
    one with hiredis in C; this one uses the sync one's packer. A 1,000-link
    script call is 8,000 arguments: packing them was a quarter of the batch
    API's time."""

    # (untyped in the redis-py releases that no longer need this class)
    _serializer = HiredisRespSerializer()  # type: ignore[no-untyped-call,unused-ignore]

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
    edit_link = Script.load("edit_link")
    redirect_miss = Script.load("redirect_miss")
    apply_click = Script.load("apply_click")
    intake = Script.load("intake")
    ensure = Script.load("ensure")
    apply_status = Script.load("apply_status")
    join_clicks = Script.load("join_clicks")
    join_messages = Script.load("join_messages")
    forget_clicks = Script.load("forget_clicks")
    forget_waits = Script.load("forget_waits")

    @classmethod
    def all(cls) -> list[Script]:
        return [cls.create_links, cls.edit_link, cls.redirect_miss, cls.apply_click,
                cls.intake, cls.ensure, cls.apply_status, cls.join_clicks, cls.join_messages,
                cls.forget_clicks, cls.forget_waits]


SCOPES = ("full", "read")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_id(digest: str) -> str:
    """A key's public name: the start of its hash (never the key)."""
    return digest[:12]


def index_field(recipient: str, url: str) -> str:
    # The old link index (links created before codes were derived; read only).
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
        return (await self.load_links([code])).get(code)

    async def load_links(self, codes: Sequence[str]) -> dict[str, Link]:
        """code -> link for those that exist (two round trips): links kept in
        buckets, and links stored the old way (an own hash each)."""
        pipe = self.redis.pipeline(transaction=False)
        for code in codes:
            pipe.hget(self.keys.link_bucket(code), code)
            pipe.hgetall(self.keys.link(code))
        replies = await pipe.execute()
        records: dict[str, str] = {}
        legacy: list[tuple[str, dict[str, str]]] = []
        for i, code in enumerate(codes):
            record, h = replies[2 * i], replies[2 * i + 1]
            if record:
                if record != DELETED:
                    records[code] = str(record)
            elif h:
                legacy.append((code, h))
        wanted = sorted({(self.keys.partition(c), record_template(v)) for c, v in records.items()})
        pipe = self.redis.pipeline(transaction=False)
        for partition, tid in wanted:
            pipe.hget(self.keys.templates(partition), tid)
        todo = [(code, h) for code, h in legacy if "u" not in h and h.get("d")]
        for code, h in todo:
            pipe.hget(self.keys.destinations_for(code), h["d"])
        replies = await pipe.execute() if wanted or todo else []
        templates = dict(zip(wanted, replies[:len(wanted)], strict=True))
        for (_, h), url in zip(todo, replies[len(wanted):], strict=True):
            h["u"] = str(url or "")
        out: dict[str, Link] = {}
        for code, record in records.items():
            template = templates.get((self.keys.partition(code), record_template(record)))
            if template:
                out[code] = Link.from_record(code, record, str(template))
        for code, h in legacy:
            out[code] = Link.from_hash(code, h)
        return out

    async def link_urls(self, codes: Sequence[str]) -> dict[str, str]:
        """code -> final URL, for many links (two round trips)."""
        links = await self.load_links(codes)
        return {code: links[code].url if code in links else "" for code in codes}

    async def create_links(
        self, ws: str, specs: Sequence[LinkSpec], secret: str
    ) -> list[Link]:
        """Create links idempotently; results in the order of `specs`.

        A link is identified by (campaign, recipient, final URL) in its
        workspace. Its code is the first of the identity's derived candidates
        (links.derived_codes) that is free or already holds this identity, so a
        repeated or concurrent request finds the same link without an index.
        Links created before codes were derived are found in the campaign's
        old index first.
        """
        created = now_ms()
        specs_of: dict[tuple[str, str, str], LinkSpec] = {}
        for spec in specs:
            specs_of.setdefault((spec.campaign, spec.recipient, spec.url), spec)
        found = await self._legacy_links(ws, list(specs_of))
        todo = [t for t in specs_of if t not in found]
        key = code_key(secret)
        candidates = {t: self._candidates(key, ws, t) for t in todo}
        code_of = {t: next(candidates[t]) for t in todo}
        while todo:
            by_partition: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
            for t in todo:
                by_partition[self.keys.partition(code_of[t])].append(t)
            pipe = self.redis.pipeline(transaction=False)
            calls: list[list[tuple[str, str, str]]] = []
            for partition, triples in by_partition.items():
                for start in range(0, len(triples), CREATE_CHUNK):
                    chunk = triples[start:start + CREATE_CHUNK]
                    self._queue_create(pipe, ws, partition, chunk, code_of, specs_of, created)
                    calls.append(chunk)
            try:
                results = await pipe.execute()
            except NoScriptError:
                await self.redis.script_load(Scripts.create_links.source)
                continue  # a failed EVALSHA wrote nothing: send again
            todo = []
            for chunk, replies in zip(calls, results, strict=True):
                for t, reply in zip(chunk, replies, strict=True):
                    spec = specs_of[t]
                    if reply == 1:
                        found[t] = _link_of(code_of[t], ws, spec, created)
                    elif reply == 0:
                        code_of[t] = next(candidates[t])  # taken: the next candidate
                        todo.append(t)
                    else:
                        found[t] = Link.from_record(
                            code_of[t], str(reply), US.join((ws, spec.campaign, spec.url)))
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.workspace_campaigns(ws), *{spec.campaign for spec in specs})
        # Every recipient, found or created: a retry after a crash between the
        # two steps completes the set (SADD is idempotent).
        by_campaign: dict[str, list[str]] = defaultdict(list)
        for campaign, recipient, _ in specs_of:
            if recipient:
                by_campaign[campaign].append(recipient)
        for campaign, recipients in by_campaign.items():
            for start in range(0, len(recipients), CREATE_CHUNK):
                pipe.sadd(self.keys.recipients(ws, campaign),
                          *recipients[start:start + CREATE_CHUNK])
        await pipe.execute()
        await self.save_identities(ws, [
            (identity_hash(secret, kind, value), spec.recipient)
            for spec in specs
            for kind, value in (("phone", spec.phone), ("email", spec.email))
            if value
        ])
        return [found[(s.campaign, s.recipient, s.url)] for s in specs]

    def _queue_create(self, pipe: Any, ws: str, partition: int,
                      chunk: list[tuple[str, str, str]], code_of: dict[tuple[str, str, str], str],
                      specs_of: dict[tuple[str, str, str], LinkSpec], created: int) -> None:
        templates: dict[str, int] = {}
        head: list[Any] = []
        keys: list[str] = []
        args: list[Any] = []
        for t in chunk:
            campaign, recipient, url = t
            tid = template_id(ws, campaign, url)
            if tid not in templates:
                templates[tid] = len(templates) + 1
                head += [tid, US.join((ws, campaign, url)), US.join((ws, campaign))]
            spec = specs_of[t]
            code = code_of[t]
            keys += [self.keys.link_bucket(code), self.keys.link(code)]
            args += [code, templates[tid],
                     link_record(tid, recipient, created, spec.expires_at, False, spec.metadata)]
        keys += [self.keys.templates(partition), self.keys.link_counts(partition)]
        # (execute_command: a cluster pipeline refuses its evalsha helper)
        pipe.execute_command("EVALSHA", Scripts.create_links.sha, len(keys), *keys,
                             len(templates), *head, *args)

    def _candidates(self, key: bytes, ws: str, triple: tuple[str, str, str]) -> Iterator[str]:
        return candidate_codes(self.keys, key, ws, triple, self.settings.code_length)

    async def _legacy_links(self, ws: str, triples: list[tuple[str, str, str]]
                            ) -> dict[tuple[str, str, str], Link]:
        """Links created before codes were derived: in their campaign's index."""
        campaigns = sorted({campaign for campaign, _, _ in triples})
        pipe = self.redis.pipeline(transaction=False)
        for campaign in campaigns:
            pipe.exists(self.keys.link_index(ws, campaign))
        indexed = {c for c, n in zip(campaigns, await pipe.execute(), strict=True) if n}
        asked = [t for t in triples if t[0] in indexed]
        if not asked:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for campaign, recipient, url in asked:
            pipe.hget(self.keys.link_index(ws, campaign), index_field(recipient, url))
        codes = {t: str(c) for t, c in zip(asked, await pipe.execute(), strict=True) if c}
        links = await self.load_links(sorted(set(codes.values())))
        return {t: links[c] for t, c in codes.items() if c in links}

    async def update_link(self, link: Link, changes: dict[str, Any]) -> Link:
        expires = "="
        if "expires_at" in changes:
            expires = "" if changes["expires_at"] is None else str(changes["expires_at"])
        disabled = "=" if "disabled" not in changes else ("1" if changes["disabled"] else "")
        record = await Scripts.edit_link(
            self.redis, [self.keys.link_bucket(link.code),
                         self.keys.link_counts(self.keys.partition(link.code))],
            [link.code, "set", expires, disabled])
        if not record:
            await self._update_legacy(link, changes)
        return await self.get_link(link.code) or link

    async def _update_legacy(self, link: Link, changes: dict[str, Any]) -> None:
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

    async def delete_link(self, link: Link) -> None:
        """Delete the link; clicks already counted stay counted. Its code is
        never given to another link."""
        deleted = await Scripts.edit_link(
            self.redis, [self.keys.link_bucket(link.code),
                         self.keys.link_counts(self.keys.partition(link.code))],
            [link.code, "delete", US.join((link.ws, link.campaign))])
        if deleted:
            return
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
        trip, O(1) in the number of clicks and events (and O(partitions))."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.aggregates(ws, campaign))
        pipe.scard(self.keys.recipients(ws, campaign))
        pipe.hgetall(self.keys.campaign_meta(ws, campaign))
        # Links: the old index's entries and each partition's count.
        pipe.hlen(self.keys.link_index(ws, campaign))
        field = US.join((ws, campaign))
        for partition in range(self.keys.partitions):
            pipe.hget(self.keys.link_counts(partition), field)
        agg, recipients, meta, *links = await pipe.execute()
        return ({k: int(v) for k, v in agg.items()}, sum(int(n or 0) for n in links),
                int(recipients), meta)

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


def candidate_codes(keys: Keys, key: bytes, ws: str, triple: tuple[str, str, str],
                    length: int) -> Iterator[str]:
    """A link identity's codes that may be used, in order: not a word the
    router serves, and, for a recipient's link, in the recipient's partition
    (so all their clicks land in one stream, read in order by one consumer)."""
    campaign, recipient, url = triple
    partition = keys.partition(recipient) if recipient else None
    for code in derived_codes(key, US.join((ws, campaign, recipient, url)), length):
        if code in RESERVED_CODES:
            continue
        if partition is None or keys.partition(code) == partition:
            yield code


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
