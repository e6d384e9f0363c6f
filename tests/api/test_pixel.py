"""/px.gif records one raw event and answers a GIF; /px.js is the shop-side script."""

from __future__ import annotations

import redis
from starlette.testclient import TestClient

from tracker.keys import Keys
from tracker.redirect import PIXEL


def test_pixel_gif(client: TestClient, r: redis.Redis, prefix: str) -> None:
    query = "w=acme&e=purchase&cid=Qx7-abc&oid=1042&v=89.90&cur=EUR&u=https%3A%2F%2Fs.example%2F"
    res = client.get(f"/px.gif?{query}", headers={"user-agent": "Mozilla/5.0", "dnt": "1",
                                                   "referer": "https://s.example/thanks"})
    assert res.status_code == 200
    assert res.headers["content-type"] == "image/gif"
    assert res.headers["cache-control"] == "no-store"
    assert res.content == PIXEL and PIXEL.startswith(b"GIF89a") and len(PIXEL) == 43
    [(_, fields)] = r.xrange(Keys(prefix).event_stream(0))
    # stored as it came: the worker parses, the request path does not
    assert fields["type"] == "pixel" and fields["d"] == query
    assert fields["dnt"] == "1" and fields["ref"] == "https://s.example/thanks"
    assert client.head("/px.gif").content == b""


def test_px_js(client: TestClient) -> None:
    res = client.get("/px.js")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/javascript")
    assert "/px.gif?" in res.text and "cart/update.js" in res.text
