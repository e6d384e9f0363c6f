from __future__ import annotations

from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import snapshot

LINK = {"url": "https://s.example/p?ref=wa", "campaign": "bf24", "recipient": "r1"}


def test_create_a_link(client: TestClient, auth: dict[str, str]) -> None:
    res = client.post("/api/v1/links", json={**LINK, "utm": {"content": "hero"},
                                             "metadata": {"step": 2}}, headers=auth)
    assert res.status_code == 201
    body = res.json()
    assert len(body["code"]) == 8
    assert body["short_url"] == f"http://t.example/{body['code']}"
    assert body["url"] == ("https://s.example/p?ref=wa&utm_source=whatsapp&utm_medium=message"
                           "&utm_campaign=bf24&utm_content=hero")
    assert (body["campaign"], body["recipient"]) == ("bf24", "r1")
    assert body["created_at"].endswith("Z") and body["state"] == "active"
    assert body["metadata"] == {"step": 2}
    assert client.get(f"/api/v1/links/{body['code']}", headers=auth).json() == body


def test_the_same_link_twice_is_one_link(client: TestClient, auth: dict[str, str]) -> None:
    first = client.post("/api/v1/links", json=LINK, headers=auth).json()
    again = client.post("/api/v1/links", json=LINK, headers=auth)
    assert again.status_code == 201 and again.json()["code"] == first["code"]
    other_recipient = client.post("/api/v1/links", json={**LINK, "recipient": "r2"}, headers=auth)
    assert other_recipient.json()["code"] != first["code"]
    report = client.get("/api/v1/campaigns/bf24/report", headers=auth).json()
    assert (report["links"], report["recipients"]) == (2, 2)


def test_batch_of_objects_keeps_request_order(client: TestClient, auth: dict[str, str]) -> None:
    items = [{**LINK, "recipient": f"r{i}"} for i in range(50)]
    items.append(items[3])  # a repeat inside the batch is the same link
    res = client.post("/api/v1/links/batch", json={"links": items}, headers=auth)
    assert res.status_code == 201
    links = res.json()["links"]
    assert [x["recipient"] for x in links] == [f"r{i}" for i in range(50)] + ["r3"]
    assert links[50]["code"] == links[3]["code"]
    assert len({x["code"] for x in links}) == 50
    # a second identical batch returns the same links
    again = client.post("/api/v1/links/batch", json={"links": items}, headers=auth).json()["links"]
    assert [x["code"] for x in again] == [x["code"] for x in links]


def test_batch_for_recipients(client: TestClient, auth: dict[str, str]) -> None:
    res = client.post("/api/v1/links/batch", json={
        "url": "https://s.example/sale", "campaign": "bf24",
        "recipients": [f"+4917{i:07d}" for i in range(1000)],
    }, headers=auth)
    assert res.status_code == 201
    links = res.json()["links"]
    assert len(links) == 1000 and len({x["code"] for x in links}) == 1000
    assert links[999]["recipient"] == "+49170000999"
    report = client.get("/api/v1/campaigns/bf24/report", headers=auth).json()
    assert (report["links"], report["recipients"]) == (1000, 1000)


def test_a_bare_list_is_a_batch(client: TestClient, auth: dict[str, str]) -> None:
    res = client.post("/api/v1/links/batch", json=[LINK, {**LINK, "recipient": "r2"}],
                      headers=auth)
    assert res.status_code == 201 and len(res.json()["links"]) == 2


BAD_BATCHES: list[tuple[Any, int, list[str]]] = [
    ({"links": [LINK, {**LINK, "url": "javascript:alert(1)"}, LINK,
                {**LINK, "campaign": 5, "utm": {"source": 1}}]},
     422, ["links[1].url", "links[3].campaign", "links[3].utm.source"]),
    ({"links": [LINK] * 10_001}, 422, ["links"]),
    ({"url": "https://s.example/", "campaign": "c", "recipients": ["a", None, "b"]},
     422, ["recipients[1]"]),
    ({"links": []}, 422, ["links"]),
    ({"unknown": 1}, 422, ["body"]),
    (42, 422, ["body"]),
]


