"""The redirect's fast path (tracker/fastpath.py) in a real `tracker serve`:
the same bytes as the ASGI path, the click in Redis before the 302, and
uvicorn's HTTP/1.1 behaviour (keep-alive, pipelining, HEAD, HTTP/1.0,
clients that leave) unchanged. Raw sockets, so every byte is seen."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import redis

from tests.conftest import make_settings
from tracker import fastpath
from tracker.embedded import free_port
from tracker.keys import Keys
from tracker.models import Click, click_field, entry_clicks
from tracker.store import Store
from tracker.store import connect as connect_redis

pytestmark = pytest.mark.e2e

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")


@dataclass
class Server:
    base: str
    port: int
    key: str
    ff_key: str  # a workspace in fire-and-forget mode
    prefix: str
    r: redis.Redis
    pid: int  # the serving process (one web worker: uvicorn serves in it)

    def link(self, recipient: str = "", ff: bool = False, **extra: object) -> str:
        """A new link (a code derives from its identity: a recipient of its own)."""
        recipient = recipient or "r" + uuid.uuid4().hex[:8]
        res = httpx.post(f"{self.base}/api/v1/links",
                         headers={"Authorization": f"Bearer {self.ff_key if ff else self.key}"},
                         json={"url": "https://s.example/p?x=1#top", "campaign": "bf",
                               "recipient": recipient, **extra})
        assert res.status_code == 201, res.text
        return str(res.json()["code"])

    def fast(self) -> int:
        text = httpx.get(f"{self.base}/metrics").text
        m = re.search(r"^tracker_redirects_fast_total (\d+)", text, re.MULTILINE)
        assert m, "no tracker_redirects_fast_total in /metrics"
        return int(m.group(1))

    def clicks(self) -> list[Click]:
        # (a tick's clicks share an entry: models.click_field)
        return [Click.from_entry(c) for _, f in self.r.xrange(Keys(self.prefix).click_stream(0))
                for c in entry_clicks(f)]


def workspaces(redis_url: str, prefix: str) -> tuple[str, str]:
    """acme's key, and ff's, a workspace in fire-and-forget mode (known to
    the web processes at their start)."""
    settings = make_settings(redis_url, prefix)

    async def go() -> tuple[str, str]:
        conn = connect_redis(redis_url)
        try:
            store = Store(conn, settings)
            keys = await store.create_workspace("acme"), await store.create_workspace("ff")
            await store.update_workspace("ff", {"ff": "1"})
            return keys
        finally:
            await conn.aclose()

    return asyncio.run(go())


def serve(redis_url: str, procs: list[subprocess.Popen[bytes]] | None = None,
          **env: str) -> Iterator[Server]:
    prefix = "t" + uuid.uuid4().hex[:12]
    port = free_port()
    key, ff_key = workspaces(redis_url, prefix)
    proc = subprocess.Popen([sys.executable, "-m", "tracker", "serve"], env={
        **os.environ, "REDIS_URL": redis_url, "TRACKER_KEY_PREFIX": prefix,
        "TRACKER_PORT": str(port), "TRACKER_LOG_LEVEL": "warning",
        "TRACKER_BASE_URL": "http://t.example",
        # the rate-limit test's clients come through a trusted local proxy
        "TRACKER_TRUSTED_PROXIES": "127.0.0.1", "TRACKER_IP_RATE": "0.01",
        "TRACKER_IP_BURST": "3", **env})
    if procs is not None:
        procs.append(proc)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "tracker serve exited"
                assert time.monotonic() < deadline, "tracker serve did not come up"
                time.sleep(0.05)
        yield Server(base, port, key, ff_key, prefix, r, proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[Server]:
    yield from serve(redis_url)


@pytest.fixture(scope="module")
def plain(redis_url: str) -> Iterator[Server]:
    """The same, with the fast path off: plain uvicorn httptools and ASGI."""
    yield from serve(redis_url, TRACKER_FAST_PATH="0")


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def read_responses(sock: socket.socket, n: int, heads: frozenset[int] = frozenset(),
                   linger: float = 0.3) -> tuple[list[tuple[int, dict[str, str], bytes]], bool]:
    """`n` responses (status, headers, body), and whether the server then closed
    (waiting `linger` seconds for more bytes or the close: none, not waited for).
    The responses numbered in `heads` answer HEAD: no body whatever the length."""
    buf = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    closed = False
    while len(out) < n or not closed:
        while b"\r\n\r\n" in buf and len(out) < n:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.lower(): v for k, v in (x.split(": ", 1) for x in lines[1:])}
            length = 0 if len(out) in heads else int(headers.get("content-length", "0"))
            if len(rest) < length:
                break
            out.append((status, headers, rest[:length]))
            buf = rest[length:]
        if len(out) == n:
            if not linger:
                break
            sock.settimeout(linger)  # anything more, or the close?
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        if not data:
            closed = True
            break
        buf += data
    assert buf == b"", f"unexpected bytes after the responses: {buf[:200]!r}"
    return out, closed


def get(code: str, extra: str = "", method: str = "GET", version: str = "1.1") -> bytes:
    return (f"{method} /{code} HTTP/{version}\r\nHost: t.example\r\nUser-Agent: {PHONE}\r\n"
            f"{extra}\r\n").encode()


def click_id(headers: dict[str, str]) -> str:
    return parse_qs(urlsplit(headers["location"]).query)["trk_id"][0]


def test_the_installed_uvicorn_has_what_the_fast_path_needs() -> None:
    # A uvicorn upgrade that moves these internals turns the fast path off
    # (tracker serve logs it); this test makes CI say so first.
    assert fastpath.supported()


def exchange(server: Server, disabled: str, code: str) -> list[tuple[int, dict[str, str], bytes]]:
    """What a server answers, from one connection: a link's miss and cached hit,
    HEAD, a disabled link (miss, then cached), a code nobody made, and a
    close; the date and the click id made alike."""
    with connect(server) as sock:
        sock.sendall(get(code) + get(code) + get(code, method="HEAD") + get(disabled)
                     + get(disabled) + get("abcdefgh") + get(disabled, method="HEAD")
                     + get(code, extra="Connection: close\r\n"))
        got, closed = read_responses(sock, 8, heads=frozenset({2, 6}))
    assert closed
    for _, headers, _ in got:
        headers["date"] = "D"
        if "location" in headers:
            headers["location"] = headers["location"].replace(click_id(headers), "ID")
    return got


def test_the_fast_path_answers_byte_for_byte_what_the_asgi_path_does(
        server: Server, plain: Server) -> None:
    answers, fast = [], []
    for s in (server, plain):
        disabled = s.link()
        res = httpx.patch(f"{s.base}/api/v1/links/{disabled}", json={"disabled": True},
                          headers={"Authorization": f"Bearer {s.key}"})
        assert res.status_code == 200, res.text
        before = s.fast()
        answers.append(exchange(s, disabled, s.link()))
        fast.append(s.fast() - before)
    assert answers[0] == answers[1]
    assert fast == [6, 0]  # all but the disabled link once cached; none
    got = answers[0]
    assert [s for s, _, _ in got] == [302, 302, 302, 410, 410, 404, 410, 302]
    assert list(got[0][1]) == ["date", "server", "location", "cache-control", "content-length"]
    assert got[0][1]["location"] == "https://s.example/p?x=1&utm_source=whatsapp" \
                                    "&utm_medium=message&utm_campaign=bf&trk_id=ID#top"
    assert got[0][1]["cache-control"] == "private, no-store"
    assert got[7][1]["connection"] == "close"
    assert b"no longer active" in got[3][2] and got[6][2] == b""


def test_each_click_is_in_redis_before_its_302(server: Server) -> None:
    code = server.link()
    with connect(server) as sock:
        for _ in range(30):
            sock.sendall(get(code, extra="Referer: https://wa.me/\r\n"))
            [(status, headers, _)], _ = read_responses(sock, 1)
            assert status == 302
            last = server.clicks()[-1]  # read only after the 302 arrived
            assert last.id == click_id(headers)
            assert (last.code, last.ua, last.ref, last.method) == (code, PHONE,
                                                                    "https://wa.me/", "GET")
            assert (last.ws, last.campaign) == ("acme", "bf") and last.recipient


def burst(server: Server, code: str, n: int = 30,
          before: Callable[[], object] = lambda: None) -> list[str]:
    """`n` redirects of `code` that arrive together: each on a connection of
    its own (open, and read from by the server: each has had a redirect
    answered), sent while the server is stopped (SIGSTOP), so that it finds
    them all at once when it runs again. `before` runs just before they are
    sent. The click ids of their 302s."""
    socks = [connect(server) for _ in range(n)]
    ids = []
    try:
        for sock in socks:
            sock.sendall(get(code))
        for sock in socks:
            [(status, _, _)], _ = read_responses(sock, 1, linger=0)
            assert status == 302
        before()
        os.kill(server.pid, signal.SIGSTOP)
        try:
            for sock in socks:
                sock.sendall(get(code))
        finally:
            os.kill(server.pid, signal.SIGCONT)
        for sock in socks:
            [(status, headers, _)], _ = read_responses(sock, 1, linger=0)
            assert status == 302
            ids.append(click_id(headers))
    finally:
        for sock in socks:
            sock.close()
    return ids


def entry_ids(server: Server) -> list[set[str]]:
    """The click ids of each entry of the click stream."""
    return [{Click.from_entry(c).id for c in entry_clicks(fields)}
            for _, fields in server.r.xrange(Keys(server.prefix).click_stream(0))]


def test_concurrent_redirects_share_a_stream_entry(server: Server) -> None:
    """The clicks of one event-loop tick go to Redis as one entry (one XADD):
    each 302 still comes after its click is in Redis, once."""
    code = server.link()
    stream = Keys(server.prefix).click_stream(0)
    ids: list[str] = []
    for _ in range(5):  # (the bytes of one burst reach the server together: nearly always)
        ids += burst(server, code)
        if set(ids[-30:]) in entry_ids(server):
            break
    assert set(ids[-30:]) in entry_ids(server), "a burst's clicks were not one entry"
    entries = server.r.xrange(stream)
    assert all(name == click_field(i) for _, fields in entries
               for i, name in enumerate(fields))
    stored = [c.id for c in server.clicks()]
    assert len(stored) == len(set(stored)) and set(ids) <= set(stored)


@pytest.mark.parametrize("cached", [True, False])
def test_no_302_before_redis_has_taken_the_click(server: Server, cached: bool) -> None:
    code = server.link()
    if cached:
        httpx.get(f"{server.base}/{code}")
    with connect(server) as sock:
        server.r.execute_command("CLIENT", "PAUSE", "1500", "WRITE")  # Redis holds writes
        sock.sendall(get(code))
        sock.settimeout(0.7)
        with pytest.raises(TimeoutError):
            sock.recv(65536)  # nothing while the XADD waits
        sock.settimeout(5)
        [(status, headers, _)], _ = read_responses(sock, 1)
    assert status == 302
    assert server.clicks()[-1].id == click_id(headers)


def test_a_miss_after_redis_lost_its_scripts_still_redirects_on_the_fast_path(
        server: Server) -> None:
    # (as after a Redis restart: the miss script's EVALSHA gets NOSCRIPT, and
    # the fast path sends the script itself from the reply's callback)
    code = server.link()
    before = server.fast()
    server.r.script_flush()
    with connect(server) as sock:
        sock.sendall(get(code))
        [(status, headers, _)], _ = read_responses(sock, 1)
    assert status == 302
    assert server.fast() == before + 1
    assert server.clicks()[-1].id == click_id(headers)


def test_fire_and_forget_answers_at_once_and_writes_the_click_after(server: Server) -> None:
    code = server.link(ff=True)
    httpx.get(f"{server.base}/{code}")  # cached: the mode applies to cached links
    with connect(server) as sock:
        server.r.execute_command("CLIENT", "PAUSE", "1000", "WRITE")
        sock.sendall(get(code))
        [(status, headers, _)], _ = read_responses(sock, 1)  # while Redis holds writes
        assert status == 302
        assert click_id(headers) not in {c.id for c in server.clicks()}
    deadline = time.monotonic() + 10
    while click_id(headers) not in {c.id for c in server.clicks()}:
        assert time.monotonic() < deadline, "the click never reached Redis"
        time.sleep(0.05)


def test_fire_and_forget_clicks_share_a_stream_entry_too(server: Server) -> None:
    """Answered at once, the clicks of a tick still go to Redis together, each
    once (and /metrics counts none in flight once Redis has them)."""
    code = server.link(ff=True)
    ids: list[str] = []
    for _ in range(5):
        # all answered while Redis holds writes
        ids += burst(server, code, before=lambda: server.r.execute_command(
            "CLIENT", "PAUSE", "300", "WRITE"))
        deadline = time.monotonic() + 10
        while not set(ids) <= {c.id for c in server.clicks()}:
            assert time.monotonic() < deadline, "clicks never reached Redis"
            time.sleep(0.05)
        if set(ids[-30:]) in entry_ids(server):
            break
    assert set(ids[-30:]) in entry_ids(server), "a burst's clicks were not one entry"
    stored = [c.id for c in server.clicks()]
    assert len(stored) == len(set(stored))
    assert "tracker_fire_and_forget_in_flight 0\n" in httpx.get(f"{server.base}/metrics").text


def test_a_stopping_server_waits_for_its_fire_and_forget_clicks(redis_url: str) -> None:
    # Answered at once while Redis holds writes; SIGTERM; the process waits
    # for Redis to take them before it exits.
    procs: list[subprocess.Popen[bytes]] = []
    for s in serve(redis_url, procs):
        code = s.link(ff=True)
        httpx.get(f"{s.base}/{code}")  # cached
        s.r.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        ids = []
        for _ in range(3):
            with connect(s) as sock:
                sock.sendall(get(code))
                [(status, headers, _)], _ = read_responses(sock, 1)
                assert status == 302
                ids.append(click_id(headers))
        procs[0].terminate()
        assert procs[0].wait(20) in (0, -signal.SIGTERM)
        assert set(ids) <= {c.id for c in s.clicks()}


@pytest.mark.parametrize("fast_path", ["1", "0"])
def test_fire_and_forget_waits_for_redis_past_its_bound(redis_url: str, fast_path: str) -> None:
    """Past TRACKER_FF_MAX_IN_FLIGHT clicks waiting for Redis, a fire-and-forget
    redirect waits for its click's acknowledgement, as in the default mode."""
    with contextlib.contextmanager(serve)(redis_url, TRACKER_FF_MAX_IN_FLIGHT="2",
                                          TRACKER_FAST_PATH=fast_path) as server:
        code = server.link(ff=True)
        httpx.get(f"{server.base}/{code}")  # cached: the mode applies to cached links
        socks = [connect(server) for _ in range(3)]
        try:
            server.r.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
            early = []
            for sock in socks[:2]:
                sock.sendall(get(code))
                [(status, headers, _)], _ = read_responses(sock, 1)  # Redis holds writes
                assert status == 302
                early.append(click_id(headers))
            assert not set(early) & {c.id for c in server.clicks()}  # answered first
            socks[2].sendall(get(code))
            [(status, headers, _)], _ = read_responses(socks[2], 1)
            assert status == 302
            # two were waiting: this one was answered after Redis had its click
            ids = {c.id for c in server.clicks()}
            assert click_id(headers) in ids and set(early) <= ids
            text = httpx.get(f"{server.base}/metrics").text
            assert "tracker_fire_and_forget_waited_total 1\n" in text
            assert "tracker_fire_and_forget_in_flight 0\n" in text
        finally:
            for sock in socks:
                sock.close()


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    code = server.link()
    with connect(server) as sock:
        sock.sendall(get(code))
        read_responses(sock, 1)  # cached from here on
        before = server.fast()
        sock.sendall(get(code) + get("healthz") + get(code, method="HEAD") + get("abcdefgh")
                     + get(code) + get(code, extra="Connection: close\r\n"))
        got, closed = read_responses(sock, 6, heads=frozenset({2}))
    assert [s for s, _, _ in got] == [302, 200, 302, 404, 302, 302]
    assert got[1][2] == b"ok" and got[2][2] == b"" and b"not exist" in got[3][2]
    assert got[5][1]["connection"] == "close" and closed
    assert "connection" not in got[4][1]
    ids = [click_id(h) for s, h, _ in got if s == 302]
    assert len(set(ids)) == 4
    clicks = {c.id: c for c in server.clicks()}
    assert all(i in clicks for i in ids)
    assert clicks[ids[1]].method == "HEAD"
    assert server.fast() == before + 5  # the 302s and the 404


