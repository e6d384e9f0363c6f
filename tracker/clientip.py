"""The client's address: who to believe, and how much of it to keep. Pure."""

from __future__ import annotations

import ipaddress
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
    # Behind a load balancer (most deployments) every redirect comes this way:
    # with ipaddress it cost 12-27 us, a third of a redirect. Addresses are
    # read as numbers instead; anything else (a zone id, a malformed hop)
    # goes the ipaddress way, which decides as it always has.
    fast = _client_ip_fast(peer, forwarded_for, _ranges(trusted))
    return fast if fast is not None else _client_ip_slow(peer, forwarded_for, trusted)


def _client_ip_slow(peer: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
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


Ranges = tuple[tuple[int, int, int], ...]  # (version, network, netmask) as numbers
_ranges_seen: dict[int, tuple[Sequence[Network], Ranges]] = {}


def _ranges(trusted: Sequence[Network]) -> Ranges:
    """The trusted networks as numbers; kept for a tuple (the settings' own,
    immutable), by identity: hashing the networks cost more than the work."""
    hit = _ranges_seen.get(id(trusted))
    if hit is not None and hit[0] is trusted:
        return hit[1]
    ranges = tuple((n.version, int(n.network_address), int(n.netmask)) for n in trusted)
    if isinstance(trusted, tuple):
        if len(_ranges_seen) > 64:
            _ranges_seen.clear()
        _ranges_seen[id(trusted)] = (trusted, ranges)
    return ranges


def _number(text: str) -> tuple[int, int] | None:
    n = ipv4(text)
    if n is not None:
        return 4, n
    n = ipv6(text)
    return None if n is None else (6, n)


def _client_ip_fast(peer: str, forwarded_for: str, ranges: Ranges) -> str | None:
    """client_ip with addresses as numbers; None: ask ipaddress."""
    addr = _number(peer)
    if addr is None:
        return None
    if not _within(addr, ranges):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _number(hop)
        if addr is None:
            return None
        if not _within(addr, ranges):
            version, n = addr
            if version == 4:
                return hop  # (ipv4 takes only the canonical dotted quad)
            # IPv4-mapped: ipaddress's text for those changed in Python 3.13
            return _v6_text(n) if n >> 32 != 0xFFFF else None
    return hops[0] if hops else peer


def _within(addr: tuple[int, int], ranges: Ranges) -> bool:
    version, n = addr
    return any(v == version and n & mask == net for v, net, mask in ranges)


def ipv4(text: str) -> int | None:
    """A dotted quad as ipaddress accepts one (four decimals, no leading
    zeros: what inet_pton takes) as a number, else None (then ask ipaddress).
    In C: every redirect reads its client's address, and ipaddress took
    about 6 us (each recipient comes from an address of their own, so a
    cache rarely helps)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # (ValueError: a NUL in the text)
        return None


def ipv6(text: str) -> int | None:
    """An IPv6 address as a number, else None (then ask ipaddress). In C, as
    ipv4: ipaddress took about 8 us, and on mobile networks many recipients
    come over IPv6."""
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
    """Keep only the network part (IPv4 /24 and IPv6 /48 by default), cut
    with arithmetic (see ipv4)."""
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
