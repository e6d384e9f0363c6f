from __future__ import annotations

import ipaddress

import pytest

from tracker.clientip import anonymise, client_ip

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
