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
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import MutableMapping
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


def supported() -> bool:
    """Does the installed uvicorn have the internals this module relies on?"""
    params = set(inspect.signature(RequestResponseCycle.__init__).parameters)
    start = inspect.signature(HttpToolsProtocol._start_asgi_task).parameters
    return (params >= _CYCLE_PARAMS and list(start) == ["self", "cycle", "app"]
            and 302 in STATUS_LINE)


class RedirectProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # (with an access log, uvicorn's send() logs each request: not here)
        if isinstance(app, Front) and not cycle.access_log:
            try:
                handled = app.redirect_now(cast("MutableMapping[str, Any]", cycle.scope),
                                           functools.partial(respond, cycle))
            except Exception:
                # A bug here must cost this request its fast path, not the
                # connection (raised into the parser, it would become a 400).
                # Everything that can raise comes before the command is queued.
                log.exception("redirect fast path failed; the ASGI path answers")
                handled = False
            if handled:
                return
        super()._start_asgi_task(cycle, app)


def respond(cycle: RequestResponseCycle, status: int, headers: list[tuple[bytes, bytes]],
            body: bytes) -> None:
    """Write a whole response as send() would for a start message with these
    headers (a content-length among them) and one body message, and leave the
    cycle as run_asgi leaves it."""
    if cycle.disconnected or cycle.response_started:
        return  # the client left: send() writes nothing either
    cycle.response_started = cycle.response_complete = True
    cycle.waiting_for_100_continue = False
    out = [STATUS_LINE[status]]
    for name, value in cycle.default_headers:  # server, date
        out += [name, b": ", value, b"\r\n"]
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
