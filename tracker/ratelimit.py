"""Per-client token buckets for the redirect and the pixel. Pure: time is an argument.

Kept in each web process's memory, so the hot path gains no Redis round trip;
with N processes behind a balancer a client gets up to N times the rate.
The defaults are generous on purpose: recipients on a mobile network share
addresses (carrier-grade NAT), and a campaign sends thousands of them to the
shop within minutes. The limit is for scanners and floods, not for people.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from functools import lru_cache

from .clientip import ipv4, ipv6


@lru_cache(maxsize=4096)
def unlimited(peer: str) -> bool:
    """Loopback (a local proxy, a load test) and non-IP peers are not limited.

    Behind a proxy on another host, list it in TRACKER_TRUSTED_PROXIES: else
    every client looks like the proxy and shares one bucket.
    """
    n = ipv4(peer)  # (most peers: without ipaddress, a few us a redirect)
    if n is not None:
        return n >> 24 == 127
    n = ipv6(peer)
    # (IPv4-mapped addresses go to ipaddress: its answer for ::ffff:127.0.0.1
    # changed in Python 3.13)
    if n is not None and n >> 32 != 0xFFFF:
        return n == 1
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return True


class TokenBucket:
    def __init__(self, rate: float, burst: float, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        # client -> (tokens, at), least recently seen first. An OrderedDict:
        # forgetting the first client of a plain dict walks the holes earlier
        # deletions left (tens of us a request once `max_clients` are tracked).
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, client: str, now: float) -> float:
        """0 if the request may pass (and spends a token), else seconds until it may."""
        if self.rate <= 0:
            return 0.0
        buckets = self._buckets
        # Popped and put back: each request moves its client to the end, so
        # the client forgotten when memory is full is the one seen least
        # recently (whose bucket has most likely refilled: forgetting it
        # changes nothing), never a flood that is still going on.
        seen = buckets.pop(client, None)
        tokens, at = seen if seen is not None else (self.burst, now)
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if seen is None and len(buckets) >= self.max_clients:
            buckets.popitem(last=False)  # bounded memory
        if tokens < 1.0:
            buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        buckets[client] = (tokens - 1.0, now)
        return 0.0
