"""The redirect of a cached link without an ASGI task.

uvicorn's httptools protocol with one step changed: where it would start a
task to run the app for a request, a redirect the redirector can answer from
its link cache is answered by a callback instead (Redirector.redirect_now):
the click is queued for Redis at once, and the 302 is written when Redis
acknowledges it, as on the ASGI path. Everything else (parsing, keep-alive,
pipelining, timeouts, shutdown, every other request) stays uvicorn's.

Why: on our 2-core machine an ASGI request costs uvicorn about 35 us of CPU
before the app does anything (a task, the scope, two send() coroutines), and
the redirect must share those cores with Redis and the worker. A fixed 302
answered this way costs about 22 us (measured: /tmp experiments, README).

The response is written as RequestResponseCycle.send would write it for the
same messages (a start with these headers and an empty body), and the cycle's
state is left as send() leaves it, so uvicorn's keep-alive and pipelining
carry on unchanged. This leans on uvicorn's internals: `supported()` checks
them, and `tracker serve` falls back to plain httptools where they differ.

Two more of uvicorn's per-request steps are made cheaper here, as they cost
about as much as our whole redirect (measured with a stub redirect and no
sockets: 10.3 us a request with uvicorn's steps, 6.4 with these):
- A plain request line (a path with no query and nothing escaped, HTTP/1.1,
  no earlier request on the connection still unanswered) skips uvicorn's
  URL parser and gets a small cycle of our own (_Cycle) instead of a
  RequestResponseCycle and its asyncio.Event, which only an ASGI task
  would read.
- The keep-alive timer: uvicorn arms a new timer after each response and
  cancels it when the next request's bytes arrive. Here a connection keeps
  one timer, which checks when it fires how long the connection has been
  idle and arms itself again for the rest. The connection closes as
  uvicorn's does: `timeout_keep_alive` seconds after its last response, if
  no byte came since.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, MutableMapping
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .redirect import Front

log = logging.getLogger("tracker.fastpath")

# For uvicorn's `http` setting (`--http tracker.fastpath:RedirectProtocol`).
NAME = "tracker.fastpath:RedirectProtocol"

# What the fast path reads and sets on uvicorn's RequestResponseCycle.
_CYCLE_PARAMS = {"scope", "transport", "default_headers", "keep_alive", "on_response",
                 "access_log", "message_event"}


# What the fast path calls or replaces of uvicorn's HttpToolsProtocol (its
# keep-alive timer and its steps per request; see RedirectProtocol).
_PROTOCOL_NAMES = ("on_headers_complete", "on_response_complete", "_unset_keepalive_if_required",
                   "timeout_keep_alive_handler", "connection_lost", "on_message_begin")


def supported() -> bool:
    """Does the installed uvicorn have the internals this module relies on?"""
    params = set(inspect.signature(RequestResponseCycle.__init__).parameters)
    start = inspect.signature(HttpToolsProtocol._start_asgi_task).parameters
    init = inspect.signature(HttpToolsProtocol.__init__).parameters
    return (params >= _CYCLE_PARAMS and list(start) == ["self", "cycle", "app"]
            and 302 in STATUS_LINE
            and all(callable(getattr(HttpToolsProtocol, n, None)) for n in _PROTOCOL_NAMES)
            and {"config", "server_state", "app_state", "_loop"} <= set(init))


class _Done:
    """The message_event of a _Cycle: no ASGI task waits on it."""

    __slots__ = ()

    def set(self) -> None:
        pass


_DONE = _Done()


class _Cycle:
    """What uvicorn's protocol and respond() read and set of a
    RequestResponseCycle, for a request the fast path answers (no ASGI task
    reads the rest)."""

    __slots__ = ("body", "default_headers", "disconnected", "keep_alive", "more_body",
                 "on_response", "response_complete", "response_started", "scope", "transport",
                 "waiting_for_100_continue")
    message_event = _DONE
    access_log = False

    def __init__(self, scope: MutableMapping[str, Any], transport: Any,
                 default_headers: list[tuple[bytes, bytes]], keep_alive: bool,
                 on_response: Callable[[], None]) -> None:
        self.scope = scope
        self.transport = transport
        self.default_headers = default_headers
        self.keep_alive = keep_alive
        self.on_response = on_response
        self.disconnected = self.response_started = self.response_complete = False
        self.waiting_for_100_continue = False
        self.more_body = True
        self.body = bytearray()  # (uvicorn's on_body appends a body no one reads)


class RedirectProtocol(HttpToolsProtocol):
    # When the connection last went idle (its last response written, no byte
    # since): None while a request is being read or answered.
    _idle_since: float | None = None
    # Set while uvicorn's own on_headers_complete handles a request the fast
    # path declined (its _start_asgi_task must not ask again).
    _declined = False

    def on_headers_complete(self) -> None:
        url = self.url
        parser = self.parser
        app = self.app
        cycle = self.cycle
        # A plain request, as every recipient's phone sends: else uvicorn's
        # steps, as they are (they end in _start_asgi_task below).
        if (url[:1] == b"/" and b"?" not in url and b"%" not in url
                and isinstance(app, Front) and not self.access_log
                and self.limit_concurrency is None and not self.expect_100_continue
                and (cycle is None or cycle.response_complete)
                and parser.get_http_version() == "1.1" and not parser.should_upgrade()
                and url.isascii()):
            scope = self.scope
            scope["method"] = parser.get_method().decode("ascii")
            root = self.root_path
            scope["path"] = root + url.decode("ascii")
            scope["raw_path"] = root.encode("ascii") + url
            scope["query_string"] = b""
            fast = _Cycle(cast("MutableMapping[str, Any]", scope), self.transport,
                          self.server_state.default_headers, parser.should_keep_alive(),
                          self.on_response_complete)
            self.cycle = fast  # type: ignore[assignment]
            if self._redirect_now(app, fast):
                return
            self.cycle = cycle
            self._declined = True
            try:
                super().on_headers_complete()
            finally:
                self._declined = False
            return
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # (with an access log, uvicorn's send() logs each request: not here)
        if (isinstance(app, Front) and not cycle.access_log and not self._declined
                and self._redirect_now(app, cycle)):
            return
        super()._start_asgi_task(cycle, app)

    @staticmethod
    def _redirect_now(app: Front, cycle: RequestResponseCycle | _Cycle) -> bool:
        try:
            return app.redirect_now(cast("MutableMapping[str, Any]", cycle.scope),
                                    functools.partial(respond, cycle))
        except Exception:
            # A bug here must cost this request its fast path, not the
            # connection (raised into the parser, it would become a 400).
            # Everything that can raise comes before the command is queued.
            log.exception("redirect fast path failed; the ASGI path answers")
            return False

    # -- the keep-alive timer: one a connection, not one a response
    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this as a request's bytes arrive: busy from here.
        self._idle_since = None

    def on_response_complete(self) -> None:
        # uvicorn's, but for the timer
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._keep_alive_check)

    def _keep_alive_check(self) -> None:
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None:
            return  # busy: the response to come arms the timer again
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_check)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._idle_since = None
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None


# The status line and uvicorn's default headers (date, server) of each status,
# made once while uvicorn's list of them stays the same object (its server
# makes a new one each tick, 10 times a second, for the date).
_heads: tuple[object, dict[int, bytes]] = (None, {})


def _head(status: int, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    global _heads
    if _heads[0] is not default_headers:
        _heads = (default_headers, {})
    head = _heads[1].get(status)
    if head is None:
        head = STATUS_LINE[status] + b"".join(
            name + b": " + value + b"\r\n" for name, value in default_headers)
        _heads[1][status] = head
    return head


def respond(cycle: RequestResponseCycle | _Cycle, status: int, headers: list[tuple[bytes, bytes]],
            body: bytes) -> None:
    """Write a whole response as send() would for a start message with these
    headers (a content-length among them) and one body message, and leave the
    cycle as run_asgi leaves it."""
    if cycle.disconnected or cycle.response_started:
        return  # the client left: send() writes nothing either
    cycle.response_started = cycle.response_complete = True
    cycle.waiting_for_100_continue = False
    out = [_head(status, cycle.default_headers)]
    for name, value in headers:
        out += [name, b": ", value, b"\r\n"]
        if name == b"connection" and value == b"close":
            cycle.keep_alive = False  # (send() closes then too)
    if not cycle.keep_alive and (b"connection", b"close") not in headers:
        out.append(b"connection: close\r\n")
    out.append(b"\r\n")
    if cycle.scope["method"] != "HEAD":
        out.append(body)
    transport = cycle.transport
    try:
        transport.write(b"".join(out))
    except Exception:  # (a callback's exception would leave the client hanging)
        log.exception("writing a redirect failed")
        cycle.keep_alive = False
    cycle.message_event.set()
    if not cycle.keep_alive:
        transport.close()
    # The next pipelined request, or the keep-alive timer (send() calls it;
    # run_asgi then makes sure it is never called twice).
    on_response, cycle.on_response = cycle.on_response, _nothing
    on_response()


def _nothing() -> None:
    pass
