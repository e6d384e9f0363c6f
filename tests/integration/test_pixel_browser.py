"""px.js in a real headless Chromium: a recipient taps a tracked link, lands on a
shop page, browses on, buys; the pixel events arrive with the right click id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import redis

from tracker.embedded import free_port
from tracker.keys import Keys
from tracker.models import Click

pytestmark = pytest.mark.e2e

# The two lines a shop pastes (README).
SNIPPET = ('<script>window.trk=window.trk||function(){{(trk.q=trk.q||[]).push(arguments)}}</script>'
           '<script async src="{tracker}/px.js" data-workspace="acme"{extra}></script>')


class Shop:
    """A tiny shop on its own origin: pages with the pixel, and Shopify's cart endpoint."""

    def __init__(self, tracker: str) -> None:
        self.tracker = tracker
        self.cart_updates: list[Any] = []
        self.extra = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                head = SNIPPET.format(tracker=shop.tracker, extra=shop.extra)
                if path == "/landing":
                    body = f"<!doctype html><html><head>{head}</head><body>Winter coats</body>"
                elif path == "/shopify-landing":
                    body = ("<!doctype html><html><head><script>window.Shopify={shop:'acme'}"
                            f"</script>{head}</head><body>Winter coats</body>")
                elif path == "/thanks":
                    body = (f"<!doctype html><html><head>{head}</head><body>Thank you"
                            '<script>trk("purchase", {oid: "1042", v: "89.90", cur: "EUR"})'
                            "</script></body>")
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                shop.cart_updates.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stack(redis_url: str, prefix: str, r: redis.Redis) -> Iterator[tuple[str, str, Shop]]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "TRACKER_KEY_PREFIX": prefix,
           "TRACKER_PORT": str(port), "TRACKER_LOG_LEVEL": "warning"}
    web = subprocess.Popen([sys.executable, "-m", "tracker", "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    # (the CLI, not asyncio: Playwright's sync API owns this thread's event loop)
    created = subprocess.run([sys.executable, "-m", "tracker", "workspace", "create", "acme"],
                             env=env, capture_output=True, text=True, check=True)
    key = json.loads(created.stdout)["api_key"]
    shop = Shop(base)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "web process did not start"
            time.sleep(0.05)
        yield base, key, shop
    finally:
        shop.server.shutdown()
        web.terminate()
        web.wait(10)


def pixel_events(r: redis.Redis, prefix: str, n: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 10
    while True:
        entries = [f for _, f in r.xrange(Keys(prefix).event_stream(0)) if f["type"] == "pixel"]
        if len(entries) >= n or time.monotonic() > deadline:
            return [{k: v[0] for k, v in parse_qs(f["d"]).items()} for f in entries]
        time.sleep(0.05)


def make_link(base: str, key: str, url: str) -> str:
    res = httpx.post(f"{base}/api/v1/links", headers={"Authorization": f"Bearer {key}"},
                     json={"url": url, "campaign": "bf24", "recipient": "cust-1"})
    assert res.status_code == 201
    return str(res.json()["short_url"]).replace("http://t.example", base)


def click_id(r: redis.Redis, prefix: str) -> str:
    [(_, click)] = r.xrange(Keys(prefix).click_stream(0))
    return Click.from_entry(click).id


def test_landing_browsing_and_purchase_carry_the_click_id(
    browser: Any, stack: tuple[str, str, Shop], r: redis.Redis, prefix: str
) -> None:
    base, key, shop = stack
    short = f"{base}/{make_link(base, key, f'{shop.url}/landing').rsplit('/', 1)[1]}"
    page = browser.new_page()
    try:
        page.goto(short)
        assert urlsplit(page.url).path == "/landing"  # the 302 took us to the shop
        cid = click_id(r, prefix)
        assert parse_qs(urlsplit(page.url).query)["trk_id"] == [cid]
        [view] = pixel_events(r, prefix, 1)
        assert (view["w"], view["e"], view["cid"]) == ("acme", "page_view", cid)
        # later, without the click id in the URL: the first-party cookie carries it
        page.goto(f"{shop.url}/thanks")
        events = pixel_events(r, prefix, 3)
    finally:
        page.close()
    assert [(e["e"], e["cid"]) for e in events] == [("page_view", cid), ("page_view", cid),
                                                    ("purchase", cid)]
    assert (events[2]["oid"], events[2]["v"], events[2]["cur"]) == ("1042", "89.90", "EUR")


def test_on_shopify_the_click_id_goes_into_the_cart(
    browser: Any, stack: tuple[str, str, Shop], r: redis.Redis, prefix: str
) -> None:
    base, key, shop = stack
    short = make_link(base, key, f"{shop.url}/shopify-landing")
    page = browser.new_page()
    try:
        page.goto(f"{base}/{short.rsplit('/', 1)[1]}")
        deadline = time.monotonic() + 10
        while not shop.cart_updates and time.monotonic() < deadline:
            page.wait_for_timeout(50)
    finally:
        page.close()
    assert shop.cart_updates == [{"attributes": {"trk_id": click_id(r, prefix)}}]


def test_global_privacy_control_is_honoured_when_asked(
    browser: Any, stack: tuple[str, str, Shop], r: redis.Redis, prefix: str
) -> None:
    base, key, shop = stack
    shop.extra = ' data-respect-dnt="true"'
    short = make_link(base, key, f"{shop.url}/thanks")
    context = browser.new_context()
    context.add_init_script(
        "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})")
    page = context.new_page()
    try:
        page.goto(f"{base}/{short.rsplit('/', 1)[1]}")
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert r.xlen(Keys(prefix).event_stream(0)) == 0
