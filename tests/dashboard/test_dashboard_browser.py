"""The dashboard in a real headless Chromium (Debian's), against real web and worker
processes: sign in, a campaign with known numbers, the window switch, compare, sign
out. A screenshot of every page is kept in test-artifacts/dashboard/ (or
$TRACKER_TEST_ARTIFACTS/dashboard/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import redis

from tests.browser import browser  # noqa: F401  (the fixture)
from tests.integration.test_e2e import wait_for
from tracker.embedded import free_port

pytestmark = pytest.mark.e2e

PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/121.0 Mobile Safari/537.36 WA4A/2.24.16.76")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/121.0 Safari/537.36")
ARTIFACTS = Path(os.environ.get("TRACKER_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "test-artifacts") / "dashboard"


class Stack:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.auth = {"Authorization": f"Bearer {key}"}

    def api(self, method: str, path: str, **kw: Any) -> Any:
        res = httpx.request(method, f"{self.base}{path}", headers=self.auth, **kw)
        assert res.status_code < 300, res.text
        return res.json() if res.content else None


@pytest.fixture
def stack(redis_url: str, prefix: str, r: redis.Redis) -> Iterator[Stack]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "TRACKER_KEY_PREFIX": prefix,
           "TRACKER_PORT": str(port), "TRACKER_LOG_LEVEL": "warning",
           "TRACKER_BASE_URL": f"http://127.0.0.1:{port}"}
    web = subprocess.Popen([sys.executable, "-m", "tracker", "serve"], env=env)
    worker = subprocess.Popen([sys.executable, "-m", "tracker", "worker"], env=env)
    created = subprocess.run([sys.executable, "-m", "tracker", "workspace", "create", "acme"],
                             env=env, capture_output=True, text=True, check=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, what="web process")
        yield Stack(base, json.loads(created.stdout)["api_key"])
    finally:
        for proc in (web, worker):
            proc.terminate()
            proc.wait(10)


def seed(s: Stack) -> None:
    """Two campaigns. spring: 10 recipients, 9 delivered, 6 read, clicks by 4 people
    (phones and a desktop), 2 previews, 3 orders (one 30 h after its click, one refunded
    in part). autumn: 4 recipients, 1 click."""
    now = datetime.now(UTC)
    s.api("PUT", "/api/v1/campaigns/spring", json={"name": "Spring sale", "spend": "20.00",
                                                   "currency": "EUR"})
    s.api("PATCH", "/api/v1/workspace", json={"timezone": "Europe/Berlin"})
    people = [f"p{i}" for i in range(10)]
    codes = {x["recipient"]: x["code"] for x in s.api("POST", "/api/v1/links/batch", json={
        "url": "https://shop.example/spring", "campaign": "spring",
        "utm": {"source": "whatsapp"}, "recipients": people})["links"]}
    other = s.api("POST", "/api/v1/links/batch", json={
        "url": "https://shop.example/autumn", "campaign": "autumn",
        "recipients": ["q0", "q1", "q2", "q3"]})["links"]
    s.api("POST", "/api/v1/messages", json={"messages": [
        {"message_id": f"w{p}", "campaign": "spring", "recipient": p,
         "sent_at": (now - timedelta(hours=1)).isoformat()} for p in people]})
    statuses = []
    for i, p in enumerate(people):
        statuses.append({"id": f"s{p}", "type": "status", "time": now.isoformat(),
                         "message_id": f"w{p}", "status": "sent"})
        if i < 9:
            statuses.append({"id": f"d{p}", "type": "status", "time": now.isoformat(),
                             "message_id": f"w{p}", "status": "delivered"})
        if i < 6:
            statuses.append({"id": f"r{p}", "type": "status", "time": now.isoformat(),
                             "message_id": f"w{p}", "status": "read"})
    s.api("POST", "/api/v1/events", json=statuses)
    cids = {}
    for p, ua in (("p0", PHONE), ("p1", PHONE), ("p2", DESKTOP), ("p3", PHONE), ("p0", PHONE)):
        res = httpx.get(f"{s.base}/{codes[p]}", headers={"user-agent": ua},
                        follow_redirects=False)
        assert res.status_code == 302
        cids.setdefault(p, parse_qs(urlsplit(res.headers["location"]).query)["trk_id"][0])
    for p in ("p4", "p5"):
        httpx.get(f"{s.base}/{codes[p]}", headers={"user-agent": "WhatsApp/2.23.20.0 A"})
    httpx.get(f"{s.base}/{other[0]['code']}", headers={"user-agent": PHONE})
    s.api("POST", "/api/v1/events", json=[
        {"id": "o1", "type": "order", "time": (now + timedelta(hours=1)).isoformat(),
         "order_id": "A-1", "amount": "50.00", "currency": "EUR", "click_id": cids["p0"]},
        {"id": "o2", "type": "order", "time": (now + timedelta(hours=3)).isoformat(),
         "order_id": "A-2", "amount": "30.00", "currency": "EUR", "click_id": cids["p2"]},
        {"id": "o3", "type": "order", "time": (now + timedelta(hours=30)).isoformat(),
         "order_id": "A-3", "amount": "80.00", "currency": "EUR", "click_id": cids["p1"]},
        {"id": "rf", "type": "refund", "time": (now + timedelta(hours=40)).isoformat(),
         "order_id": "A-2", "refund_id": "rf1", "amount": "10.00", "currency": "EUR"}])
    deadline = time.monotonic() + 30
    while True:
        rep = s.api("GET", "/api/v1/campaigns/spring/report")
        if rep["orders"] == 3 and rep["clicks"] == 5 and rep["non_human_clicks"] == 2 \
                and rep["read"] == 6 and rep["revenue"]["EUR"]["refunded"] == "10.00":
            return
        assert time.monotonic() < deadline, f"the worker did not catch up: {rep}"
        time.sleep(0.1)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def kpi(page: Any, key: str) -> str:
    text: str = page.locator(f'[data-kpi="{key}"]').first.inner_text()
    return text.strip()


def pct(rate: dict[str, Any]) -> str:
    return f"{rate['value'] * 100:.1f} %"


def test_the_dashboard_in_chromium(browser: Any, stack: Stack) -> None:  # noqa: F811
    seed(stack)
    read_key = stack.api("POST", "/api/v1/keys", json={"scope": "read"})["api_key"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{stack.base}/dashboard")
        assert page.locator("h1").inner_text() == "Sign in"
        shot(page, "1-sign-in")
        page.get_by_label("API key").fill(read_key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("table.list")
        cookie = next(c for c in context.cookies() if c["name"] == "trk_dashboard")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # no script can read the key

        # the list: the same numbers as GET /api/v1/campaigns
        listed = {c["campaign"]: c["kpis"]
                  for c in stack.api("GET", "/api/v1/campaigns")["campaigns"]}
        row = page.locator("tr", has=page.get_by_role("link", name="Spring sale"))
        assert row.locator('[data-kpi="delivered"]').inner_text() == \
            str(listed["spring"]["delivered"]) == "9"
        assert row.locator('[data-kpi="ctr"]').inner_text() == pct(listed["spring"]["ctr"])
        assert row.locator('[data-kpi="net_revenue"]').inner_text() == \
            f"{listed['spring']['net_revenue']['EUR']} EUR"
        shot(page, "2-campaigns")

        # the campaign: funnel and totals match the report API
        page.get_by_role("link", name="Spring sale").click()
        page.wait_for_selector("svg.funnel")
        rep = stack.api("GET", "/api/v1/campaigns/spring/report")
        for step, key in (("sent", "sent"), ("delivered", "delivered"), ("read", "read"),
                          ("unique_clickers", "unique_clickers"),
                          ("converters", "converters")):
            shown = page.locator(f'tr[data-step="{step}"] td').first.inner_text()
            assert shown == f"{rep[key]:,}", step
        assert (rep["sent"], rep["delivered"], rep["read"], rep["unique_clickers"],
                rep["converters"]) == (10, 9, 6, 4, 3)
        assert kpi(page, "read_rate") == pct(rep["read_rate"]) == "66.7 %"
        assert kpi(page, "ctr") == pct(rep["ctr"]) == "44.4 %"
        assert kpi(page, "orders") == str(rep["orders"]) == "3"
        assert kpi(page, "net_revenue") == f"{rep['revenue']['EUR']['net']} EUR" == "150.00 EUR"
        assert kpi(page, "non_human_clicks").startswith("2 non-human clicks excluded")
        assert page.locator("table.orders tbody tr").count() == 3
        assert "Europe/Berlin" in page.locator("section.series h2").inner_text()
        shot(page, "3-campaign-5d")

        # the window switch changes the numbers in place (no page load)
        page.evaluate("window.__same_page = true")
        page.get_by_role("link", name="24 h").click()
        page.wait_for_selector('a[data-window="24h"][aria-current="true"]')
        day = stack.api("GET", "/api/v1/campaigns/spring/report?window=24h")
        assert page.evaluate("window.__same_page") is True
        assert "window=24h" in page.url
        assert kpi(page, "orders") == str(day["orders"]) == "2"
        assert kpi(page, "net_revenue") == f"{day['revenue']['EUR']['net']} EUR" == "70.00 EUR"
        assert page.locator('tr[data-step="converters"] td').first.inner_text() == "2"
        assert page.locator("table.orders tbody tr").count() == 2
        shot(page, "4-campaign-24h")

        # keyboard: the window switch is reachable and works with Enter
        page.locator('a[data-window="120h"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_selector('a[data-window="120h"][aria-current="true"]')
        assert kpi(page, "orders") == "3"

        # CSV of what is shown
        with page.expect_download() as dl:
            page.get_by_role("link", name="Download CSV").click()
        text = Path(dl.value.path()).read_text()
        assert "report,spring,orders,3" in text

        # compare
        page.goto(f"{stack.base}/dashboard")
        page.get_by_label("Compare Spring sale").check()
        page.get_by_label("Compare autumn").check()
        page.get_by_role("button", name="Compare selected").click()
        page.wait_for_selector("table.compare")
        headers = page.locator("table.compare thead th").all_inner_texts()
        assert headers == ["Spring sale", "autumn"]
        shot(page, "5-compare")

        # a phone: nothing wider than the screen
        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    device_scale_factor=2, is_mobile=True)
        phone.add_cookies([{**cookie}])
        small = phone.new_page()
        small.goto(f"{stack.base}/dashboard/campaigns/spring")
        small.wait_for_selector("svg.funnel")
        # (compared with the screen, not innerWidth: a phone zooms out to fit a wide page)
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        shot(small, "6-campaign-phone")
        phone.close()

        # sign out: the cookie is gone, and so is the data
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_selector("input#key")
        assert not [c for c in context.cookies() if c["name"] == "trk_dashboard"]
        page.goto(f"{stack.base}/dashboard/campaigns/spring")
        assert page.locator("h1").inner_text() == "Sign in"
        assert "Spring sale" not in page.content()
    finally:
        context.close()
