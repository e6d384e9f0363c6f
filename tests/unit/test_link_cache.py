"""The web process's link cache: bounded, first in first out, trusted for a TTL."""

from __future__ import annotations

from tracker.redirect import CachedLink, LinkCache


def link(fetched: float) -> CachedLink:
    return CachedLink("acme", "bf", "r1", "https://s.example/?trk_id=", "", "acme\x1fbf\x1fr1",
                      None, False, fetched, "trk:{p0}:clicks", (b"https://s.example/?trk_id=", b""))


def test_the_oldest_entry_goes_first_and_the_size_holds() -> None:
    cache = LinkCache(3, ttl=5.0)
    for code in ("a", "b", "c"):
        cache.put(code, link(100.0))
    cache.put("b", link(101.0))  # a refresh keeps its place
    cache.put("d", link(100.0))
    assert len(cache) == 3
    assert cache.get("a", 100.0) is None
    assert [c for c in ("b", "c", "d") if cache.get(c, 100.5)] == ["b", "c", "d"]
    for i in range(10_000):  # long past a dict's resize: still bounded, still in order
        cache.put(f"x{i}", link(100.0))
    assert len(cache) == 3
    assert [c for c in ("x9997", "x9998", "x9999") if cache.get(c, 100.0)] == [
        "x9997", "x9998", "x9999"]


def test_an_entry_is_trusted_for_its_ttl_only() -> None:
    cache = LinkCache(10, ttl=5.0)
    cache.put("a", link(100.0))
    assert cache.get("a", 104.9) is not None
    assert cache.get("a", 105.0) is None


def test_size_zero_caches_nothing() -> None:
    cache = LinkCache(0, ttl=5.0)
    cache.put("a", link(100.0))
    assert len(cache) == 0 and cache.get("a", 100.0) is None
