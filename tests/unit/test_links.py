from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.links import (
    ALPHABET,
    MAX_URL_LENGTH,
    InvalidURL,
    code_key,
    derived_codes,
    looks_like_code,
    merge_utm,
    normalise_destination,
    redirect_parts,
)

DEFAULTS = {"source": "whatsapp", "medium": "message", "campaign": "bf24"}


# -- codes ----------------------------------------------------------------------------
def test_codes_are_letters_of_the_57_letter_alphabet() -> None:
    from itertools import islice

    assert ALPHABET == "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    key = code_key("secret")
    codes = {next(derived_codes(key, f"ws\x1fbf\x1fr{i}\x1fu")) for i in range(20_000)}
    assert len(codes) == 20_000  # 46.7 bits each: a repeat here means a broken mapping
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)
    assert [len(c) for c in islice(derived_codes(key, "x", 12), 3)] == [12, 12, 12]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("abcdefgh", True),
        ("23456789ABCDEFGHJKLMNP", True),  # 22: the longest
        ("abcdefg", False),  # too short
        ("23456789ABCDEFGHJKLMNPQ", False),  # too long
        ("abcdefg0", False),  # 0 is not in the alphabet
        ("abcdefgl", False),  # nor l
        ("abc/defgh", False),
        ("favicon.ico", False),
        ("", False),
    ],
)
def test_looks_like_code(text: str, ok: bool) -> None:
    assert looks_like_code(text) is ok


# -- destination validation -------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://shop.example/p", "https://shop.example/p"),
        ("HTTPS://Shop.Example/P?q=1", "https://shop.example/P?q=1"),
        ("https://shop.example", "https://shop.example/"),
        ("http://shop.example:8080/x", "http://shop.example:8080/x"),
        ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://shop.example/a b?q=ä ö#frag ment", "https://shop.example/a%20b?q=%C3%A4%20%C3%B6#frag%20ment"),
        ("https://shop.example/%E2%82%AC?x=%2F", "https://shop.example/%E2%82%AC?x=%2F"),
        ("https://[2001:db8::1]/p", "https://[2001:db8::1]/p"),
        ("  https://shop.example/p  ", "https://shop.example/p"),
        ("https://shop.example/p?a=1&a=2&b#f", "https://shop.example/p?a=1&a=2&b#f"),
    ],
)
def test_normalise_destination(url: str, expected: str) -> None:
    assert normalise_destination(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("shop.example/p", "absolute"),
        ("/relative/path", "absolute"),
        ("ftp://shop.example/file", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("data:text/html,hi", "http or https"),
        ("https://user:pw@shop.example/", "user information"),
        ("https://user@shop.example/", "user information"),
        ("https:///nohost", "host"),
        ("https://shop.example:99999/", "valid URL"),
        ("https://shop.example/\nx", "control"),
        ("https://" + "a" * 64 + ".example/", "domain name"),
        ("https://sh op.example/", "domain name"),
        ("https://shop<x>.example/", "domain name"),
    ],
)
def test_destination_rejected(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match=reason):
        normalise_destination(url)


# -- UTM merging --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "request_utm", "expected"),
    [
        # defaults are appended, in a fixed order
        ("https://s.example/p", {},
         "https://s.example/p?utm_source=whatsapp&utm_medium=message&utm_campaign=bf24"),
        # the destination's own values beat the defaults, and keep their place
        ("https://s.example/p?utm_source=newsletter&x=1", {},
         "https://s.example/p?utm_source=newsletter&x=1&utm_medium=message&utm_campaign=bf24"),
        # the request beats the destination, in the destination's position
        ("https://s.example/p?utm_source=newsletter&x=1", {"source": "wa"},
         "https://s.example/p?utm_source=wa&x=1&utm_medium=message&utm_campaign=bf24"),
        # content and term have no default; the request adds them
        ("https://s.example/p", {"content": "hero button", "term": "a&b=c"},
         "https://s.example/p?utm_source=whatsapp&utm_medium=message&utm_campaign=bf24"
         "&utm_content=hero%20button&utm_term=a%26b%3Dc"),
        # repeats of other parameters, their order, blank values and the fragment survive
        ("https://s.example/p?b=2&a=1&b=3&flag#sec-2", {"campaign": "x"},
         "https://s.example/p?b=2&a=1&b=3&flag&utm_source=whatsapp&utm_medium=message"
         "&utm_campaign=x#sec-2"),
        # a repeated utm key collapses to the request's single value
        ("https://s.example/p?utm_campaign=a&utm_campaign=b", {"campaign": "c"},
         "https://s.example/p?utm_campaign=c&utm_source=whatsapp&utm_medium=message"),
        # a percent-encoded key is still recognised
        ("https://s.example/p?utm%5Fsource=x", {},
         "https://s.example/p?utm%5Fsource=x&utm_medium=message&utm_campaign=bf24"),
        # non-ASCII values are UTF-8 percent-encoded
        ("https://s.example/p", {"campaign": "Sommer-Angebot für Sie"},
         "https://s.example/p?utm_source=whatsapp&utm_medium=message"
         "&utm_campaign=Sommer-Angebot%20f%C3%BCr%20Sie"),
        # an empty query marker is not left dangling
        ("https://s.example/p?", {"source": "wa"},
         "https://s.example/p?utm_source=wa&utm_medium=message&utm_campaign=bf24"),
    ],
)
def test_merge_utm(url: str, request_utm: dict[str, str], expected: str) -> None:
    assert merge_utm(url, request=request_utm, defaults=DEFAULTS) == expected


