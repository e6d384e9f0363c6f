"""A lean pipelining Redis client for the redirect's hot path.

redis-py's asyncio client costs about 100-200 µs of CPU per command here
(pure-Python packing, a pool checkout and timeouts per call): more than a
whole redirect. This client keeps one connection per process, encodes
commands with a few bytes joins, parses replies with hiredis, and writes all
commands issued in one event-loop tick with a single send: the clicks of
concurrent requests share a round trip (group commit), and each caller gets
its own reply as soon as it arrives.

It speaks plain RESP2 over TCP or a unix socket (redis://, unix://, with a
password and a database); for anything else (TLS, cluster) the hot path falls
back to redis-py. A connection that fails or stops answering fails every
command in flight, and the next command reconnects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

log = logging.getLogger("tracker.resp")

TIMEOUT = 2.0  # seconds a command may wait for its reply before the connection is dropped
MAX_FIELDS = 500  # values of one stream entry written by submit_entry


class RespError(Exception):
    """An error reply from Redis (the message is Redis's)."""


def encode(args: Sequence[Any]) -> bytes:
    """A command in RESP. hiredis packs it in C: about 3x faster than Python."""
    packed: bytes = hiredis.pack_command(tuple(args))
    return packed


def supported(url: str) -> bool:
    return url.startswith(("redis://", "unix://"))


class _Protocol(asyncio.Protocol):
    def __init__(self, client: FastRedis) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(exc or ConnectionError("connection to Redis closed"))


class FastRedis:
    def __init__(self, url: str, connect_timeout: float = 1.0, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(url)
        self.unix = parts.scheme == "unix"
        self.path = parts.path
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        db = parts.path.lstrip("/") if not self.unix else ""
        if self.unix:
            query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
            db = query.get("db", "")
        self.db = int(db) if db.isascii() and db.isdigit() else 0
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._transport: Any = None
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        # Per command in flight, in order: its future, or the callback of submit_then.
        self._waiting: deque[asyncio.Future[Any] | Callable[[Any], None]] = deque()
        self._out: list[bytes] = []
        # submit_entry's values of this tick: per stream, the entry filling up
        # (its callbacks and its field/value pairs), and every entry in order.
        self._entries: dict[str, tuple[list[Callable[[Any], None]], list[str]]] = {}
        self._groups: list[tuple[str, str, tuple[list[Callable[[Any], None]], list[str]]]] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Future[None] | None = None
        self._last_reply = time.monotonic()
        self._watchdog: asyncio.TimerHandle | None = None
        # The loop of the connection, kept: asyncio.get_running_loop() makes a
        # getpid() syscall each time (2 % of the redirect's CPU, twice a call).
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- connection ------------------------------------------------------------------
    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self.unix:
            coro = loop.create_unix_connection(lambda: _Protocol(self), self.path)
        else:
            coro = loop.create_connection(lambda: _Protocol(self), self.host, self.port)
        # (uvloop's transports do not subclass asyncio.Transport: no isinstance here)
        transport, _ = await asyncio.wait_for(coro, self.connect_timeout)
        self._loop = loop
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self._transport = transport
        self._last_reply = time.monotonic()
        hello: list[list[Any]] = []
        if self.password:
            hello.append(["AUTH", self.username, self.password] if self.username
                         else ["AUTH", self.password])
        if self.db:
            hello.append(["SELECT", self.db])
        for cmd in hello:
            await self.call(*cmd)
        self._arm_watchdog()

    async def _ensure(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            return
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_future()
            try:
                await self._connect()
            except BaseException as exc:
                self._connecting.set_exception(ConnectionError(f"cannot reach Redis: {exc!r}"))
                self._connecting.exception()  # retrieved: no "never retrieved" warning
                self._connecting = None
                raise ConnectionError(f"cannot reach Redis: {exc}") from exc
            self._connecting.set_result(None)
            self._connecting = None
        else:
            await asyncio.shield(self._connecting)

    def _arm_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self.timeout / 2, self._check)

    def _check(self) -> None:
        # A connection with commands in flight and no reply for TIMEOUT is dead
        # (a partition, a paused server): drop it so callers fail fast.
        if self._waiting and time.monotonic() - self._last_reply > self.timeout:
            self._lost(TimeoutError("Redis did not answer in time"))
        if self._transport is not None:
            self._arm_watchdog()

    def _lost(self, exc: Exception) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.abort()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._out.clear()
        waiting, self._waiting = self._waiting, deque()
        groups, self._groups = self._groups, []
        self._entries.clear()
        for fut in waiting:
            if not isinstance(fut, asyncio.Future):
                _call(fut, ConnectionError(str(exc)))
            elif not fut.done():
                fut.set_exception(ConnectionError(str(exc)))
        for _, _, (thens, _) in groups:  # (queued, not yet written)
            _fan_out(thens, ConnectionError(str(exc)))

    # -- commands --------------------------------------------------------------------
    async def call(self, *args: Any) -> Any:
        fut = self.submit(*args)
        if fut is None:
            await self._ensure()
            fut = self.submit(*args)
            if fut is None:
                raise ConnectionError("connection to Redis closed")
        return await fut

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def submit(self, *args: Any) -> asyncio.Future[Any] | None:
        """Queue a command; its reply (or RespError) comes in the future. None
        when not connected (call() connects): for callers that cannot await,
        the redirect's fast path (fastpath.py)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return None
        loop = self._loop
        assert loop is not None  # set with the transport
        fut: asyncio.Future[Any] = loop.create_future()
        self._waiting.append(fut)
        self._out.append(encode(args))
        self._schedule_flush()
        return fut

    def submit_then(self, then: Callable[[Any], None], *args: Any) -> bool:
        """Queue a command whose reply goes straight to `then`, called as the
        reply is read: a RespError for an error reply, a ConnectionError if
        the connection drops first. No future and no callbacks scheduled on
        the loop (the redirect's fast path: a future per click, with its two
        done-callbacks, was about a tenth of the web's CPU a redirect).
        `then` must not raise (what it raises is logged and dropped). False
        when not connected, having queued nothing."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        self._waiting.append(then)
        self._out.append(encode(args))
        self._schedule_flush()
        return True

    def submit_entry(self, then: Callable[[Any], None], stream: str, maxlen: str,
                     field: Callable[[int], str], value: str) -> bool:
        """Queue a value for a stream: the values queued for one stream in one
        event-loop tick go to Redis as one entry (at most MAX_FIELDS of them),
        in the fields field(0), field(1), ... (one XADD with MAXLEN ~ maxlen),
        and each `then` gets that XADD's reply, as submit_then's would. Redis's
        work an entry (the XADD; a consumer group's delivery, its pending
        entry, the acknowledgement) is then shared by the tick's values: the
        redirect's fast path, about 25 clicks a tick when busy. False when not
        connected, having queued nothing."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        group = self._entries.get(stream)
        if group is None or len(group[0]) >= MAX_FIELDS:
            group = self._entries[stream] = ([], [])
            self._groups.append((stream, maxlen, group))
        thens, fields = group
        fields += (field(len(thens)), value)
        thens.append(then)
        self._schedule_flush()
        return True

    async def call_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """A pipeline: every command in one write; replies (or RespError) in order."""
        if self._transport is None or self._transport.is_closing():
            await self._ensure()
        loop = self._loop
        assert loop is not None
        futures = [loop.create_future() for _ in commands]
        self._waiting.extend(futures)
        self._out.extend(encode(c) for c in commands)
        self._flush()
        out: list[Any] = []
        for fut in futures:
            try:
                out.append(await fut)
            except RespError as exc:
                out.append(exc)
        return out

    def _schedule_flush(self) -> None:
        """The tick's commands go out in one write, when the tick ends."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop
            assert loop is not None  # set with the transport
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._groups:
            # (queued after the tick's other commands, their replies after theirs)
            for stream, maxlen, (thens, fields) in self._groups:
                self._waiting.append(functools.partial(_fan_out, thens))
                self._out.append(encode(("XADD", stream, "MAXLEN", "~", maxlen, "*", *fields)))
            self._groups.clear()
            self._entries.clear()
        if self._out and self._transport is not None:
            data = b"".join(self._out)
            self._out.clear()
            self._transport.write(data)

    def _received(self, data: bytes) -> None:
        self._last_reply = time.monotonic()
        self._reader.feed(data)
        while True:
            reply = self._reader.gets()
            if reply is False:
                return
            if not self._waiting:
                continue
            fut = self._waiting.popleft()
            if not isinstance(fut, asyncio.Future):
                _call(fut, RespError(str(reply)) if isinstance(reply, hiredis.ReplyError)
                      else reply)
                continue
            if fut.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                fut.set_exception(RespError(str(reply)))
            else:
                fut.set_result(reply)

    async def aclose(self) -> None:
        self._lost(ConnectionError("client closed"))


def _fan_out(thens: list[Callable[[Any], None]], reply: Any) -> None:
    """One XADD's reply to each value's callback (submit_entry)."""
    for then in thens:
        _call(then, reply)


def _call(then: Callable[[Any], None], reply: Any) -> None:
    """A submit_then callback: what it raises is logged, so the replies (or
    the loss of the connection) after it still reach their callers."""
    try:
        then(reply)
    except Exception:
        log.exception("a reply's callback failed")