def test_http_1_0_gets_its_redirect_then_the_connection_closes(server: Server) -> None:
    code = server.link()
    for _ in range(2):  # a miss, then the fast path
        with connect(server) as sock:
            sock.sendall(get(code, version="1.0"))
            [(status, headers, _)], closed = read_responses(sock, 1)
            assert status == 302 and headers["connection"] == "close" and closed


def test_clients_that_leave_before_the_ack_cost_nothing(server: Server) -> None:
    code = server.link()
    httpx.get(f"{server.base}/{code}")  # cached
    before = len(server.clicks())
    for _ in range(50):
        with connect(server) as sock:
            sock.sendall(get(code))  # and gone, before any answer
    with connect(server) as sock:  # the server serves on
        sock.sendall(get(code))
        [(status, _, _)], _ = read_responses(sock, 1)
    assert status == 302
    deadline = time.monotonic() + 5
    while len(server.clicks()) < before + 51:  # each request read was a click
        assert time.monotonic() < deadline, len(server.clicks()) - before
        time.sleep(0.02)
    assert len(server.clicks()) == before + 51


def test_the_rate_limit_spends_one_token_a_request(server: Server) -> None:
    # Burst 3, refilled once every 100 s: three redirects, then 429. A fast
    # path that spent a token before handing over to the ASGI path would
    # answer 429 sooner.
    code = server.link()
    xff = "X-Forwarded-For: 203.0.113.9\r\n"
    statuses = []
    with connect(server) as sock:
        for _ in range(5):
            sock.sendall(get(code, extra=xff))
            [(status, headers, _)], _ = read_responses(sock, 1)
            statuses.append(status)
    assert statuses == [302, 302, 302, 429, 429]
    assert headers["retry-after"]
    assert {c.ip for c in server.clicks() if c.code == code} == {"203.0.113.0"}


