"""A seeded WhatsApp campaign with the seed material's typical rates, driven through
the real endpoints (links, redirect, signed WhatsApp and Shopify webhooks, pixel),
and its ground truth computed here, independently of tracker's own code."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import redis

from tracker.keys import CLICK_GROUP, Keys
from tracker.webhooks.signatures import meta_signature, shopify_signature

APP_SECRET = "sim-meta-app-secret"
SHOP_SECRET = "sim-shopify-secret"
CAMPAIGN = "sim"
HOUR = 3600
PHONE_UA = ("Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/"
            "537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 "
            "WA4A/2.24.1.6")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]")
PREVIEW_UAS = ["WhatsApp/2.23.20.0 A", "WhatsApp/2.19.31 i", "facebookexternalhit/1.1"]
BOT_UA = "python-requests/2.31.0"


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


@dataclass
class Truth:
    sent: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    clicks: int = 0
    clickers: set[str] = field(default_factory=set)
    non_human: int = 0
    orders: int = 0
    by_method: dict[str, int] = field(default_factory=lambda: {"click_id": 0, "last_click": 0})
    converters: set[str] = field(default_factory=set)
    gross: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    repliers: set[str] = field(default_factory=set)
    opt_outs: set[str] = field(default_factory=set)
    orders_24h: int = 0


class Simulation:
    def __init__(self, seed: int, n: int) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.recipients = [f"cust-{i:05d}" for i in range(n)]
        self.phone = {r: f"+4915{i:09d}" for i, r in enumerate(self.recipients)}
        self.wamid = {r: f"wamid.SIM{seed:04d}{i:08d}" for i, r in enumerate(self.recipients)}
        self.truth = Truth()
        self.start = time.time()

    # -- driving ---------------------------------------------------------------------
    def run(self, client: Any, auth: dict[str, str], ws: str = "acme") -> Truth:
        rng, t = self.rng, self.truth
        client.patch("/api/v1/workspace", headers=auth, json={
            "whatsapp_app_secret": APP_SECRET, "shopify_secret": SHOP_SECRET,
            "currency": "EUR"}).raise_for_status()
        client.put(f"/api/v1/campaigns/{CAMPAIGN}", headers=auth, json={
            "name": "Simulated", "spend": "500.00", "currency": "EUR"}).raise_for_status()
        res = client.post("/api/v1/links/batch", headers=auth, json={"links": [
            {"url": "https://shop.example/sale", "campaign": CAMPAIGN, "recipient": r,
             "phone": self.phone[r]} for r in self.recipients]})
        res.raise_for_status()
        code = {x["recipient"]: x["code"] for x in res.json()["links"]}
        sent_at = self.start - 600
        client.post("/api/v1/messages", headers=auth, json={"messages": [
            {"message_id": self.wamid[r], "campaign": CAMPAIGN, "recipient": r,
             "sent_at": iso(sent_at), "phone": self.phone[r]} for r in self.recipients]}
        ).raise_for_status()

        # statuses: ~97 % delivered, ~85 % of those read, some read with no
        # delivered webhook, duplicates, everything shuffled across batches
        statuses: list[dict[str, Any]] = []
        for r in self.recipients:
            wid, phone = self.wamid[r], self.phone[r][1:]
            st = [("sent", 1)]
            if rng.random() < 0.97:
                t.delivered.add(r)
                read = rng.random() < 0.85
                if not read or rng.random() > 0.05:
                    st.append(("delivered", 2))
                if read:
                    st.append(("read", 3))
                    t.read.add(r)
            else:
                st.append(("failed", 2))
                t.failed.add(r)
            t.sent.add(r)
            for name, k in st:
                s = {"id": wid, "status": name, "timestamp": str(int(sent_at) + k * 60),
                     "recipient_id": phone,
                     "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular",
                                 "category": "marketing"}}
                if name == "failed":
                    s["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
                statuses.append(s)
        statuses += rng.sample(statuses, len(statuses) // 10)  # Meta's retries
        rng.shuffle(statuses)
        for i in range(0, len(statuses), 200):
            self._whatsapp(client, ws, {"statuses": statuses[i:i + 200]})

        # clicks: previews on most delivered links, a quarter of people tap
        click_ids: dict[str, list[str]] = {}
        for r in self.recipients:
            if r not in t.delivered:
                continue
            if rng.random() < 0.8:
                for ua in rng.sample(PREVIEW_UAS, 2):
                    assert client.get(f"/{code[r]}", headers={"user-agent": ua}).status_code \
                        == 302
                    t.non_human += 1
            if rng.random() < 0.02:
                client.get(f"/{code[r]}", headers={"user-agent": BOT_UA})
                t.non_human += 1
            if rng.random() < 0.25:
                for _ in range(rng.choice([1, 1, 1, 2])):
                    ua = rng.choice([PHONE_UA, IPHONE_UA])
                    loc = client.get(f"/{code[r]}", headers={"user-agent": ua}).headers["location"]
                    click_ids.setdefault(r, []).append(parse_qs(urlsplit(loc).query)["trk_id"][0])
                    t.clicks += 1
                t.clickers.add(r)

        # replies and opt-outs, a few minutes after sending
        inbound: list[dict[str, Any]] = []
        for i, r in enumerate(sorted(t.delivered)):
            roll = rng.random()
            if roll < 0.06:
                text = "STOP" if roll < 0.006 else "Do you have it in blue?"
                inbound.append({"from": self.phone[r][1:], "id": f"wamid.IN{i:08d}",
                                "timestamp": str(int(self.start) + 120), "type": "text",
                                "text": {"body": text}})
                t.repliers.add(r)
                if text == "STOP":
                    t.opt_outs.add(r)
        for i in range(0, len(inbound), 100):
            self._whatsapp(client, ws, {"messages": inbound[i:i + 100], "contacts": []})

        # orders: ~40 % of clickers buy, a few non-clickers too (never attributed)
        n_order = 0
        for r in self.recipients:
            buys_after_click = r in click_ids and rng.random() < 0.4
            if not buys_after_click and (r in click_ids or rng.random() > 0.02):
                continue
            n_order += 1
            oid = 7_000_000 + n_order
            hours = rng.randint(0, 130)
            order_ts = self.start + HOUR + hours * HOUR + 1800
            total = Decimal(rng.randint(1000, 20000)) / 100
            mode = rng.random() if buys_after_click else 0.5
            test = rng.random() < 0.04
            cancelled = rng.random() < 0.05
            cid = click_ids[r][0] if buys_after_click else ""
            body: dict[str, Any] = {
                "id": oid, "created_at": iso(order_ts), "processed_at": iso(order_ts),
                "updated_at": iso(order_ts), "currency": "EUR", "total_price": str(total),
                "total_price_set": {"shop_money": {"amount": str(total), "currency_code": "EUR"},
                                    "presentment_money": {"amount": str(total),
                                                          "currency_code": "EUR"}},
                "test": test, "financial_status": "paid", "source_name": "web",
                "landing_site": "/", "note_attributes": [], "discount_codes": [],
                "email": None, "phone": None, "customer": {"phone": self.phone[r]},
            }
            method = ""
            pixel_only = False
            if buys_after_click and mode < 0.5:
                body["landing_site"] = f"/products/x?utm_source=whatsapp&trk_id={cid}"
                method = "click_id"
            elif buys_after_click and mode < 0.85:
                method = "last_click"  # matched by phone: the last click before the order
            elif buys_after_click:
                pixel_only, method = True, "click_id"
            if pixel_only:
                client.get("/px.gif?" + urlencode({"w": ws, "e": "purchase", "oid": str(oid),
                                                   "v": str(total), "cur": "EUR", "cid": cid}))
                test = cancelled = False
            else:
                wid = f"wh-{oid}"
                self._shopify(client, ws, "orders/create", body, wid)
                if rng.random() < 0.1:
                    self._shopify(client, ws, "orders/create", body, wid)  # a retry
                if rng.random() < 0.05:
                    self._shopify(client, ws, "orders/create", body, wid + "-again")
                if buys_after_click and rng.random() < 0.1:
                    # the pixel saw it too, with another amount: the webhook's amount
                    # wins, and the pixel's click id makes it a click-id attribution
                    client.get("/px.gif?" + urlencode({"w": ws, "e": "purchase",
                                                       "oid": str(oid), "v": "1.00",
                                                       "cur": "EUR", "cid": cid}))
                    method = "click_id"
                if cancelled:
                    self._shopify(client, ws, "orders/cancelled",
                                  {"id": oid, "cancelled_at": iso(order_ts + HOUR)},
                                  f"wh-c-{oid}")
            refund = Decimal(0)
            if not pixel_only and rng.random() < 0.15:
                refund = min(total, Decimal(rng.randint(500, 20000)) / 100)
                self._shopify(client, ws, "refunds/create", {
                    "id": 900_000 + n_order, "order_id": oid, "created_at": iso(order_ts + HOUR),
                    "transactions": [{"amount": str(refund), "kind": "refund",
                                      "status": "success", "currency": "EUR"}]},
                    f"wh-r-{oid}")
            # ground truth: attributed if a human click precedes it within 120 h
            # the pixel's purchase time is when the page was seen: right now
            ttc_hours = 0 if pixel_only else 1 + hours
            if method and not test and not cancelled and ttc_hours < 120:
                t.orders += 1
                t.by_method[method] += 1
                t.converters.add(r)
                t.gross += total
                t.refunded += refund
                if ttc_hours < 24:
                    t.orders_24h += 1
        return t

    def _whatsapp(self, client: Any, ws: str, value: dict[str, Any]) -> None:
        doc = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
               "changes": [{"field": "messages", "value": {
                   "messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922"}, **value}}]}]}
        body = json.dumps(doc).encode()
        res = client.post(f"/webhooks/whatsapp/{ws}", content=body, headers={
            "content-type": "application/json",
            "x-hub-signature-256": meta_signature(APP_SECRET, body)})
        assert res.status_code == 200, res.text

    def _shopify(self, client: Any, ws: str, topic: str, payload: dict[str, Any],
                 webhook_id: str) -> None:
        body = json.dumps(payload).encode()
        res = client.post(f"/webhooks/shopify/{ws}", content=body, headers={
            "content-type": "application/json", "x-shopify-topic": topic,
            "x-shopify-webhook-id": webhook_id,
            "x-shopify-hmac-sha256": shopify_signature(SHOP_SECRET, body)})
        assert res.status_code == 200, res.text

    # -- checking ---------------------------------------------------------------------
    def expected(self) -> dict[str, Any]:
        t = self.truth
        return {
            "recipients": self.n, "messages": self.n, "sent": len(t.sent),
            "delivered": len(t.delivered), "read": len(t.read), "failed": len(t.failed),
            "clicks": t.clicks, "unique_clickers": len(t.clickers),
            "non_human_clicks": t.non_human, "replies": len(t.repliers),
            "opt_outs": len(t.opt_outs), "orders": t.orders, "orders_by": t.by_method,
            "converters": len(t.converters),
            "revenue": {"gross": f"{t.gross:.2f}", "refunded": f"{t.refunded:.2f}",
                        "net": f"{t.gross - t.refunded:.2f}"} if t.orders else {},
        }

    @staticmethod
    def actual(report: dict[str, Any]) -> dict[str, Any]:
        out = {k: report[k] for k in (
            "recipients", "messages", "sent", "delivered", "read", "failed", "clicks",
            "unique_clickers", "non_human_clicks", "replies", "opt_outs", "orders", "orders_by",
            "converters")}
        eur = report["revenue"].get("EUR")
        out["revenue"] = {k: eur[k] for k in ("gross", "refunded", "net")} if eur else {}
        return out


def drained(r: redis.Redis, keys: Keys) -> bool:
    """Every entry of every stream delivered to the group and acknowledged."""
    for stream in keys.click_streams() + keys.event_streams():
        info = r.xinfo_stream(stream)
        [group] = [g for g in r.xinfo_groups(stream) if g["name"] == CLICK_GROUP]
        if group["pending"] or group["last-delivered-id"] != info["last-generated-id"]:
            return False
    return True


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)
