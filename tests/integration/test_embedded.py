"""The embedded redis-server's settings that tracker relies on."""

from __future__ import annotations

from pathlib import Path

import redis

from tracker.embedded import EmbeddedRedis


def test_link_buckets_stay_compact_up_to_512_links(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data", appendonly=False).start()
    try:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        r.hset("bucket", mapping={f"code{i:04d}": "AbCdEfGhIjKl\x1frecipient\x1f1790000000000"
                                  for i in range(500)})
        assert r.object("encoding", "bucket") in ("ziplist", "listpack")
        r.close()
    finally:
        server.stop()
