from __future__ import annotations

import pytest

from tracker.ratelimit import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.wait("a", 0.0) for _ in range(3)] == [0, 0, 0]  # the burst
    assert bucket.wait("a", 0.0) == pytest.approx(0.5)  # then 2 a second
    assert bucket.wait("b", 0.0) == 0  # clients are apart
    assert bucket.wait("a", 0.5) == 0  # one token back after half a second
    assert bucket.wait("a", 0.5) > 0
    assert bucket.wait("a", 100.0) == 0  # refilled, but never past the burst
    assert [bucket.wait("a", 100.0) for _ in range(3)][-1] > 0


def test_unlimited_and_bounded_memory() -> None:
    assert TokenBucket(rate=0, burst=0).wait("a", 0) == 0
    bucket = TokenBucket(rate=1, burst=1, max_clients=2)
    for client in "abc":
        bucket.wait(client, 0)
    assert len(bucket._buckets) == 2
    assert bucket.wait("c", 0) > 0  # remembered: its token is spent
    assert bucket.wait("a", 0) == 0  # the least recently seen was forgotten: a fresh burst
    for i in range(10_000):  # long past a dict's resize: still bounded
        bucket.wait(f"x{i}", 0)
    assert list(bucket._buckets) == ["x9998", "x9999"]


def test_a_flood_is_not_forgotten_while_it_goes_on() -> None:
    """Full memory forgets the client seen least recently, not the one seen first."""
    bucket = TokenBucket(rate=1, burst=5, max_clients=100)
    flooder = "198.51.100.7"
    for _ in range(5):
        assert bucket.wait(flooder, 0.0) == 0  # its burst
    limited = 0
    for i in range(1_000):  # ten times max_clients other clients pass meanwhile
        assert bucket.wait(f"203.0.113.{i}", 0.0) == 0
        limited += bucket.wait(flooder, 0.0) > 0
    assert limited == 1_000  # limited every time: it never got a fresh burst
    assert len(bucket._buckets) == 100


def test_limited_requests_keep_a_client_remembered() -> None:
    bucket = TokenBucket(rate=1, burst=1, max_clients=2)
    assert bucket.wait("a", 0) == 0
    assert bucket.wait("b", 0) == 0
    assert bucket.wait("a", 0) > 0  # limited, and now the most recently seen
    assert bucket.wait("c", 0) == 0  # forgets b, not a
    assert list(bucket._buckets) == ["a", "c"]
    assert bucket.wait("a", 0) > 0


@pytest.mark.parametrize(("peer", "exempt"), [("127.0.0.1", True), ("::1", True),
                                              ("testclient", True), ("", True),
                                              ("203.0.113.9", False), ("2001:db8::1", False)])
def test_loopback_and_non_ip_peers_are_not_limited(peer: str, exempt: bool) -> None:
    from tracker.ratelimit import unlimited

    assert unlimited(peer) is exempt
