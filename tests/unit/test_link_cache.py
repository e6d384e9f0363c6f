"""The web process's link cache: bounded, first in first out, trusted for a TTL."""

from __future__ import annotations

import gc

from tracker.redirect import LOCATION_PREFIX, LOCATION_SUFFIX, CachedLink, LinkCache, cached_link


def link(fetched: float, prefix: str = "https://s.example/?trk_id=") -> CachedLink:
    return cached_link("acme", prefix, "", "acme\x1fbf\x1fr1", None, False, fetched,
                       "trk:{p0}:clicks")


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


def test_a_full_cache_is_nothing_for_the_garbage_collector_to_walk() -> None:
    # Every redirect of the process waits while the collector runs: a cache
    # of objects (or an OrderedDict) made each full collection walk every
    # entry, 38 ms for 100,000. Plain tuples of strings and numbers, in a
    # plain dict, the collector stops tracking once it has seen them.
    cache = LinkCache(1000, ttl=5.0)
    for i in range(1000):
        cache.put(f"c{i}", link(100.0))
    cache.put("odd", link(100.0, prefix="https://s.example/\u00fcber?trk_id="))
    gc.collect()
    assert not any(gc.is_tracked(e) for e in cache._data.values())
    assert not gc.is_tracked(cache._data)


def test_a_location_uvicorn_would_refuse_is_left_to_the_asgi_path() -> None:
    assert link(1.0)[LOCATION_PREFIX] == b"https://s.example/?trk_id="
    assert link(1.0)[LOCATION_SUFFIX] == b""
    assert link(1.0, prefix="https://s.example/\u20ac?trk_id=")[LOCATION_PREFIX] is None
    assert link(1.0, prefix="https://s.example/?a=\x01&trk_id=")[LOCATION_PREFIX] is None
    assert link(1.0, prefix="https://s.example/\u00fcber?trk_id=")[LOCATION_PREFIX] == (
        "https://s.example/\u00fcber?trk_id=".encode("latin-1"))
