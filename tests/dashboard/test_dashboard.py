"""/dashboard over HTTP: sign-in, the pages' numbers against the report API, errors."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.conftest import drain_worker
from tracker.settings import Settings

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")


def read_key(client: TestClient, auth: dict[str, str]) -> str:
    res = client.post("/api/v1/keys", headers=auth, json={"scope": "read"})
    assert res.status_code == 201
    key: str = res.json()["api_key"]
    return key


def sign_in(client: TestClient, key: str) -> Any:
    return client.post("/dashboard/signin", data={"key": key}, follow_redirects=False)


def kpis(html: str) -> dict[str, str]:
    """The first value shown for each KPI (on the list: the first row's)."""
    out: dict[str, str] = {}
    for key, value in re.findall(r'data-kpi="([a-z_]+)">([^<]*)<', html):
        out.setdefault(key, value)
    return out


def seed(client: TestClient, auth: dict[str, str], settings: Settings) -> list[str]:
    """Two campaigns with known numbers: bf has 4 recipients, 3 human clicks (one a
    recipient's second), a preview, and two orders: one 2 h after its click, one 30 h."""
    client.put("/api/v1/campaigns/bf", headers=auth, json={
        "name": "Black Friday", "spend": "10.00", "currency": "EUR"})
    codes = [x["code"] for x in client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf",
        "recipients": ["a", "b", "c", "d"]}).json()["links"]]
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "cm", "recipient": "z"})
    now = datetime.now(UTC)
    client.post("/api/v1/messages", headers=auth, json={"messages": [
        {"message_id": f"w{r}", "campaign": "bf", "recipient": r,
         "sent_at": (now - timedelta(minutes=5)).isoformat()} for r in "abcd"]})
    client.post("/api/v1/events", headers=auth, json=[
        {"id": f"s{r}{st}", "type": "status", "time": now.isoformat(), "message_id": f"w{r}",
         "status": st} for r in "abc" for st in ("delivered", "read")] + [
        {"id": "sd", "type": "status", "time": now.isoformat(), "message_id": "wd",
         "status": "delivered"}])
    cids = []
    for code in (codes[0], codes[1], codes[0]):
        loc = client.get(f"/{code}", headers={"user-agent": PHONE}).headers["location"]
        cids.append(parse_qs(urlsplit(loc).query)["trk_id"][0])
    client.get(f"/{codes[2]}", headers={"user-agent": "WhatsApp/2.23.20.0 A"})
    client.post("/api/v1/events", headers=auth, json=[
        {"id": "o1", "type": "order", "time": (now + timedelta(hours=2)).isoformat(),
         "order_id": "1001", "amount": "40.00", "currency": "EUR", "click_id": cids[0]},
        {"id": "o2", "type": "order", "time": (now + timedelta(hours=30)).isoformat(),
         "order_id": "1002", "amount": "60.00", "currency": "EUR", "click_id": cids[1]}])
    drain_worker(settings)
    return codes