@pytest.mark.parametrize(("body", "status", "fields"), BAD_BATCHES)
def test_a_bad_batch_writes_nothing(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    body: Any, status: int, fields: list[str],
) -> None:
    before = snapshot(r, prefix)
    res = client.post("/api/v1/links/batch", json=body, headers=auth)
    assert res.status_code == status
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["status"] == status and problem["title"]
    assert [e["field"] for e in problem["errors"]] == fields
    for err in problem["errors"]:
        if err["field"].startswith(("links[", "recipients[")):
            assert err["index"] == int(err["field"].split("[")[1].split("]")[0])
    assert snapshot(r, prefix) == before


RAW_BAD: list[tuple[bytes, dict[str, str], int]] = [
    (b'{"url": "https://s.example/", "campaign": ', {}, 400),  # truncated JSON
    (b"not json at all", {}, 400),
    (b"", {}, 400),
    (b"\xff\xfe\x00garbage", {}, 400),
    (b"[" * 100_000 + b"]" * 100_000, {}, 400),  # nesting bomb
    (b'{"url": "https://s.example/"}', {"content-type": "text/csv"}, 415),
    (b"x" * (8 * 1024 * 1024 + 1), {}, 413),
]


@pytest.mark.parametrize(("raw", "headers", "status"), RAW_BAD)
@pytest.mark.parametrize("path", ["/api/v1/links", "/api/v1/links/batch"])
def test_malformed_bodies(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    raw: bytes, headers: dict[str, str], status: int, path: str,
) -> None:
    before = snapshot(r, prefix)
    res = client.post(path, content=raw,
                      headers={"content-type": "application/json", **auth, **headers})
    assert res.status_code == status
    assert res.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in res.text
    assert snapshot(r, prefix) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**LINK, "url": "ftp://s.example/"}, "url"),
        ({**LINK, "url": "https://user:pw@s.example/"}, "url"),
        ({**LINK, "url": None}, "url"),
        ({**LINK, "url": "https://s.example/" + "a" * 2040}, "url"),
        ({**LINK, "campaign": ""}, "campaign"),
        ({**LINK, "recipient": 12}, "recipient"),
        ({**LINK, "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({**LINK, "metadata": "x"}, "metadata"),
        ({**LINK, "code": "mine1234"}, "code"),
        ([LINK], "body"),
    ],
)
def test_a_bad_link_is_a_422_naming_the_field(
    client: TestClient, auth: dict[str, str], r: redis.Redis, prefix: str,
    body: Any, field: str,
) -> None:
    before = snapshot(r, prefix)
    res = client.post("/api/v1/links", json=body, headers=auth)
    assert res.status_code == 422
    assert field in [e["field"] for e in res.json()["errors"]]
    assert snapshot(r, prefix) == before


