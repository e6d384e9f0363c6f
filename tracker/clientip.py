"""The client's address: who to believe, and how much of it to keep. Pure."""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
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


# A dotted quad as ipaddress accepts one (no leading zeros): most clients.
_V4 = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\."
                 r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
                 re.ASCII)  # (\d alone matches any script's digits)


def ipv4(text: str) -> int | None:
    """A canonical dotted quad as a number, else None (then ask ipaddress)."""
    m = _V4.fullmatch(text)
    if m is None:
        return None
    a, b, c, d = m.groups()
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


def ipv6(text: str) -> int | None:
    """An IPv6 address as a number, else None (then ask ipaddress). inet_pton
    parses it in C: ipaddress took about 8 us, and on mobile networks many
    recipients come over IPv6."""
    if ":" not in text:
        return None
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):  # (ValueError: a NUL in the text)
        return None


_GROUPS = struct.Struct("!8H")


def _v6_text(n: int) -> str:
    """An IPv6 address as ipaddress writes it (RFC 5952): groups in lower-case
    hex without leading zeros, the longest run of two or more zero groups
    (the first of equals) as "::"."""
    groups = _GROUPS.unpack(n.to_bytes(16, "big"))
    best_at, best_len, at, run = -1, 1, -1, 0
    for i, g in enumerate(groups):
        if g:
            run = 0
            continue
        if not run:
            at = i
        run += 1
        if run > best_len:
            best_at, best_len = at, run
    hexes = [f"{g:x}" for g in groups]
    if best_at < 0:
        return ":".join(hexes)
    return ":".join(hexes[:best_at]) + "::" + ":".join(hexes[best_at + best_len:])


_ALL6 = (1 << 128) - 1


@lru_cache(maxsize=4096)
def anonymise(ip: str, v4_bits: int = 24, v6_bits: int = 48) -> str:
    """Keep only the network part (IPv4 /24 and IPv6 /48 by default).
    An IPv4 address is cut with arithmetic: every redirect anonymises its
    client, and ipaddress spent about 6 us doing it (each recipient comes
    from an address of their own, so the cache rarely helps)."""
    n = ipv4(ip)
    if n is not None:
        n &= (0xFFFFFFFF << (32 - v4_bits)) & 0xFFFFFFFF
        return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    # IPv6 too, when what is kept leaves the last 64 bits zero: such an
    # address never takes the IPv4-mapped form (::ffff:a.b.c.d), which
    # ipaddress writes differently across Python versions.
    n = ipv6(ip) if v6_bits <= 64 else None
    if n is not None:
        return _v6_text(n & (_ALL6 << (128 - v6_bits)) & _ALL6)
    addr = _parse(ip)
    if addr is None:
        return ""
    bits = v4_bits if addr.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False).network_address)
