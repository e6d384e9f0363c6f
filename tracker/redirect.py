"""The hot path: ``GET /{code}`` answers a 302 and logs the click to a stream.

Two entrances with one behaviour: `Redirector.__call__`, a bare ASGI handler
in front of the Starlette app (Starlette's routing and Response objects cost
about as much again as the whole redirect), and `Redirector.redirect_now`,
which uvicorn's protocol calls without an ASGI task (fastpath.py) and which
answers from a callback when Redis replies. What happens per request:

- the code is checked against the alphabet (junk paths never reach Redis);
- a link in the process's cache (trusted for ``TRACKER_LINK_CACHE_TTL``
  seconds) costs one XADD; a miss costs one script call that reads the link
  and appends the click together. Either way: one round trip, and the click
  is acknowledged by Redis before the 302 is sent;
- concurrent requests share round trips: their commands go to Redis in one
  pipeline (group commit), and each response is released when its batch is
  acknowledged;
- no user-agent parsing and no enrichment: the worker does that.

If Redis fails, a cached link still redirects (the click goes to a local
append-only spool and is written when Redis answers again: spool.py); an
uncached one gets a 503 page with Retry-After rather than a hang.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from redis.exceptions import NoScriptError, RedisError

from .clientip import anonymise, client_ip
from .keys import Keys
from .links import looks_like_code, redirect_parts
from .models import CLICK, US, click_field, click_values
from .prometheus import WebMetrics
from .ratelimit import TokenBucket, unlimited
from .resp import FastRedis, RespError
from .resp import supported as resp_supported
from .settings import Settings
from .spool import Spool
from .store import RESERVED_CODES, Redis, Scripts

log = logging.getLogger("tracker.redirect")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# A whole response: status, headers, body.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
# Writes one (fastpath.respond).
Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], None]

# What uvicorn refuses in a header value (its HEADER_VALUE_RE): such a
# Location takes the ASGI path, which fails as it always has.
_BAD_HEADER_VALUE = re.compile(b"[\x00-\x08\x0A-\x1F\x7F]")

_NO_STORE = (b"cache-control", b"private, no-store")


def _page(title: str, text: str) -> bytes:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{title}</title><body style='font:16px/1.5 system-ui,sans-serif;"
        f"max-width:32em;margin:4em auto;padding:0 1em'><h1>{title}</h1><p>{text}</p>"
    ).encode()


PAGE_404 = _page("Link not found", "This link does not exist. Please check the message it came in.")
PAGE_410 = _page("Link no longer active", "This link has expired or was switched off.")
PAGE_429 = _page("Slow down, please", "Too many requests from your network just now. "
                 "Please try again in a moment.")
PAGE_503 = _page("One moment, please", "We could not open this link just now. "
                 "Please try again in a few seconds.")


# A cached link, as a plain tuple of strings, numbers and bytes (the fields
# below, read by these indices). Not an object, because of the garbage
# collector: it stops tracking such a tuple the first time it sees it, and an
# object it tracks forever. With 100,000 cached objects each full collection
# took about 38 ms (as tuples: nothing), and every redirect of the process
# waits for it. Full collections are rare at a steady load (about one in 18 s
# of the benchmark's runs), so this bounds the worst pause, not the median.
CachedLink = tuple[str, str, str, str, int | None, bool, float, str, bytes | None, bytes]
WS: Final = 0
PREFIX: Final = 1  # Location = prefix + click id + suffix
SUFFIX: Final = 2
TAIL: Final = 3  # the click's last values: ws, campaign, recipient (models.CLICK_FIELDS)
EXPIRES_AT: Final = 4  # ms, or None
DISABLED: Final = 5
FETCHED: Final = 6  # time.monotonic() when read from Redis
STREAM: Final = 7  # the click stream of the code's partition
# prefix and suffix as the fast path writes them: LOCATION_PREFIX is None when
# uvicorn would refuse the Location (not latin-1, or a control character):
# the ASGI path answers those, as it always has (click ids are base64url).
LOCATION_PREFIX: Final = 8
LOCATION_SUFFIX: Final = 9


def cached_link(ws: str, prefix: str, suffix: str, tail: str, expires_at: int | None,
                disabled: bool, fetched: float, stream: str) -> CachedLink:
    """A cache entry, with the Location's parts as the fast path writes them."""
    try:
        location: tuple[bytes | None, bytes] = (prefix.encode("latin-1"), suffix.encode("latin-1"))
    except UnicodeEncodeError:
        location = (None, b"")
    if location[0] is not None and _BAD_HEADER_VALUE.search(location[0] + location[1]):
        location = (None, b"")
    return (ws, prefix, suffix, tail, expires_at, disabled, fetched, stream, *location)