def test_patch_and_delete(client: TestClient, auth: dict[str, str]) -> None:
    code = client.post("/api/v1/links", json=LINK, headers=auth).json()["code"]
    res = client.patch(f"/api/v1/links/{code}", json={"disabled": True}, headers=auth)
    assert res.status_code == 200 and res.json()["disabled"] is True
    assert res.json()["state"] == "disabled"
    res = client.patch(f"/api/v1/links/{code}",
                       json={"disabled": False, "expires_at": "2001-01-01T00:00:00Z"},
                       headers=auth)
    assert res.json()["state"] == "expired"
    assert res.json()["expires_at"] == "2001-01-01T00:00:00.000Z"
    res = client.patch(f"/api/v1/links/{code}", json={"expires_at": None}, headers=auth)
    assert res.json()["state"] == "active" and res.json()["expires_at"] is None
    bad = client.patch(f"/api/v1/links/{code}", json={"url": "https://x.example/"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"
    assert client.delete(f"/api/v1/links/{code}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/links/{code}", headers=auth).status_code == 404
    assert client.delete(f"/api/v1/links/{code}", headers=auth).status_code == 404
    # after a delete, the same triple makes a new link
    assert client.post("/api/v1/links", json=LINK, headers=auth).json()["code"] != code


def test_unknown_things_are_problems(client: TestClient, auth: dict[str, str]) -> None:
    res = client.get("/api/v1/links/abcdefgh", headers=auth)
    assert res.status_code == 404 and res.headers["content-type"] == "application/problem+json"
    res = client.get("/api/v1/nothing-here", headers=auth)
    assert res.status_code == 404 and res.headers["content-type"] == "application/problem+json"
    res = client.put("/api/v1/links", json=LINK, headers=auth)
    assert res.status_code == 405 and res.headers["content-type"] == "application/problem+json"
    res = client.get("/api/v1/campaigns/nope/report", headers=auth)
    assert res.status_code == 404 and res.json()["detail"]


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").json() == {"ready": True}


def test_a_workspace_can_allow_only_its_own_domains(client: TestClient, auth: dict[str, str],
                                                    r: redis.Redis, prefix: str) -> None:
    res = client.patch("/api/v1/workspace", headers=auth,
                       json={"allowed_domains": ["shop.example", "Other.Example"]})
    assert res.json()["allowed_domains"] == ["other.example", "shop.example"]
    ok = [client.post("/api/v1/links", headers=auth, json={**LINK, "url": url})
          for url in ("https://shop.example/p", "https://www.shop.example/p",
                      "https://other.example/")]
    assert [x.status_code for x in ok] == [201, 201, 201]
    before = snapshot(r, prefix)
    for url in ("https://evil.example/", "https://shop.example.evil.test/",
                "https://notshop.example/"):
        bad = client.post("/api/v1/links", headers=auth, json={**LINK, "url": url})
        assert bad.status_code == 422, url
        assert "allowed domains" in bad.json()["errors"][0]["reason"]
    assert snapshot(r, prefix) == before
    bad = client.patch("/api/v1/workspace", headers=auth, json={"allowed_domains": ["no pe"]})
    assert bad.status_code == 422
    client.patch("/api/v1/workspace", headers=auth, json={"allowed_domains": []})
    assert client.post("/api/v1/links", headers=auth,
                       json={**LINK, "url": "https://evil.example/"}).status_code == 201


def test_links_sharing_a_destination_store_it_once(client: TestClient, auth: dict[str, str],
                                                   r: Any, prefix: str) -> None:
    from tracker.keys import Keys
    from tracker.links import template_id

    links = client.post("/api/v1/links/batch", headers=auth, json={
        "url": "https://shop.example/a-rather-long/path/to/the/sale?ref=whatsapp",
        "campaign": "bf", "recipients": [f"r{i}" for i in range(20)]}).json()["links"]
    url = links[0]["url"]
    keys = Keys(prefix)
    tid = template_id("acme", "bf", url)
    assert r.hgetall(keys.templates(0)) == {tid: f"acme\x1fbf\x1f{url}"}
    code = links[0]["code"]
    record = r.hget(keys.link_bucket(code), code)
    assert record.split("\x1f")[:2] == [tid, "r0"] and len(record) < 40
    # each bucket is small enough for Redis's compact encoding (the URL in
    # every record would not be)
    for link in links:
        assert r.object("encoding", keys.link_bucket(link["code"])) in ("ziplist", "listpack")
        assert not r.exists(keys.link(link["code"]))
    assert r.hget(keys.link_counts(0), "acme\x1fbf") == "20"
    assert client.get(f"/{links[3]['code']}").headers["location"].startswith(url)
    assert client.get(f"/api/v1/links/{links[3]['code']}", headers=auth).json()["url"] == url


def test_links_stored_the_old_ways_still_work(client: TestClient, auth: dict[str, str],
                                              r: Any, prefix: str) -> None:
    """Links from before buckets (an own hash with the URL's id) and their
    index: they redirect, read, change, count and are found again by a
    repeated create."""
    from tracker.keys import Keys
    from tracker.store import index_field

    keys = Keys(prefix)
    url = "https://s.example/old?utm_source=whatsapp&utm_medium=message&utm_campaign=old"
    r.hset(keys.destinations(0), "DestIdDestId", url)
    r.hset(keys.link("PreBucket"), mapping={"w": "acme", "c": "old", "r": "p1",
                                           "d": "DestIdDestId", "t": "1790000000000"})
    r.hset(keys.link_index("acme", "old"), index_field("p1", url), "PreBucket")
    assert client.get("/PreBucket").headers["location"].startswith(url + "&trk_id=")
    assert client.get("/api/v1/links/PreBucket", headers=auth).json()["url"] == url
    again = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/old", "campaign": "old", "recipient": "p1"}).json()
    assert again["code"] == "PreBucket"
    other = client.post("/api/v1/links", headers=auth, json={
        "url": "https://s.example/old", "campaign": "old", "recipient": "p2"}).json()
    assert other["code"] != "PreBucket"
    assert client.get("/api/v1/campaigns/old/report", headers=auth).json()["links"] == 2
    assert client.patch("/api/v1/links/PreBucket", headers=auth,
                        json={"disabled": True}).json()["disabled"] is True
    assert client.get("/PreBucket").status_code in (302, 410)  # cached for up to the TTL
    assert client.delete("/api/v1/links/PreBucket", headers=auth).status_code == 204
    assert not r.exists(keys.link("PreBucket"))
    assert client.get("/api/v1/campaigns/old/report", headers=auth).json()["links"] == 1


def test_a_link_written_with_its_url_inline_still_works(client: TestClient,
                                                        auth: dict[str, str], r: Any,
                                                        prefix: str) -> None:
    """Links stored before destinations were shared keep the URL in the link."""
    from tracker.keys import Keys

    client.post("/api/v1/links", headers=auth, json={"url": "https://s.example/",
                                                     "campaign": "old"})
    r.hset(Keys(prefix).link("LegacyAb"), mapping={
        "w": "acme", "c": "old", "u": "https://s.example/legacy", "t": "1790000000000"})
    assert client.get("/LegacyAb").headers["location"].startswith(
        "https://s.example/legacy?trk_id=")
    assert client.get("/api/v1/links/LegacyAb", headers=auth).json()["url"] == \
        "https://s.example/legacy"


def test_a_recipients_links_and_events_share_a_partition(redis_url: str, prefix: str,
                                                         r: Any) -> None:
    from tests.conftest import create_workspace, make_settings
    from tracker.app import create_app
    from tracker.keys import Keys, partition_of

    s = make_settings(redis_url, prefix, partitions=8)
    auth = {"Authorization": f"Bearer {create_workspace(s, 'acme')}"}
    keys = Keys(prefix, 8)
    people = [f"person-{i}" for i in range(12)]
    with TestClient(create_app(s), follow_redirects=False) as client:
        for campaign in ("a", "b"):
            links = client.post("/api/v1/links/batch", headers=auth, json={
                "url": f"https://s.example/{campaign}", "campaign": campaign,
                "recipients": people}).json()["links"]
            for link in links:
                assert keys.partition(link["code"]) == partition_of(link["recipient"], 8)
        client.post("/api/v1/messages", headers=auth, json={"messages": [
            {"message_id": f"w{p}", "campaign": "a", "recipient": p} for p in people]})
    import json

    for partition in range(8):
        for _, f in r.xrange(keys.event_stream(partition)):
            data = json.loads(f["d"])
            if f["type"] == "message":
                assert partition == partition_of(data["recipient"], 8), data
    assert len({partition_of(p, 8) for p in people}) > 1  # and they spread
