"""Erasing a recipient: their personal data goes, every number stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from starlette.testclient import TestClient

from tests.conftest import drain_worker, snapshot
from tracker.identity import phone_hash
from tracker.keys import Keys
from tracker.settings import Settings

PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")
WHO = "cust-erase-me"
PHONE = "+4915112345678"


def scenario(client: TestClient, auth: dict[str, str]) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    sent = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    for n, (who, phone) in enumerate(((WHO, PHONE), ("cust-stays", "+4915100000001"))):
        link = client.post("/api/v1/links", headers=auth, json={
            "url": "https://s.example/", "campaign": "bf", "recipient": who, "phone": phone,
            "metadata": {"name": f"private-{n}"}}).json()
        client.post("/api/v1/messages", headers=auth, json=[{
            "message_id": f"wamid.{n}", "campaign": "bf", "recipient": who,
            "sent_at": sent, "phone": phone}])
        loc = client.get(f"/{link['code']}", headers={"user-agent": PHONE_UA}).headers["location"]
        cid = parse_qs(urlsplit(loc).query)["trk_id"][0]
        client.post("/api/v1/events", headers=auth, json=[
            {"id": f"o-{n}", "type": "order", "time": later, "order_id": f"{1000 + n}",
             "amount": "20.00", "currency": "EUR", "phone": phone},
            {"id": f"r-{n}", "type": "reply", "time": datetime.now(UTC).isoformat(),
             "phone": phone},
            {"id": f"s-{n}", "type": "status", "time": sent, "message_id": f"wamid.{n}",
             "status": "read"}])
        assert cid


def report(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    rep: dict[str, Any] = client.get("/api/v1/campaigns/bf/report", headers=auth).json()
    return rep


def test_erase_removes_the_person_and_keeps_every_number(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    scenario(client, auth)
    drain_worker(settings)
    before = report(client, auth)
    assert (before["recipients"], before["unique_clickers"], before["orders"],
            before["converters"], before["replies"], before["read"]) == (2, 2, 2, 2, 2, 2)
    secret = str(r.hget(Keys(prefix).workspace("acme"), "hs"))
    ident = phone_hash(secret, PHONE)
    assert ident is not None

    res = client.delete(f"/api/v1/recipients/{WHO}", headers=auth)
    assert res.status_code == 200
    done = res.json()
    assert done["identities"] == 1 and done["click_rows"] == 1 and done["links"] == 1
    assert done["stream_entries"] >= 3  # the click, the message and the events naming them

    dump = json.dumps(snapshot(r, prefix))
    for trace in (WHO, ident, PHONE, PHONE[1:], "private-0"):
        where = [k for k, v in snapshot(r, prefix).items() if trace in k + json.dumps(v)]
        assert trace not in dump, (trace, where)
    assert "cust-stays" in dump and "private-1" in dump  # the others are untouched
    assert report(client, auth) == before  # every number stays
    # and the worker, running again over whatever is left, changes nothing
    drain_worker(settings)
    assert report(client, auth) == before
    # erasing again, or someone unknown, is harmless
    assert client.delete(f"/api/v1/recipients/{WHO}", headers=auth).json()["click_rows"] == 0


def test_erase_from_the_command_line(client: TestClient, auth: dict[str, str],
                                     settings: Settings, redis_url: str, prefix: str) -> None:
    scenario(client, auth)
    drain_worker(settings)
    out = subprocess.run([sys.executable, "-m", "tracker", "recipient", "erase", "acme", WHO],
                         env={**os.environ, "REDIS_URL": redis_url,
                              "TRACKER_KEY_PREFIX": prefix},
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["recipient_pseudonym"].startswith("erased:")


def test_erase_drops_an_entry_of_many_clicks_that_names_the_person(
    client: TestClient, auth: dict[str, str], settings: Settings, r: redis.Redis, prefix: str
) -> None:
    """The redirect writes a tick's clicks as one entry (models.click_field):
    one naming the person goes, whichever of its clicks names them (the
    others' clicks are folded: their rows and numbers stay)."""
    import time

    from tracker.models import CLICK, Click, click_field

    scenario(client, auth)
    stream = Keys(prefix).click_stream(0)
    now = int(time.time() * 1000)
    for who in (["cust-stays", WHO], ["cust-stays", "cust-stays"]):
        r.xadd(stream, {click_field(i): Click("abc", now, f"x{i}{who[1]}", "GET", PHONE_UA, "",
                                              "", "", "acme", "bf", w).entry()[CLICK]
                        for i, w in enumerate(who)})
    drain_worker(settings)
    before = report(client, auth)
    assert client.delete(f"/api/v1/recipients/{WHO}", headers=auth).status_code == 200
    left = r.xrange(stream)
    assert not any(WHO in json.dumps(fields) for _, fields in left)
    assert any(len(fields) == 2 for _, fields in left)  # the entry naming only others
    assert report(client, auth) == before