def test_merge_utm_drops_our_click_parameter() -> None:
    out = merge_utm("https://s.example/p?trk_id=forged&a=1", defaults={}, drop=("trk_id",))
    assert out == "https://s.example/p?a=1"


_key = st.text(alphabet="abcdefxyz_", min_size=1, max_size=6).filter(
    lambda k: not k.startswith("utm")
)
_val = st.text(alphabet="abc123-._~%20", max_size=6)


@given(
    params=st.lists(st.tuples(_key, _val), max_size=6),
    request_utm=st.dictionaries(st.sampled_from(["source", "medium", "campaign", "content"]),
                                st.text(min_size=1, max_size=10), max_size=4),
    fragment=st.sampled_from(["", "#top", "#a=b&c"]),
)
def test_merge_utm_properties(
    params: list[tuple[str, str]], request_utm: dict[str, str], fragment: str
) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    url = "https://s.example/p" + (f"?{query}" if query else "") + fragment
    merged = merge_utm(url, request=request_utm, defaults=DEFAULTS)
    # the fragment is kept, at the end
    assert merged.endswith(fragment)
    # every other parameter is kept verbatim, in order, repeats included
    kept = [s for s in urlsplit(merged).query.split("&") if s and not s.startswith("utm_")]
    assert kept == [f"{k}={v}" for k, v in params]
    # the request's values win; the defaults fill in
    got = dict(parse_qsl(urlsplit(merged).query, keep_blank_values=True))
    for name, value in {**DEFAULTS, **request_utm}.items():
        assert got[f"utm_{name}"] == value
    # merging is idempotent
    assert merge_utm(merged, request=request_utm, defaults=DEFAULTS) == merged


# -- the click id on the way out ------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s.example/p", "https://s.example/p?trk_id=CID"),
        ("https://s.example/p?a=1", "https://s.example/p?a=1&trk_id=CID"),
        ("https://s.example/p?a=1#f", "https://s.example/p?a=1&trk_id=CID#f"),
        ("https://s.example/p#f?x", "https://s.example/p?trk_id=CID#f?x"),
        ("https://s.example/p?", "https://s.example/p?trk_id=CID"),
    ],
)
def test_the_click_id_goes_last_in_the_query(url: str, expected: str) -> None:
    prefix, suffix = redirect_parts(url, "trk_id")
    assert prefix + "CID" + suffix == expected


def test_max_url_length_is_2048() -> None:
    assert MAX_URL_LENGTH == 2048


KEY = code_key("a workspace's secret")


def test_code_letters_are_uniform() -> None:
    from collections import Counter

    from tracker.links import ALPHABET

    codes = derived_codes(KEY, "ws\x1fbf\x1fr1\x1fhttps://s.example/")
    counts = Counter(ch for _ in range(40_000) for ch in next(codes))
    expected = 40_000 * 8 / len(ALPHABET)
    assert set(counts) == set(ALPHABET)
    # a modulo bias (256 % 57 = 28 letters drawn 5 times in 256, not 4) would
    # show as about +25 % on those letters
    assert max(counts.values()) < expected * 1.08 and min(counts.values()) > expected * 0.92


def test_derived_codes_are_a_fixed_sequence_of_the_identity_and_key() -> None:
    from itertools import islice

    def first(key: bytes, identity: str, n: int = 20, length: int = 8) -> list[str]:
        return list(islice(derived_codes(key, identity, length), n))

    one = first(KEY, "ws\x1fbf\x1fr1\x1fhttps://s.example/")
    assert one == first(KEY, "ws\x1fbf\x1fr1\x1fhttps://s.example/")
    assert len(set(one)) == 20 and all(len(c) == 8 and looks_like_code(c) for c in one)
    # another recipient, destination or workspace key: other codes
    assert not set(one) & set(first(KEY, "ws\x1fbf\x1fr2\x1fhttps://s.example/"))
    assert not set(one) & set(first(KEY, "ws\x1fbf\x1fr1\x1fhttps://s.example/x"))
    assert not set(one) & set(first(code_key("another secret"), "ws\x1fbf\x1fr1\x1fhttps://s.example/"))
    assert all(len(c) == 22 for c in first(KEY, "x", 10, 22))


def test_a_code_key_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        code_key("")
