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
