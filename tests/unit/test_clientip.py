from __future__ import annotations

import ipaddress
import random

import pytest

from tracker.clientip import _client_ip_slow, _v6_text, anonymise, client_ip
from tracker.ratelimit import unlimited

PROXY = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("ip", "v4", "v6", "expected"),
    [
        ("203.0.113.77", 24, 48, "203.0.113.0"),
        ("203.0.113.77", 16, 48, "203.0.0.0"),
        ("203.0.113.77", 32, 48, "203.0.113.77"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", 24, 48, "2001:db8:85a3::"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", 24, 64, "2001:db8:85a3:8d3::"),
        ("not-an-ip", 24, 48, ""),
        ("", 24, 48, ""),
        ("testclient", 24, 48, ""),
    ],
)
def test_anonymise(ip: str, v4: int, v6: int, expected: str) -> None:
    assert anonymise(ip, v4, v6) == expected


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        # no trusted proxies: the socket is the truth, headers are ignored
        ("198.51.100.7", "1.2.3.4", [], "198.51.100.7"),
        # an untrusted peer cannot claim another address
        ("198.51.100.7", "1.2.3.4", PROXY, "198.51.100.7"),
        # a trusted proxy relays the client
        ("10.0.0.2", "203.0.113.9", PROXY, "203.0.113.9"),
        # chains are read from the right; what the client wrote on the left is not believed
        ("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.3", PROXY, "203.0.113.9"),
        # garbage in the chain: fall back to the peer
        ("10.0.0.2", "203.0.113.9, junk", PROXY, "10.0.0.2"),
        ("10.0.0.2", None, PROXY, "10.0.0.2"),
        ("fd00::1", "2001:db8::5", PROXY, "2001:db8::5"),
        (None, "1.2.3.4", PROXY, ""),
    ],
)
def test_client_ip(
    peer: str | None, xff: str | None, trusted: list[ipaddress.IPv4Network], expected: str
) -> None:
    assert client_ip(peer, xff, trusted) == expected


def _reference(ip: str, v4: int, v6: int) -> str:
    """anonymise as ipaddress alone computes it."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    bits = v4 if addr.version == 4 else v6
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False).network_address)


ODD = ["01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5", " 1.2.3.4", "1.2.3.4\n",
       "::ffff:1.2.3.4", "::1", "2001:db8::1", "0.0.0.0", "255.255.255.255", "127.0.0.1",
       "127.255.0.9", "", "x", "1.2.3.4/24", "１.2.3.4"]


def test_the_ipv4_arithmetic_agrees_with_ipaddress() -> None:
    rng = random.Random(7)
    addrs = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2000)] + ODD
    for ip in addrs:
        for v4 in (0, 1, 8, 16, 23, 24, 31, 32):
            assert anonymise(ip, v4, 48) == _reference(ip, v4, 48), (ip, v4)


def _random_v6(rng: random.Random) -> str:
    """Runs of zero groups of every length and place (RFC 5952's "::" cases)."""
    zeros = rng.random()
    groups = [0 if rng.random() < zeros else rng.getrandbits(rng.choice((4, 8, 16)))
              for _ in range(8)]
    return str(ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups)))


ODD6 = ["::", "::1", "1::", "::ffff:1.2.3.4", "::ffff:127.0.0.1", "::1.2.3.4", "0::1",
        "0000:0000:0000:0000:0000:0000:0000:0001", "2001:DB8::1", "2001:db8:0:0:1:0:0:1",
        "2001:db8::1:0:0:1", "1:0:0:2:0:0:0:3", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
        "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "fe80::1%eth0", "::ffff:1.2.3.04",
        ":::", "2001:db8::/48", " ::1", "::1\n", "::g", "\x00::1", "１::"]


def test_the_ipv6_arithmetic_agrees_with_ipaddress() -> None:
    rng = random.Random(9)
    addrs = [_random_v6(rng) for _ in range(3000)] + ODD6
    for ip in addrs:
        for v6 in (0, 1, 15, 16, 17, 32, 47, 48, 56, 63, 64, 65, 96, 127, 128):
            assert anonymise(ip, 24, v6) == _reference(ip, 24, v6), (ip, v6)


def test_ipv6_text_is_ipaddress_text() -> None:
    """Every address, not only the /64s and shorter anonymise writes (outside
    ::ffff:0:0/96, which Python 3.13 writes with a dotted quad)."""
    rng = random.Random(10)
    for _ in range(5000):
        addr = ipaddress.IPv6Address(_random_v6(rng))
        if addr.ipv4_mapped is None:
            assert _v6_text(int(addr)) == str(addr)


def test_client_ip_agrees_with_ipaddress() -> None:
    """Random chains of clients, trusted proxies and odd hops behind random
    peers: the same answer as the ipaddress way."""
    rng = random.Random(11)
    trusted = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.4.0/24"),
               ipaddress.ip_network("fd00::/8"), ipaddress.ip_network("2001:db8:1::/48"))
    inside = ["10.1.2.3", "10.255.0.1", "192.168.4.9", "fd00::1", "fdab:1::9",
              "2001:db8:1::5", "2001:DB8:1:0::5"]
    outside = ["203.0.113.9", "192.168.5.1", "11.0.0.1", "2001:db8:2::1", "::ffff:10.1.2.3",
               "::ffff:203.0.113.9", "2A02:0908::0001", "fe80::1%eth0"]

    def address() -> str:
        if rng.random() < 0.5:
            return rng.choice(inside + outside)
        if rng.random() < 0.5:
            return str(ipaddress.IPv4Address(rng.getrandbits(32)))
        return _random_v6(rng)

    for _ in range(5000):
        peer = address() if rng.random() < 0.3 else rng.choice(inside)
        hops = [address() if rng.random() < 0.9 else rng.choice(ODD + ODD6 + ["", " "])
                for _ in range(rng.randint(0, 4))]
        xff = rng.choice([", ", ",", " , "]).join(hops)
        for proxies in (trusted, list(trusted)):
            assert client_ip(peer, xff, proxies) == _client_ip_slow(peer, xff, trusted), (
                peer, xff)


def test_unlimited_agrees_with_ipaddress() -> None:
    rng = random.Random(8)
    peers = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2000)] + ODD + [
        f"127.{i}.0.1" for i in range(5)] + [_random_v6(rng) for _ in range(2000)] + ODD6
    for peer in peers:
        try:
            expected = ipaddress.ip_address(peer).is_loopback
        except ValueError:
            expected = True
        assert unlimited(peer) == expected, peer