def test_no_key_no_data(client: TestClient, auth: dict[str, str], settings: Settings) -> None:
    seed(client, auth, settings)
    page = client.get("/dashboard")
    assert page.status_code == 200 and "Sign in" in page.text and "Black Friday" not in page.text
    res = client.get("/dashboard/campaigns/bf", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/dashboard"
    assert "Black Friday" not in client.get("/dashboard/compare?campaigns=bf,cm").text
    # a wrong key, a full key: refused, no cookie
    for key, status in (("nope", 401), (auth["Authorization"].split()[1], 403)):
        res = sign_in(client, key)
        assert res.status_code == status and "set-cookie" not in res.headers
    assert "read-only" in sign_in(client, auth["Authorization"].split()[1]).text


def test_sign_in_keeps_the_key_in_a_strict_http_only_cookie(
        client: TestClient, auth: dict[str, str]) -> None:
    key = read_key(client, auth)
    res = sign_in(client, key)
    assert res.status_code == 303 and res.headers["location"] == "/dashboard"
    cookie = res.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert "Campaigns" in client.get("/dashboard").text
    assert res.headers["cache-control"] == "no-store"
    out = client.post("/dashboard/signout", follow_redirects=False)
    assert out.status_code == 303 and 'trk_dashboard=""' in out.headers["set-cookie"]
    client.cookies.clear()
    assert "Sign in" in client.get("/dashboard").text


def test_a_revoked_key_signs_the_dashboard_out(client: TestClient,
                                               auth: dict[str, str]) -> None:
    made = client.post("/api/v1/keys", headers=auth, json={"scope": "read"}).json()
    sign_in(client, made["api_key"])
    assert "Campaigns" in client.get("/dashboard").text
    client.delete(f"/api/v1/keys/{made['key_id']}", headers=auth)
    res = client.get("/dashboard")
    assert res.status_code == 401 and "no longer valid" in res.text


def test_pages_show_the_report_apis_numbers(client: TestClient, auth: dict[str, str],
                                           settings: Settings) -> None:
    seed(client, auth, settings)
    sign_in(client, read_key(client, auth))
    for window in ("24h", "120h"):
        api = client.get("/api/v1/campaigns/bf/report", headers=auth,
                         params={"window": window}).json()
        page = client.get(f"/dashboard/campaigns/bf?window={window}")
        assert page.status_code == 200, page.text
        shown = kpis(page.text)
        assert shown["delivered"] == str(api["delivered"]) == "4"
        assert shown["orders"] == str(api["orders"])
        assert shown["read_rate"] == f"{api['read_rate']['value'] * 100:.1f} %" == "75.0 %"
        assert shown["ctr"] == f"{api['ctr']['value'] * 100:.1f} %" == "50.0 %"
        assert shown["net_revenue"] == f"{api['revenue']['EUR']['net']} EUR"
        assert shown["non_human_clicks"].startswith("1 non-human")
        for step, key in (("sent", "sent"), ("delivered", "delivered"), ("read", "read"),
                          ("unique_clickers", "unique_clickers"), ("converters", "converters")):
            row = re.search(rf'data-step="{step}"><th scope="row">\w+</th><td>([\d,]+)<',
                            page.text)
            assert row and row.group(1) == str(api[key]), step
        assert 'aria-current="true" class="on">' in page.text
    # the window changes the numbers: the order 30 h after its click
    assert kpis(client.get("/dashboard/campaigns/bf?window=24h").text)["orders"] == "1"
    assert kpis(client.get("/dashboard/campaigns/bf?window=120h").text)["orders"] == "2"
    assert "1002" not in client.get("/dashboard/campaigns/bf?window=24h").text

    listing = client.get("/dashboard?sort=-orders").text
    assert listing.index("Black Friday") < listing.index(">cm<")
    assert kpis(listing)["orders"] == "2"  # the first row: bf
    assert client.get("/dashboard?sort=orders").text.index(">cm<") < \
        client.get("/dashboard?sort=orders").text.index("Black Friday")

    both = client.get("/dashboard/compare?campaigns=bf&campaigns=cm")
    assert both.status_code == 200 and "Black Friday" in both.text and ">cm<" in both.text


def test_the_csv_is_what_the_page_shows(client: TestClient, auth: dict[str, str],
                                        settings: Settings) -> None:
    seed(client, auth, settings)
    sign_in(client, read_key(client, auth))
    res = client.get("/dashboard/campaigns/bf?window=24h&format=csv")
    assert res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(res.text)))
    report = {r["metric"]: r["value"] for r in rows if r["section"] == "report"}
    assert (report["window"], report["delivered"], report["orders"]) == ("24h", "4", "1")
    assert [r["item"] for r in rows if r["section"] == "order" and r["metric"] == "amount"] \
        == ["1001"]
    assert sum(int(r["value"]) for r in rows if r["section"] == "series"
               and r["metric"] == "clicks") == 3


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/dashboard/campaigns/nope", 404, "no campaign"),
    ("/dashboard/campaigns/bf?window=999h", 422, "at most"),
    ("/dashboard/campaigns/bf?window=soon", 422, "window"),
    ("/dashboard/campaigns/bf?from=yesterday", 422, "YYYY-MM-DD"),
    ("/dashboard/campaigns/bf?from=2026-02-01&to=2026-01-01", 422, "before"),
    ("/dashboard/compare?campaigns=bf", 422, "two"),
])
def test_bad_parameters_are_pages_not_crashes(client: TestClient, auth: dict[str, str],
                                              path: str, status: int, text: str) -> None:
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "bf"})
    sign_in(client, read_key(client, auth))
    res = client.get(path)
    assert res.status_code == status and text in res.text
    assert res.headers["content-type"].startswith("text/html")


def test_a_date_range_uses_the_workspace_time_zone(client: TestClient, auth: dict[str, str],
                                                   settings: Settings) -> None:
    seed(client, auth, settings)
    client.patch("/api/v1/workspace", headers=auth, json={"timezone": "Pacific/Kiritimati"})
    sign_in(client, read_key(client, auth))
    today = datetime.now(UTC).astimezone().date()
    page = client.get(f"/dashboard/campaigns/bf?from={today - timedelta(days=3)}").text
    assert "Pacific/Kiritimati" in page and kpis(page)["delivered"] == "4"
    old = client.get("/dashboard/campaigns/bf?from=2020-01-01&to=2020-01-31").text
    assert kpis(old)["delivered"] == "0" and kpis(old)["orders"] == "0"
    assert client.patch("/api/v1/workspace", headers=auth,
                        json={"timezone": "Mars/Olympus"}).status_code == 422


def test_static_files_are_served_and_nothing_else(client: TestClient) -> None:
    assert client.get("/dashboard/static/dashboard.css").status_code == 200
    assert client.get("/dashboard/static/dashboard.js").headers["content-type"].startswith(
        "text/javascript")
    assert client.get("/dashboard/static/..%2Fsettings.py").status_code == 404


def test_an_empty_workspace_and_a_campaign_with_no_events(client: TestClient,
                                                          auth: dict[str, str]) -> None:
    sign_in(client, read_key(client, auth))
    assert "No campaigns yet" in client.get("/dashboard").text
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "quiet"})
    page = client.get("/dashboard/campaigns/quiet")
    assert page.status_code == 200
    assert "No clicks yet" in page.text and "No attributed orders" in page.text
    assert kpis(page.text)["read_rate"] == "–" and kpis(page.text)["orders"] == "0"
    assert client.get("/dashboard/campaigns/quiet?format=csv").status_code == 200