class LinkCache:
    """A bounded map of code -> link, trusted for `ttl` seconds per entry.

    Eviction is first-in-first-out: cheaper than LRU on every hit, and a hot
    link evicted by accident costs one script call to come back. The order is
    a deque beside a plain dict, because a dict's oldest key is not O(1):
    deleting from the front leaves holes that next(iter(d)) walks until the
    next resize (a full cache of 100,000 spent 45 us a miss there). Not an
    OrderedDict: the collector would walk all of its entries at every full
    collection (7 ms for 100,000; a dict of untracked values it leaves alone,
    a deque of strings costs it under 1 ms).
    """

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._data: dict[str, CachedLink] = {}
        self._order: deque[str] = deque()  # each cached code once, oldest first

    def get(self, code: str, now: float) -> CachedLink | None:
        entry = self._data.get(code)
        if entry is None or now - entry[FETCHED] >= self.ttl:
            return None
        return entry

    def put(self, code: str, entry: CachedLink) -> None:
        if self.size <= 0:
            return
        data = self._data
        if code not in data:
            if len(data) >= self.size:
                del data[self._order.popleft()]
            self._order.append(code)
        data[code] = entry

    def __len__(self) -> int:
        return len(self._data)


class GroupCommit:
    """Send the commands of concurrent requests to Redis in one pipeline.

    The first request to arrive while no batch is in flight starts one; the
    ones arriving meanwhile wait for the next. Each caller gets its own
    command's reply (or exception).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._running = False

    async def call(self, *args: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((args, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                pipe = self.redis.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                try:
                    replies = await pipe.execute(raise_on_error=False)
                except Exception as exc:  # connection-level: every caller fails alike
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), reply in zip(batch, replies, strict=True):
                    if fut.done():
                        continue
                    if isinstance(reply, Exception):
                        fut.set_exception(reply)
                    else:
                        fut.set_result(reply)
        finally:
            self._running = False


# A 1x1 transparent GIF.
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01"
         b"\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


# Click ids: 72 random bits, base64url (12 characters). Drawn from a generator
# seeded once per process from the OS: unique and unguessable enough for an
# attribution key, without a getrandom() syscall per request, which measured
# at about a quarter of the whole redirect's CPU on our machines.
_rng = random.Random(secrets.randbits(128))


def new_click_id() -> str:
    return base64.urlsafe_b64encode(_rng.getrandbits(72).to_bytes(9, "big")).decode()


def _header_values(scope: Scope) -> tuple[str, str, str, str | None, str]:
    ua = ref = lang = dnt = ""
    xff: str | None = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            ua = value.decode("latin-1")
        elif name == b"referer":
            ref = value.decode("latin-1")
        elif name == b"accept-language":
            lang = value.decode("latin-1")
        elif name == b"x-forwarded-for":
            xff = value.decode("latin-1")
        elif name in (b"dnt", b"sec-gpc") and value.strip() == b"1":
            dnt = "1"
    return ua, ref, lang, xff, dnt


class Redirector:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.cache = LinkCache(settings.link_cache_size, settings.link_cache_ttl)
        # The lean client where it can (plain redis:// or unix://), redis-py's
        # pipeline otherwise: both batch the commands of concurrent requests.
        self.commit: GroupCommit | FastRedis = (
            FastRedis(settings.effective_redis_url)
            if resp_supported(settings.effective_redis_url) else GroupCommit(redis)
        )
        self.param = settings.click_param
        self.maxlen = str(settings.stream_maxlen)
        self.spool = Spool(settings.spool_dir, settings.spool_max_bytes)
        self.limit = TokenBucket(settings.ip_rate, settings.ip_burst)
        self._pixel_turn = 0
        self._wait = 0.0  # seconds the last over-limit client must wait (one event loop)
        # Workspaces in fire-and-forget mode, refreshed in the background (never
        # on a request's path) every link-cache TTL.
        self.fire_and_forget: frozenset[str] = frozenset()
        self._in_flight: set[asyncio.Future[Any]] = set()  # the ASGI path's
        self._ff_waiting = 0  # the fast path's (callbacks of FastRedis.submit_entry)
        self._ff_settled: asyncio.Event | None = None  # set when they are all in (settle)
        self.max_in_flight = settings.ff_max_in_flight
        self.ff_waited = 0

    async def connect(self) -> None:
        """At start-up: open the lean client's connection, so the first
        redirects can take the fast path (it never connects itself)."""
        if isinstance(self.commit, FastRedis):
            with contextlib.suppress(ConnectionError, OSError, RespError):
                await self.commit.call("PING")  # (down: the ASGI path connects later)

    async def refresh_modes(self) -> None:
        try:
            members = await self.redis.smembers(self.keys.fire_and_forget())
        except (RedisError, OSError):
            return  # keep what we knew
        self.fire_and_forget = frozenset(str(m) for m in members)

    async def keep_modes_fresh(self) -> None:
        while True:
            await asyncio.sleep(max(self.settings.link_cache_ttl, 1.0))
            await self.refresh_modes()

    async def settle(self) -> None:
        """At shutdown: wait (5 s at most) for fire-and-forget clicks still in flight."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                if self._in_flight:
                    await asyncio.wait(list(self._in_flight))
                if self._ff_waiting:
                    self._ff_settled = asyncio.Event()
                    await self._ff_settled.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer one redirect; returns the status sent (for /metrics)."""
        code = scope["path"][1:]
        head = scope["method"] == "HEAD"
        ua, ref, lang, xff, _ = _header_values(scope)
        peer = self._peer(scope, xff)
        if self._over_limit(peer):
            return await self._too_many(peer, head, send)
        ip = anonymise(peer, self.settings.ipv4_prefix, self.settings.ipv6_prefix)
        now_ms = time.time_ns() // 1_000_000
        click_id = new_click_id()
        click = click_values(code, str(now_ms), click_id, scope["method"], ua, ref, lang, ip)
        entry = self.cache.get(code, time.monotonic())
        if entry is not None:
            return await self._cached(entry, click, now_ms, click_id, head, send)
        try:
            reply = await self.commit.call(
                "EVALSHA", Scripts.redirect_miss.sha, *self._miss_keys(code), now_ms,
                self.maxlen, code, click,
            )
        except (NoScriptError, RespError) as exc:
            if "NOSCRIPT" not in str(exc):
                return await self._unavailable(code, head, send, exc)
            try:
                reply = await self.commit.call(
                    "EVAL", Scripts.redirect_miss.source, *self._miss_keys(code), now_ms,
                    self.maxlen, code, click,
                )
            except (RedisError, OSError, RespError) as exc:
                return await self._unavailable(code, head, send, exc)
        except (RedisError, OSError) as exc:
            return await self._unavailable(code, head, send, exc)
        return await _send(send, *self._miss_answer(code, reply, click_id, head))

    def _miss_answer(self, code: str, reply: Any, click_id: str, head: bool) -> Answer:
        """What the miss script's reply answers; the link goes to the cache."""
        state = int(reply[0])
        if state == 0:
            return _html_answer(404, PAGE_404, head)
        ws, campaign, recipient, url, expires = reply[1:6]
        prefix, suffix = redirect_parts(url, self.param)
        self.cache.put(code, cached_link(
            ws, prefix, suffix, US.join((ws, campaign, recipient)),
            int(expires) if expires else None, state == 2, time.monotonic(),
            self.keys.click_stream_for(code),
        ))
        if state == 1:
            return _found((prefix + click_id + suffix).encode("latin-1"))
        return _html_answer(410, PAGE_410, head)

    def _miss_keys(self, code: str) -> tuple[int | str, ...]:
        """The miss script's key count and keys (see redirect_miss.lua)."""
        k = self.keys
        return (5, k.link_bucket(code), k.click_stream_for(code), k.templates_for(code),
                k.link(code), k.destinations_for(code))

    async def _unavailable(self, code: str, head: bool, send: Send, exc: Exception) -> int:
        return await _send(send, *_unavailable(code, head, exc))

    def _peer(self, scope: Scope, xff: str | None) -> str:
        """The client's full address: for rate limits only, never stored."""
        client = scope.get("client")
        return client_ip(client[0] if client else "", xff, self.settings.trusted_proxies)

    def _over_limit(self, peer: str) -> bool:
        self._wait = 0.0 if unlimited(peer) else self.limit.wait(peer, time.monotonic())
        return self._wait > 0

    async def _too_many(self, peer: str, head: bool, send: Send) -> int:
        retry = str(max(1, round(self._wait))).encode()
        return await _html(send, 429, PAGE_429, head, extra=[(b"retry-after", retry)])

    async def pixel(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /px.gif: the redirect's tracking step with a GIF for an answer.

        The query string is stored as it came, unparsed: the worker reads it.
        The shop's page never waits on us for long and never sees an error:
        if Redis fails, the event goes to the spool like a click does.
        """
        ua, ref, _, xff, dnt = _header_values(scope)
        peer = self._peer(scope, xff)
        if self._over_limit(peer):
            await self._too_many(peer, scope["method"] == "HEAD", send)
            return
        now = str(time.time_ns() // 1_000_000)
        query = scope.get("query_string", b"")[:4096].decode("latin-1")
        self._pixel_turn = (self._pixel_turn + 1) % self.settings.partitions
        stream = self.keys.event_stream(self._pixel_turn)
        entry = ["type", "pixel", "ws", "", "src", "pixel", "key", "", "ts", now, "rcv", now,
                 "d", query, "ua", ua, "ref", ref, "ip",
                 anonymise(peer, self.settings.ipv4_prefix, self.settings.ipv6_prefix),
                 "dnt", dnt]
        try:
            await self.commit.call("XADD", stream, "MAXLEN", "~", self.maxlen, "*", *entry)
        except (RedisError, OSError, RespError):
            self._spool(stream, entry)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"image/gif"), (b"cache-control", b"no-store"),
            (b"content-length", str(len(PIXEL)).encode())]})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else PIXEL})

    async def _cached(
        self, entry: CachedLink, values: str, now_ms: int,
        click_id: str, head: bool, send: Send,
    ) -> int:
        expires_at = entry[EXPIRES_AT]
        if entry[DISABLED] or (expires_at is not None and expires_at <= now_ms):
            return await _html(send, 410, PAGE_410, head)
        click = [CLICK, values + US + entry[TAIL]]
        stream = entry[STREAM]
        location = entry[PREFIX] + click_id + entry[SUFFIX]
        if entry[WS] in self.fire_and_forget and self._room():
            # The workspace chose speed: answer now, write the click meanwhile
            # (spooled if Redis fails, lost only if this process dies first).
            task = asyncio.ensure_future(
                self.commit.call("XADD", stream, "MAXLEN", "~", self.maxlen, "*", *click))
            self._in_flight.add(task)
            task.add_done_callback(lambda t: self._forgotten(t, stream, click))
            return await _redirect(send, location, head)
        try:
            await self.commit.call("XADD", stream, "MAXLEN", "~", self.maxlen, "*", *click)
        except (RedisError, OSError, RespError):
            # The recipient still lands on the shop; the click waits on disk.
            self._spool(stream, click)
        return await _redirect(send, location, head)

    def redirect_now(self, scope: Scope, respond: Respond, metrics: WebMetrics) -> bool:
        """A redirect without a coroutine: the click (or, for a link not in the
        cache, the miss script) goes to Redis at once, and `respond` writes the
        answer when Redis has replied (fastpath.py calls this for uvicorn's
        protocol). What it writes, and when, is what __call__ writes for the
        same request. False, having changed nothing, when the request needs
        __call__: a cached link that is disabled or expired (410), a client
        over its rate (429), or the lean client not connected."""
        commit = self.commit
        if not isinstance(commit, FastRedis) or not commit.connected:
            return False
        code = scope["path"][1:]
        entry = self.cache.get(code, time.monotonic())
        now_ms = time.time_ns() // 1_000_000
        if entry is not None:
            expires_at = entry[EXPIRES_AT]
            if entry[DISABLED] or (expires_at is not None and expires_at <= now_ms):
                return False
            if entry[LOCATION_PREFIX] is None:
                return False  # __call__ fails as it always has
        click_id = new_click_id()
        ua, ref, lang, xff, _ = _header_values(scope)
        peer = self._peer(scope, xff)
        if self._over_limit(peer):
            return False  # (no token was spent) __call__ answers 429
        ip = anonymise(peer, self.settings.ipv4_prefix, self.settings.ipv6_prefix)
        values = click_values(code, str(now_ms), click_id, scope["method"], ua, ref, lang, ip)
        started = time.perf_counter()
        head = scope["method"] == "HEAD"
        if entry is None:
            args = ("EVALSHA", Scripts.redirect_miss.sha, *self._miss_keys(code), now_ms,
                    self.maxlen, code, values)
            commit.submit_then(functools.partial(
                self._missed, respond, metrics, started, code, click_id, head, args), *args)
            metrics.fast += 1
            return True
        value = values + US + entry[TAIL]
        click = [CLICK, value]
        stream = entry[STREAM]
        prefix = entry[LOCATION_PREFIX]
        assert prefix is not None
        location = prefix + click_id.encode() + entry[LOCATION_SUFFIX]
        if entry[WS] in self.fire_and_forget and self._room():
            # The workspace chose speed: answer now, the click meanwhile, in
            # the tick's entry as below (spooled if Redis fails, lost only if
            # this process dies first). (Not from inside the HTTP parser's
            # callback: uvicorn arms the keep-alive timer when a response
            # completes.)
            self._ff_waiting += 1
            commit.submit_entry(functools.partial(self._ff_stored, stream, click),
                                stream, self.maxlen, click_field, value)
            asyncio.get_running_loop().call_soon(self._answer, respond, metrics, started,
                                                 _found(location))
        else:
            # The 302 goes out as Redis's reply is read (connected: checked above),
            # the tick's clicks to this stream in one entry (models.CLICK).
            commit.submit_entry(functools.partial(
                self._stored, respond, metrics, started, _found(location), stream, click),
                stream, self.maxlen, click_field, value)
        metrics.fast += 1
        return True

    def _room(self) -> bool:
        """Whether a click of a fire-and-forget workspace may go without
        waiting for Redis: fewer than TRACKER_FF_MAX_IN_FLIGHT such clicks of
        this process wait for Redis. Past that bound (Redis slower than the
        traffic) clicks wait as in the default mode: without it, the
        unanswered writes would pile up in this process's memory, and more of
        them would be lost if it died. (Asked only for such workspaces: the
        default mode's redirect pays one set lookup, as before.)"""
        if self.in_flight < self.max_in_flight:
            return True
        self.ff_waited += 1  # (/metrics: how often the bound held a redirect back)
        return False

    @property
    def in_flight(self) -> int:
        """Fire-and-forget clicks of this process waiting for Redis (the ASGI
        path's tasks and the fast path's queued values)."""
        return len(self._in_flight) + self._ff_waiting

    def _ff_stored(self, stream: str, click: list[str], reply: Any) -> None:
        """Redis replied to a fire-and-forget click's XADD (or the connection
        dropped): its 302 is long gone."""
        self._ff_waiting -= 1
        if not self._ff_waiting and self._ff_settled is not None:
            self._ff_settled.set()
        if isinstance(reply, Exception):
            # The recipient still lands on the shop; the click waits on disk.
            self._spool(stream, click)

    def _stored(self, respond: Respond, metrics: WebMetrics, started: float, answer: Answer,
                stream: str, click: list[str], reply: Any) -> None:
        """Redis replied to a click's XADD (or the connection dropped): answer."""
        if isinstance(reply, Exception):
            # The recipient still lands on the shop; the click waits on disk.
            self._spool(stream, click)
        self._answer(respond, metrics, started, answer)

    def _answer(self, respond: Respond, metrics: WebMetrics, started: float, answer: Answer,
                _fut: asyncio.Future[Any] | None = None) -> None:
        respond(*answer)
        metrics.redirect(answer[0], time.perf_counter() - started)

    def _missed(self, respond: Respond, metrics: WebMetrics, started: float, code: str,
                click_id: str, head: bool, args: tuple[Any, ...], reply: Any) -> None:
        """The miss script replied (or the connection dropped): answer as __call__ does."""
        if not isinstance(reply, Exception):
            try:
                answer = self._miss_answer(code, reply, click_id, head)
                if _BAD_HEADER_VALUE.search(answer[1][0][1]):
                    raise ValueError("a control character in the Location")
            except Exception:  # as uvicorn answers an app that raised
                log.exception("redirect of %s failed", code)
                answer = _FAILED
        else:
            if (isinstance(reply, RespError) and "NOSCRIPT" in str(reply)
                    and args[0] == "EVALSHA" and isinstance(self.commit, FastRedis)):
                again = ("EVAL", Scripts.redirect_miss.source, *args[2:])
                if self.commit.submit_then(functools.partial(
                        self._missed, respond, metrics, started, code, click_id, head, again),
                        *again):
                    return
            answer = _unavailable(code, head, reply)
        self._answer(respond, metrics, started, answer)

    def _forgotten(self, task: asyncio.Future[Any], stream: str, click: list[str]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._spool(stream, click)

    def _spool(self, stream: str, fields: list[str]) -> None:
        self.spool.append(stream, fields)
        self.spool.start_replay(self._replay_one)

    async def _replay_one(self, stream: str, fields: list[str]) -> None:
        await self.redis.xadd(stream, dict(zip(fields[::2], fields[1::2], strict=True)),
                              maxlen=int(self.maxlen), approximate=True)

    def replay_leftovers(self) -> None:
        """At start-up: replay what processes that died during an outage left behind."""
        self.spool.start_replay(self._replay_one)


def _found(location: bytes) -> Answer:
    return 302, [(b"location", location), _NO_STORE, (b"content-length", b"0")], b""


def _html_answer(status: int, page: bytes, head: bool,
                 extra: list[tuple[bytes, bytes]] | None = None) -> Answer:
    headers = [(b"content-type", b"text/html; charset=utf-8"), _NO_STORE,
               (b"content-length", str(len(page)).encode())]
    if extra:
        headers += extra
    return status, headers, b"" if head else page


def _unavailable(code: str, head: bool, exc: BaseException) -> Answer:
    log.warning("redis unavailable (%s); uncached link %s answered 503", exc, code)
    return _html_answer(503, PAGE_503, head, extra=[(b"retry-after", b"5")])


# What uvicorn answers when an app raises before responding.
_FAILED: Answer = (500, [(b"content-type", b"text/plain; charset=utf-8"),
                         (b"content-length", b"21"), (b"connection", b"close")],
                   b"Internal Server Error")


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                body: bytes) -> int:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


async def _redirect(send: Send, location: str, head: bool) -> int:
    return await _send(send, *_found(location.encode("latin-1")))


async def _html(
    send: Send, status: int, page: bytes, head: bool,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> int:
    return await _send(send, *_html_answer(status, page, head, extra))


class Front:
    """Routes ``GET|HEAD /{code}`` to the redirector, everything else to `app`.

    `redirector` is set by the app's lifespan (None outside it): a plain
    attribute, because reading it through Starlette's app.state on every
    request measured at 2 % of the web process's CPU."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics | None = None) -> None:
        self.app = app
        self.redirector: Redirector | None = None
        self.metrics = metrics or WebMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            code = path[1:]
            if looks_like_code(code) and code not in RESERVED_CODES:
                redirector = self.redirector
                if redirector is not None:
                    started = time.perf_counter()
                    status = await redirector(scope, receive, send)
                    self.metrics.redirect(status, time.perf_counter() - started)
                    return
            elif path == "/px.gif":
                redirector = self.redirector
                if redirector is not None:
                    self.metrics.pixels += 1
                    await redirector.pixel(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def redirect_now(self, scope: Scope, respond: Respond) -> bool:
        """A redirect answered without a coroutine when it can be (see
        Redirector.redirect_now); False when the request must go to __call__."""
        if scope["method"] not in ("GET", "HEAD"):
            return False
        code = scope["path"][1:]
        redirector = self.redirector
        return bool(redirector is not None and looks_like_code(code)
                    and code not in RESERVED_CODES
                    and redirector.redirect_now(scope, respond, self.metrics))
