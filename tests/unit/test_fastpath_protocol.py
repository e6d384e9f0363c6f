"""RedirectProtocol's own steps (tracker/fastpath.py), driven without sockets:
a fake transport records the bytes, a fake loop's clock moves only when the
test says. What uvicorn does around them (keep-alive, pipelining, HTTP/1.0,
the same bytes as the ASGI path) is tested against a real server in
tests/integration/test_fastpath.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from tracker import fastpath
from tracker.redirect import Front

UA = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148"
LOCATION = b"https://shop.example/sale?utm_source=whatsapp&trk_id=ID"
TIMEOUT = 5.0  # uvicorn's default timeout_keep_alive


class FakeLoop:
    """call_later and time, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []
        self.tasks = 0

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, fn)
        self.timers.append(timer)
        return timer

    def create_task(self, coro: Any) -> FakeTask:
        coro.close()  # the ASGI path: not run here, only counted
        self.tasks += 1
        return FakeTask()

    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled and not t.fired]

    def advance(self, to: float) -> None:
        while True:
            due = sorted((t for t in self.pending() if t.when <= to), key=lambda t: t.when)
            if not due:
                break
            self.now = due[0].when
            due[0].fired = True
            due[0].fn()
        self.now = to


class FakeTask:
    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        pass


class FakeTimer:
    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when, self.fn = when, fn
        self.cancelled = self.fired = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class StubFront(Front):
    """Answers each redirect with a fixed 302, at once or when the test says
    (as Redis's reply would), or declines (the ASGI path answers)."""

    def __init__(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            pass

        super().__init__(app)
        self.later = False
        self.decline = False
        self.asked: list[dict[str, Any]] = []
        self.waiting: list[Callable[[], None]] = []

    def redirect_now(self, scope: Any, respond: Any) -> bool:
        self.asked.append(dict(scope))
        if self.decline:
            return False

        def answer() -> None:
            respond(302, [(b"location", LOCATION), (b"content-length", b"0")], b"")

        if self.later:
            self.waiting.append(answer)
        else:
            answer()
        return True


def request(path: str = "/Ab3dEf7", method: str = "GET", version: str = "1.1",
            extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/{version}\r\nHost: t.example\r\n".encode()
            + b"User-Agent: " + UA + b"\r\n" + extra.encode() + b"\r\n")


def connection(front: StubFront) -> tuple[fastpath.RedirectProtocol, FakeTransport, FakeLoop,
                                          ServerState]:
    config = Config(app=front, loop="none", http="httptools", access_log=False,
                    proxy_headers=False, timeout_keep_alive=int(TIMEOUT))
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Tue, 24 Nov 2026 06:00:00 GMT"), (b"server", b"uvicorn")]
    loop = FakeLoop()
    proto = fastpath.RedirectProtocol(config=config, server_state=state, app_state={},
                                      _loop=loop)  # type: ignore[arg-type]
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport, loop, state


def test_the_installed_uvicorn_has_what_the_protocol_replaces() -> None:
    assert fastpath.supported()


def test_a_plain_request_and_one_uvicorn_parses_get_the_same_bytes() -> None:
    front = StubFront()
    proto, transport, _, state = connection(front)
    proto.data_received(request())  # plain: the protocol's own step
    assert isinstance(proto.cycle, fastpath._Cycle)
    proto.data_received(request("/Ab3dEf7?utm=1"))  # a query: uvicorn's steps
    assert isinstance(proto.cycle, RequestResponseCycle)
    proto.data_received(request(method="HEAD"))
    assert transport.out[0] == transport.out[1]
    assert transport.out[0] == (b"HTTP/1.1 302 Found\r\ndate: Tue, 24 Nov 2026 06:00:00 GMT\r\n"
                                b"server: uvicorn\r\nlocation: " + LOCATION + b"\r\n"
                                b"content-length: 0\r\n\r\n")
    assert transport.out[2] == transport.out[0]  # HEAD: no body either way (it has none)
    plain, parsed, head = front.asked
    assert plain["path"] == parsed["path"] == "/Ab3dEf7"
    assert plain["raw_path"] == b"/Ab3dEf7" and plain["query_string"] == b""
    assert parsed["query_string"] == b"utm=1"
    assert plain["method"] == "GET" and head["method"] == "HEAD"
    assert plain["headers"] == parsed["headers"]
    assert plain["client"] == ("127.0.0.1", 50000)
    # uvicorn's server makes a new list of default headers for a new date: the
    # next response carries it.
    state.default_headers = [(b"date", b"Tue, 24 Nov 2026 06:00:01 GMT"), (b"server", b"uvicorn")]
    proto.data_received(request())
    assert b"date: Tue, 24 Nov 2026 06:00:01 GMT\r\n" in transport.out[3]
    assert not transport.closed


def test_a_declined_request_goes_to_the_asgi_path_asked_once() -> None:
    front = StubFront()
    front.decline = True
    proto, transport, loop, _ = connection(front)
    proto.data_received(request())
    assert len(front.asked) == 1  # not asked again by _start_asgi_task
    assert loop.tasks == 1 and not transport.out
    assert isinstance(proto.cycle, RequestResponseCycle)
    assert proto.cycle.scope["path"] == "/Ab3dEf7"


@pytest.mark.parametrize("extra, version", [("Connection: close\r\n", "1.1"), ("", "1.0")])
def test_a_closing_request_closes_after_its_answer(extra: str, version: str) -> None:
    front = StubFront()
    proto, transport, _, _ = connection(front)
    proto.data_received(request(extra=extra, version=version))
    assert transport.closed and len(transport.out) == 1
    assert b"connection: close\r\n" in transport.out[0]


def test_an_idle_connection_closes_its_timeout_after_the_last_response() -> None:
    front = StubFront()
    proto, transport, loop, _ = connection(front)
    proto.data_received(request())  # answered at 0
    loop.advance(TIMEOUT - 0.1)
    assert not transport.closed
    loop.advance(TIMEOUT)
    assert transport.closed


def test_a_request_meanwhile_moves_the_close_to_its_timeout_after_the_new_answer() -> None:
    front = StubFront()
    proto, transport, loop, _ = connection(front)
    for at in (0.0, 1.0, 2.0, 3.0):
        loop.advance(at)
        proto.data_received(request())
        # one timer a connection, not one a response
        assert len(loop.pending()) == 1
    loop.advance(3.0 + TIMEOUT - 0.1)
    assert not transport.closed
    loop.advance(3.0 + TIMEOUT)
    assert transport.closed
    assert len(loop.timers) == 2  # armed at 0, armed again when it fired at 5


def test_a_request_waiting_for_its_answer_is_never_timed_out() -> None:
    front = StubFront()
    front.later = True
    proto, transport, loop, _ = connection(front)
    proto.data_received(request())
    front.waiting.pop()()  # answered at 0
    loop.advance(1.0)
    proto.data_received(request())  # Redis answers this one only at 20
    loop.advance(19.9)
    assert not transport.closed and not loop.pending()
    loop.advance(20.0)
    front.waiting.pop()()
    assert len(transport.out) == 2
    loop.advance(20.0 + TIMEOUT - 0.1)
    assert not transport.closed
    loop.advance(20.0 + TIMEOUT)
    assert transport.closed


def test_bytes_of_a_request_not_yet_whole_keep_the_connection_open() -> None:
    # as uvicorn: any byte read stops the keep-alive clock
    front = StubFront()
    proto, transport, loop, _ = connection(front)
    proto.data_received(request())
    loop.advance(1.0)
    proto.data_received(b"GET /Ab3d")
    loop.advance(30.0)
    assert not transport.closed
    proto.data_received(b"Ef7 HTTP/1.1\r\nHost: t.example\r\n\r\n")
    assert len(transport.out) == 2 and front.asked[1]["path"] == "/Ab3dEf7"
    loop.advance(30.0 + TIMEOUT)
    assert transport.closed


def test_a_lost_connection_drops_its_timer() -> None:
    front = StubFront()
    proto, _, loop, _ = connection(front)
    proto.data_received(request())
    proto.connection_lost(None)
    assert not loop.pending()


def test_a_client_gone_before_the_answer_gets_nothing_written() -> None:
    front = StubFront()
    front.later = True
    proto, transport, loop, _ = connection(front)
    proto.data_received(request())
    proto.connection_lost(None)
    front.waiting.pop()()
    assert not transport.out and not loop.pending()
