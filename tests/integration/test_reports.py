"""The report endpoints read aggregates the worker kept: orders, time series, breakdowns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.conftest import drain_worker
from tracker.settings import Settings

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")


def get(client: TestClient, auth: dict[str, str], path: str, **params: str) -> Any:
    res = client.get(path, headers=auth, params=params)
    assert res.status_code == 200, res.text
    return res.json()


def test_orders_timeseries_and_breakdowns(client: TestClient, auth: dict[str, str],
                                          settings: Settings) -> None:
    links = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipients": ["a", "b"]}).json()["links"]
    loc = client.get(f"/{links[0]['code']}", headers={"user-agent": PHONE}).headers["location"]
    cid = parse_qs(urlsplit(loc).query)["trk_id"][0]
    client.get(f"/{links[1]['code']}", headers={"user-agent": "WhatsApp/2.23.20.0 A"})
    ordered = datetime.now(UTC) + timedelta(hours=2)
    res = client.post("/api/v1/events", headers=auth, json=[{
        "id": "o1", "type": "order", "time": ordered.isoformat(), "order_id": "1042",
        "amount": "89.90", "currency": "EUR", "click_id": cid}])
    assert res.status_code == 202
    drain_worker(settings)

    [order] = get(client, auth, "/api/v1/campaigns/bf/orders")["orders"]
    assert (order["order_id"], order["amount"], order["attributed_by"]) == ("1042", "89.90",
                                                                            "click_id")
    assert order["link"] == links[0]["code"] and order["hours_from_click"] == 2

    window = {"from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
              "to": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    series = get(client, auth, "/api/v1/campaigns/bf/timeseries", interval="hour",
                 metrics="clicks,orders,net", **window)
    assert sum(b["clicks"] for b in series["buckets"]) == 1
    assert sum(b["orders"] for b in series["buckets"]) == 1
    assert len(series["buckets"]) in (48, 49)  # empty hours present
    # the window applies as in the report: the order came 2 h after its click
    short = get(client, auth, "/api/v1/campaigns/bf/timeseries", interval="hour",
                metrics="clicks,orders,gross", window="2", **window)
    assert sum(b["orders"] for b in short["buckets"]) == 0 and short["window"] == "2h"
    assert sum(b["clicks"] for b in short["buckets"]) == 1
    assert all(b["gross"] == {} for b in short["buckets"])

    by_link = {r["value"]: r for r in get(client, auth, "/api/v1/campaigns/bf/breakdown",
                                          by="link")["rows"]}
    assert by_link[links[0]["code"]]["clicks"] == 1
    assert by_link[links[0]["code"]]["gross"] == {"EUR": "89.90"}
    assert by_link[links[1]["code"]]["non_human_clicks"] == 1
    eur = {"EUR": "89.90"}
    for by, value in (("device", "mobile"), ("os", "iOS")):
        rows = get(client, auth, "/api/v1/campaigns/bf/breakdown", by=by)["rows"]
        assert rows == [{"value": value, "clicks": 1, "unique_clickers": 1, "orders": 1,
                         "gross": eur, "refunded": {"EUR": "0.00"}, "net": eur}], by
    hours = get(client, auth, "/api/v1/campaigns/bf/breakdown", by="hour_of_day",
                tz="Asia/Kolkata")["rows"]
    assert sum(r["clicks"] for r in hours) == 1 and sum(r["orders"] for r in hours) == 1
    assert sum(r["unique_clickers"] for r in hours) == 1
    assert sum(r.get("non_human_clicks", 0) for r in hours) == 1


def test_report_parameters_are_validated(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "bf"})
    for path, params, field in [
        ("report", {"window": "200h"}, "window"),  # over the workspace's 120 h
        ("report", {"window": "soon"}, "window"),
        ("timeseries", {"interval": "minute"}, "interval"),
        ("timeseries", {"tz": "Mars/Olympus"}, "tz"),
        ("timeseries", {"from": "yesterday"}, "from"),
        ("timeseries", {"metrics": "clicks,vibes"}, "metrics"),
        ("timeseries", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ("breakdown", {"by": "colour"}, "by"),
        ("breakdown", {"by": "hour_of_day", "tz": "Berlin"}, "tz"),
        ("report", {"from": "yesterday"}, "from"),
        ("report", {"to": "2026-13-01"}, "to"),
        ("report", {"from": "2026-01-02", "to": "2026-01-01"}, "from"),
        ("report", {"from": "2026-01-01", "tz": "Mars/Olympus"}, "tz"),
    ]:
        res = client.get(f"/api/v1/campaigns/bf/{path}", headers=auth, params=params)
        assert res.status_code == 422, (path, params)
        assert res.headers["content-type"] == "application/problem+json"
        assert res.json()["errors"][0]["field"] == field
    assert client.get("/api/v1/campaigns/bf/report", headers=auth,
                      params={"window": "24h"}).json()["window"] == "24h"


@pytest.mark.parametrize(("value", "name", "tz", "expected"), [
    ("2026-11-01", "from", "Europe/Berlin", "2026-10-31T23:00:00+00:00"),
    ("2026-11-01", "to", "Europe/Berlin", "2026-11-01T23:00:00+00:00"),  # the day included
    ("2026-10-25", "to", "Europe/Berlin", "2026-10-25T23:00:00+00:00"),  # a 25-hour day
    ("2026-03-29", "to", "Europe/Berlin", "2026-03-29T22:00:00+00:00"),  # a 23-hour day
    ("2026-11-01T09:30:00", "from", "Asia/Kolkata", "2026-11-01T04:00:00+00:00"),
    ("2026-11-01T09:30:00Z", "from", "Asia/Kolkata", "2026-11-01T09:30:00+00:00"),
])
def test_range_edges_are_read_in_the_time_zone(value: str, name: str, tz: str,
                                                expected: str) -> None:
    from zoneinfo import ZoneInfo

    from tracker.api.reports import local_time
    got = local_time(value, name, ZoneInfo(tz))
    assert datetime.fromtimestamp(got / 1000, UTC).isoformat() == expected


def test_a_report_over_a_range(client: TestClient, auth: dict[str, str],
                               settings: Settings) -> None:
    links = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipients": ["a"]}).json()["links"]
    client.get(f"/{links[0]['code']}", headers={"user-agent": PHONE})
    drain_worker(settings)
    now = datetime.now(UTC)
    today = get(client, auth, "/api/v1/campaigns/bf/report", tz="Pacific/Kiritimati",
                **{"from": (now - timedelta(hours=2)).isoformat()})
    assert (today["clicks"], today["unique_clickers"]) == (1, 1)
    assert today["from"] and today["to"] and today["clicks_by"] is None
    before = get(client, auth, "/api/v1/campaigns/bf/report",
                 **{"from": "2020-01-01", "to": (now - timedelta(hours=2)).isoformat()})
    assert (before["clicks"], before["unique_clickers"], before["recipients"]) == (0, 0, 1)


def test_exports_reconcile_with_the_report(client: TestClient, auth: dict[str, str],
                                           settings: Settings) -> None:
    import csv
    import io
    import json

    codes = [x["code"] for x in client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf",
        "recipients": [f"r{i}" for i in range(30)]}).json()["links"]]
    cids = []
    for i, code in enumerate(codes):
        ua = PHONE if i % 3 else "WhatsApp/2.23.20.0 A"
        loc = client.get(f"/{code}", headers={"user-agent": ua}).headers["location"]
        cids.append(parse_qs(urlsplit(loc).query)["trk_id"][0])
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    client.post("/api/v1/events", headers=auth, json=[
        {"id": f"o{i}", "type": "order", "time": later, "order_id": f"{i}", "amount": "10.00",
         "currency": "EUR", "click_id": cids[i]} for i in (1, 2, 4)])
    drain_worker(settings)
    rep = get(client, auth, "/api/v1/campaigns/bf/report")

    res = client.get("/api/v1/exports/clicks", headers=auth, params={"campaign": "bf"})
    assert res.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in res.text.splitlines()]
    assert len(rows) == rep["clicks"] + rep["non_human_clicks"] == 30
    assert sum(r["kind"] == "human" for r in rows) == rep["clicks"]
    assert {r["click_id"] for r in rows} == set(cids)

    res = client.get("/api/v1/exports/orders", headers={**auth, "accept": "text/csv"})
    assert res.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(res.text)))
    assert len(table) == rep["orders"] == 3
    assert sum(float(r["amount"]) for r in table) == float(rep["revenue"]["EUR"]["gross"])

    # resuming from a row's cursor gives that row's page again, never less
    cursor = rows[-1]["cursor"]
    again = client.get("/api/v1/exports/clicks", headers=auth, params={"cursor": cursor})
    assert rows[-1]["click_id"] in again.text
    # filters and bad parameters
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/exports/clicks", headers=auth,
                      params={"from": future}).text == ""
    for params, field in [({"from": "today"}, "from"), ({"cursor": "x"}, "cursor")]:
        bad = client.get("/api/v1/exports/clicks", headers=auth, params=params)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field
    assert client.get("/api/v1/exports/orders", headers=auth,
                      params={"campaign": "nope"}).status_code == 404


def test_campaign_list_sorts_pages_and_compares(client: TestClient, auth: dict[str, str],
                                                settings: Settings) -> None:
    for name, n_clicks in (("a", 1), ("b", 3), ("c", 2)):
        codes = [x["code"] for x in client.post("/api/v1/links/batch", headers=auth, json={
            "url": "https://s.example/", "campaign": name,
            "recipients": ["r1", "r2", "r3"]}).json()["links"]]
        for code in codes[:n_clicks]:
            client.get(f"/{code}", headers={"user-agent": PHONE})
    client.put("/api/v1/campaigns/d", headers=auth, json={"name": "not sent yet"})
    drain_worker(settings)

    page1 = get(client, auth, "/api/v1/campaigns", sort="-clicks", limit="2")
    assert [c["campaign"] for c in page1["campaigns"]] == ["b", "c"]
    assert page1["campaigns"][0]["kpis"]["unique_clickers"] == 3
    page2 = get(client, auth, "/api/v1/campaigns", sort="-clicks", limit="2",
                cursor=page1["next_cursor"])
    assert [c["campaign"] for c in page2["campaigns"]] == ["a", "d"]
    assert page2["next_cursor"] is None
    # a rate with no denominator sorts last, whichever the direction
    by_ctr = get(client, auth, "/api/v1/campaigns", sort="ctr")["campaigns"]
    assert by_ctr[-1]["kpis"]["ctr"]["value"] is None

    side = get(client, auth, "/api/v1/compare", campaigns="a,b", window="24h")["campaigns"]
    assert [(s["campaign"], s["clicks"], s["window"]) for s in side] == [("a", 1, "24h"),
                                                                          ("b", 3, "24h")]
    for path, params, field in [("/api/v1/campaigns", {"sort": "vibes"}, "sort"),
                                ("/api/v1/campaigns", {"limit": "0"}, "limit"),
                                ("/api/v1/campaigns", {"cursor": "abc"}, "cursor"),
                                ("/api/v1/compare", {"campaigns": "a"}, "campaigns"),
                                ("/api/v1/compare", {"campaigns": "a,zz"}, "campaigns")]:
        res = client.get(path, headers=auth, params=params)
        assert res.status_code == 422 and res.json()["errors"][0]["field"] == field


def test_stale_shopify_deliveries_are_never_counted(client: TestClient, auth: dict[str, str],
                                                    settings: Settings) -> None:
    import json

    from tracker.webhooks.signatures import shopify_signature

    client.patch("/api/v1/workspace", headers=auth, json={"shopify_secret": "s3"})
    [link] = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipients": ["a"]}).json()["links"]
    loc = client.get(f"/{link['code']}", headers={"user-agent": PHONE}).headers["location"]
    cid = parse_qs(urlsplit(loc).query)["trk_id"][0]
    when = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for oid, triggered in ((1, "2020-01-01T00:00:00Z"), (2, None)):
        body = json.dumps({"id": oid, "created_at": when, "currency": "EUR",
                           "total_price": "10.00", "landing_site": f"/?trk_id={cid}"}).encode()
        headers = {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": f"w{oid}",
                   "x-shopify-hmac-sha256": shopify_signature("s3", body)}
        if triggered:
            headers["x-shopify-triggered-at"] = triggered
        assert client.post("/webhooks/shopify/acme", content=body,
                           headers=headers).status_code == 200
    drain_worker(settings)
    [order] = get(client, auth, "/api/v1/campaigns/bf/orders")["orders"]
    assert order["order_id"] == "2"  # the replayed delivery of order 1 was not counted


def test_breakdown_by_utm_content(client: TestClient, auth: dict[str, str],
                                  settings: Settings) -> None:
    made = []
    for content in ("hero", "hero", "footer", None):
        body: dict[str, Any] = {"url": "https://s.example/", "campaign": "bf",
                                "recipient": f"r{len(made)}"}
        if content:
            body["utm"] = {"content": content}
        made.append(client.post("/api/v1/links", headers=auth, json=body).json()["code"])
    for code in made:
        client.get(f"/{code}", headers={"user-agent": PHONE})
    drain_worker(settings)
    rows = {r["value"]: r for r in get(client, auth, "/api/v1/campaigns/bf/breakdown",
                                       by="utm_content")["rows"]}
    assert {k: v["clicks"] for k, v in rows.items()} == {"hero": 2, "footer": 1, "(none)": 1}
    assert rows["hero"]["unique_clickers"] == 2


def test_a_workspace_that_respects_dnt_drops_the_pixel_events_that_ask(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    [link] = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://s.example/", "campaign": "bf", "recipients": ["a"]}).json()["links"]
    loc = client.get(f"/{link['code']}", headers={"user-agent": PHONE}).headers["location"]
    cid = parse_qs(urlsplit(loc).query)["trk_id"][0]
    client.patch("/api/v1/workspace", headers=auth, json={"respect_dnt": True})
    for oid, headers in (("1", {"sec-gpc": "1"}), ("2", {"dnt": "1"}), ("3", {})):
        client.get(f"/px.gif?w=acme&e=purchase&oid={oid}&v=10.00&cur=EUR&cid={cid}",
                   headers=headers)
    drain_worker(settings)
    orders = get(client, auth, "/api/v1/campaigns/bf/orders")["orders"]
    assert [o["order_id"] for o in orders] == ["3"]  # only the one that did not ask


def test_statuses_read_before_their_message_event(redis_url: str, prefix: str,
                                                  r: Any) -> None:
    """With several partitions a status can be folded before the message event
    that carries the send time (the API registered the message already): it
    counts at once, and moves into the time series when the send time comes."""
    from tests.conftest import create_workspace, make_settings
    from tracker.app import create_app
    from tracker.keys import Keys

    s = make_settings(redis_url, prefix, partitions=4)
    auth = {"Authorization": f"Bearer {create_workspace(s, 'acme')}"}
    sent = datetime.now(UTC) - timedelta(hours=3)
    with TestClient(create_app(s), follow_redirects=False) as client:
        ids = [f"w{i}" for i in range(24)]
        client.post("/api/v1/messages", headers=auth, json={"messages": [
            {"message_id": m, "campaign": "bf", "recipient": m, "sent_at": sent.isoformat()}
            for m in ids]}).raise_for_status()
        client.post("/api/v1/events", headers=auth, json=[
            {"id": f"s{m}", "type": "status", "time": datetime.now(UTC).isoformat(),
             "message_id": m, "status": "read"} for m in ids]).raise_for_status()
        drain_worker(s)  # fails if any event was dead-lettered
        rep = get(client, auth, "/api/v1/campaigns/bf/report")
        assert (rep["messages"], rep["delivered"], rep["read"]) == (24, 24, 24)
        series = r.hgetall(Keys(prefix, 4).series("acme", "bf"))
        hour = int(sent.timestamp()) // 3600
        assert (series[f"read:{hour}"], series[f"messages:{hour}"]) == ("24", "24")
        # the range holding the send time has them all
        ranged = get(client, auth, "/api/v1/campaigns/bf/report",
                     **{"from": (sent - timedelta(hours=1)).isoformat(),
                        "to": (sent + timedelta(hours=1)).isoformat()})
        assert (ranged["messages"], ranged["read"]) == (24, 24)