def test_disabled_and_unknown_links(server: Server) -> None:
    code = server.link()
    res = httpx.patch(f"{server.base}/api/v1/links/{code}", json={"disabled": True},
                      headers={"Authorization": f"Bearer {server.key}"})
    assert res.status_code == 200, res.text
    before = server.fast()
    with connect(server) as sock:
        # a miss (the fast path), then cached as disabled (the ASGI path),
        # then a code nobody made (the fast path)
        sock.sendall(get(code) + get(code) + get("abcdefgh") + get(code, method="HEAD"))
        got, _ = read_responses(sock, 4, heads=frozenset({3}))
    assert [s for s, _, _ in got] == [410, 410, 404, 410]
    for _, headers, _ in got:
        headers["date"] = "D"
    assert got[0] == got[1]
    assert b"no longer active" in got[0][2] and b"does not exist" in got[2][2]
    assert got[3][2] == b"" and got[3][1]["content-length"] == got[0][1]["content-length"]
    assert server.fast() == before + 2
    assert not [c for c in server.clicks() if c.code == code]


def test_the_fast_path_can_be_turned_off(plain: Server) -> None:
    code = plain.link()
    for _ in range(3):
        assert httpx.get(f"{plain.base}/{code}").status_code == 302
    assert plain.fast() == 0
    assert len([c for c in plain.clicks() if c.code == code]) == 3


def test_a_stopping_server_answers_the_redirects_in_flight(redis_url: str) -> None:
    # SIGTERM while Redis holds three clicks: each still gets its 302 once
    # Redis takes it (and the connection closes), then the process exits.
    procs: list[subprocess.Popen[bytes]] = []
    for s in serve(redis_url, procs):
        code = s.link()
        httpx.get(f"{s.base}/{code}")  # cached
        socks = [connect(s) for _ in range(3)]
        before = s.fast()
        s.r.execute_command("CLIENT", "PAUSE", "2000", "WRITE")
        for sock in socks:
            sock.sendall(get(code))
        deadline = time.monotonic() + 1.5  # the server has taken all three
        while s.fast() < before + 3:
            assert time.monotonic() < deadline, "the requests did not arrive in time"
            time.sleep(0.01)
        procs[0].terminate()
        for sock in socks:
            [(status, headers, _)], closed = read_responses(sock, 1)
            assert status == 302 and headers["connection"] == "close" and closed
            sock.close()
        # (one process: uvicorn re-raises the signal after its graceful shutdown)
        assert procs[0].wait(20) in (0, -signal.SIGTERM)
        ids = {c.id for c in s.clicks()}
        assert len(ids) == 4
