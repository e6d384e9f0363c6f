"""The lean client's callback replies (FastRedis.submit_then), against a real
Redis: the redirect's fast path answers from them, so each must get its own
reply, in order with the futures around it, whatever another callback does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tracker.resp import FastRedis, RespError


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_callbacks_and_futures_get_their_own_replies_in_order(redis_url: str,
                                                               prefix: str) -> None:
    async def go() -> tuple[list[tuple[str, Any]], list[Any]]:
        fast = FastRedis(redis_url)
        await fast.call("PING")
        heard: list[tuple[str, Any]] = []
        try:
            futures = []
            for i in range(3):
                assert fast.submit_then(lambda reply, i=i: heard.append((f"cb{i}", reply)),
                                        "INCR", f"{prefix}:n")
                fut = fast.submit("INCR", f"{prefix}:n")
                assert fut is not None
                futures.append(fut)
            # an error reply, and a callback that raises: the replies after
            # them still reach their callers
            assert fast.submit_then(lambda reply: heard.append(("error", reply)),
                                    "HGET", f"{prefix}:n", "field")
            assert fast.submit_then(lambda reply: 1 / 0, "PING")
            assert fast.submit_then(lambda reply: heard.append(("last", reply)), "GET",
                                    f"{prefix}:n")
            return heard, list(await asyncio.gather(*futures))
        finally:
            await fast.aclose()

    heard, replies = run(go())
    assert [name for name, _ in heard] == ["cb0", "cb1", "cb2", "error", "last"]
    assert [reply for _, reply in heard[:3]] == [1, 3, 5]
    assert replies == [2, 4, 6]
    assert isinstance(heard[3][1], RespError) and "WRONGTYPE" in str(heard[3][1])
    assert heard[4][1] == "6"


def test_a_dropped_connection_is_every_waiting_callbacks_reply(redis_url: str) -> None:
    async def go() -> list[Any]:
        fast = FastRedis(redis_url)
        await fast.call("PING")
        heard: list[Any] = []
        assert fast.submit_then(heard.append, "BLPOP", "no-such-list-anywhere", "5")
        assert fast.submit_then(heard.append, "PING")
        await asyncio.sleep(0.05)  # (the BLPOP is in Redis: nothing answered yet)
        assert heard == []
        await fast.aclose()
        # closed: nothing is queued
        assert not fast.submit_then(heard.append, "PING")
        return heard

    heard = run(go())
    assert len(heard) == 2
    assert all(isinstance(reply, ConnectionError) for reply in heard)


@pytest.mark.parametrize("closed", [False, True])
def test_submit_then_unconnected_queues_nothing(redis_url: str, closed: bool) -> None:
    async def go() -> bool:
        fast = FastRedis(redis_url)
        if closed:
            await fast.call("PING")
            await fast.aclose()
        return fast.submit_then(lambda reply: None, "PING")

    assert run(go()) is False


def test_a_ticks_values_for_a_stream_go_in_one_entry(redis_url: str, prefix: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """submit_entry: one XADD a stream a tick (at most MAX_FIELDS values an
    entry), in order with the tick's other commands, each value's callback
    given its entry's id; an error reply reaches every callback of its entry."""
    import tracker.resp

    monkeypatch.setattr(tracker.resp, "MAX_FIELDS", 3)
    a, b = f"{prefix}:a", f"{prefix}:b"

    def field(i: int) -> str:
        return f"f{i}"

    async def go() -> tuple[list[tuple[str, Any]], list[Any]]:
        fast = FastRedis(redis_url)
        await fast.call("SET", f"{prefix}:str", "x")
        heard: list[tuple[str, Any]] = []
        try:
            for i in range(4):
                assert fast.submit_entry(lambda reply, i=i: heard.append((f"a{i}", reply)),
                                         a, "1000", field, f"va{i}")
            assert fast.submit_then(lambda reply: heard.append(("ping", reply)), "PING")
            assert fast.submit_entry(lambda reply: heard.append(("b0", reply)), b, "1000",
                                     field, "vb0")
            # a key that is not a stream: an error for each value of its entry
            for i in range(2):
                assert fast.submit_entry(lambda reply, i=i: heard.append((f"s{i}", reply)),
                                         f"{prefix}:str", "1000", field, "v")
            assert await fast.call("PING") == "PONG"  # (the next tick)
            assert fast.submit_entry(lambda reply: heard.append(("a4", reply)), a, "1000",
                                     field, "va4")
            assert await fast.call("PING") == "PONG"
            return heard, [await fast.call("XRANGE", key, "-", "+") for key in (a, b)]
        finally:
            await fast.aclose()

    heard, (in_a, in_b) = run(go())
    # the plain command first: an entry is written when the tick ends
    assert [name for name, _ in heard] == ["ping", "a0", "a1", "a2", "a3", "b0", "s0", "s1",
                                           "a4"]
    assert [fields for _, fields in in_a] == [["f0", "va0", "f1", "va1", "f2", "va2"],
                                              ["f0", "va3"], ["f0", "va4"]]
    assert [fields for _, fields in in_b] == [["f0", "vb0"]]
    got = dict(heard)
    ids = [entry_id for entry_id, _ in in_a]
    assert [got[f"a{i}"] for i in range(5)] == [ids[0]] * 3 + ids[1:]
    assert got["b0"] == in_b[0][0]
    assert all(isinstance(got[s], RespError) and "WRONGTYPE" in str(got[s])
               for s in ("s0", "s1"))


def test_a_dropped_connection_reaches_every_value_of_an_entry(redis_url: str,
                                                              prefix: str) -> None:
    """Written or still queued when the connection drops: each callback hears it."""
    async def go() -> list[Any]:
        fast = FastRedis(redis_url)
        await fast.call("PING")
        heard: list[Any] = []
        assert fast.submit_then(heard.append, "BLPOP", "no-such-list-anywhere", "5")
        for _ in range(2):
            assert fast.submit_entry(heard.append, f"{prefix}:s", "1000", str, "v")
        await asyncio.sleep(0.05)  # written, behind the BLPOP
        for _ in range(2):  # queued, not yet written
            assert fast.submit_entry(heard.append, f"{prefix}:s", "1000", str, "v")
        await fast.aclose()
        assert not fast.submit_entry(heard.append, f"{prefix}:s", "1000", str, "v")
        return heard

    heard = run(go())
    assert len(heard) == 5
    assert all(isinstance(reply, ConnectionError) for reply in heard)
