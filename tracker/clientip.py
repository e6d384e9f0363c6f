"""The client's address: who to believe, and how much of it to keep. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address of the client, from the socket unless a trusted proxy relays it.

    X-Forwarded-For is read right to left, skipping our own trusted proxies:
    the first untrusted hop is the client. Anything left of it was written by
    the client itself and could be forged.
    """
    if not peer:
        return ""
    if not trusted or not forwarded_for:
        return peer
    peer_addr = _parse(peer)
    if peer_addr is None or not any(peer_addr in net for net in trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            return peer  # a malformed chain is not worth believing
        if not any(addr in net for net in trusted):
            return str(addr)
    return hops[0] if hops else peer


@lru_cache(maxsize=4096)
def anonymise(ip: str, v4_bits: int = 24, v6_bits: int = 48) -> str:
    """Keep only the network part (IPv4 /24 and IPv6 /48 by default)."""
    addr = _parse(ip)
    if addr is None:
        return ""
    bits = v4_bits if addr.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False).network_address)
