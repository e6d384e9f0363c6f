"""GET /metrics: Prometheus text with redirects, latency, streams, lag and workers."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.conftest import drain_worker
from tracker.settings import Settings


def value(text: str, name: str, **labels: str) -> float:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{inner}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    m = re.search(pattern, text, re.MULTILINE)
    assert m, f"{name} {labels} not in metrics"
    return float(m.group(1))


def test_metrics(client: TestClient, auth: dict[str, str], settings: Settings,
                 prefix: str) -> None:
    code = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipient": "r"}).json()["code"]
    for _ in range(3):
        client.get(f"/{code}")
    client.get("/abcdefgh")  # a 404
    client.get("/px.gif?w=acme&e=page_view")
    text = client.get("/metrics").text
    assert value(text, "tracker_redirects_total", status="302") == 3
    assert value(text, "tracker_redirects_total", status="404") == 1
    assert value(text, "tracker_redirect_seconds_count") == 4
    assert value(text, "tracker_redirect_seconds_bucket", le="+Inf") == 4
    assert value(text, "tracker_pixel_total") == 1
    clicks = f"{prefix}:{{p0}}:clicks"
    assert value(text, "tracker_stream_length", stream=clicks) == 3
    assert value(text, "tracker_stream_lag", stream=clicks) == 3  # no worker yet
    drain_worker(settings)
    text = client.get("/metrics").text
    assert value(text, "tracker_stream_lag", stream=clicks) == 0
    assert value(text, "tracker_stream_pending", stream=clicks) == 0
    assert value(text, "tracker_dead_letters") == 0
    assert value(text, "tracker_worker_read_total", consumer="w1") == 4  # 3 clicks, 1 pixel
    assert value(text, "tracker_worker_applied_total", consumer="w1") == 4
