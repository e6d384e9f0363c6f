"""Erasing a recipient's personal data (GDPR), with every aggregate unchanged.

The recipient's id is replaced everywhere by a pseudonym (a keyed hash that
cannot be turned back into the id), so distinct counts (recipients, unique
clickers, converters, repliers) and the attribution state stay exactly as
they were; their phone and email hashes are deleted, so no future order can
be matched to them; their raw click rows lose the IP; their links lose their
metadata and point to the pseudonym; the raw stream entries that name them are
deleted once the workers have acknowledged them (entries still pending are
deleted by the next erasure or trimmed with the stream).

An administrative operation: it scans the workspace's data (O(data)).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .keys import CLICK_GROUP, Keys
from .links import MAX_CODE_LENGTH, MIN_CODE_LENGTH, code_key, template_id
from .models import CLICK, US
from .store import Redis, candidate_codes


def pseudonym(ws: str, recipient: str, secret: str) -> str:
    digest = hashlib.sha256(f"{secret}:{ws}:{recipient}".encode()).hexdigest()[:16]
    return f"erased:{digest}"


@dataclass
class Erased:
    recipient_pseudonym: str
    identities: int = 0
    click_rows: int = 0
    links: int = 0
    stream_entries: int = 0
    campaigns: list[str] = field(default_factory=list)


async def _hscan(redis: Redis, key: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    cursor = 0
    while True:
        cursor, chunk = await redis.hscan(key, cursor=cursor, count=1000)
        assert isinstance(chunk, dict)
        out += [(str(k), str(v)) for k, v in chunk.items()]
        if cursor == 0:
            return out


async def _rename_member(redis: Redis, key: str, old: str, new: str) -> None:
    if await redis.srem(key, old):
        await redis.sadd(key, new)


async def _rename_field(redis: Redis, key: str, old: str, new: str) -> bool:
    value = await redis.hget(key, old)
    if value is not None:
        await redis.hset(key, new, value)
        await redis.hdel(key, old)
    return value is not None


async def erase_recipient(redis: Redis, keys: Keys, ws: str, recipient: str,
                          secret: str) -> Erased:
    p = pseudonym(ws, recipient, secret)
    done = Erased(p)
    # -- the workspace's join state --------------------------------------------------------
    ids = keys.identities(ws)
    idents: set[str] = set()
    for ident, who in await _hscan(redis, ids):
        if who == recipient:
            await redis.hdel(ids, ident)
            idents.add(ident)
            done.identities += 1
    for key in (keys.message_index(ws), keys.click_index(ws)):
        for name, value in await _hscan(redis, key):
            parts = value.split(US)
            if len(parts) > 1 and parts[1] == recipient:
                parts[1] = p
                await redis.hset(key, name, US.join(parts))
    # Orders and replies of theirs keep their attribution, not their hashes.
    their_orders = {str(o) for o in await redis.smembers(keys.recipient_orders(ws, recipient))}
    facts = {str(f) for f in await redis.smembers(keys.recipient_facts(ws, recipient))}
    for ident in idents:
        their_orders |= {str(o) for o in await redis.smembers(keys.identity_orders(ws, ident))}
        facts |= {str(f) for f in await redis.smembers(keys.identity_facts(ws, ident))}
        await redis.delete(keys.identity_orders(ws, ident), keys.identity_facts(ws, ident))
    for order_id in their_orders:
        key = keys.order(ws, order_id)
        rec = await redis.hgetall(key)
        if not rec:
            continue
        state = json.loads(rec["state"])
        state["identities"] = [i for i in state.get("identities", []) if i not in idents]
        if state.get("recipient") == recipient:
            state["recipient"] = p
        attr = json.loads(rec.get("attr") or "null")
        if attr and attr.get("recipient") == recipient:
            attr["recipient"] = p
        contrib = {c: _renamed(text, recipient, p)
                   for c, text in json.loads(rec.get("contrib") or "{}").items()}
        await redis.hset(key, mapping={
            "contrib": json.dumps(contrib, sort_keys=True),
            "state": json.dumps(state, sort_keys=True, separators=(",", ":")),
            "attr": json.dumps(attr),
            "pair": _renamed_pair(str(rec.get("pair", "")), recipient, p),
            "pairs": json.dumps(sorted(_renamed_pair(x, recipient, p)
                                       for x in json.loads(rec.get("pairs") or "[]"))),
        })
    for fact in facts:
        key = keys.fact(ws, fact)
        rec = await redis.hgetall(key)
        if not rec:
            continue
        info = json.loads(rec["info"])
        if info.get("identity") in idents:
            info["identity"] = ""
        if info.get("recipient") == recipient:
            info["recipient"] = p
        contrib = {c: _renamed(text, recipient, p)
                   for c, text in json.loads(rec.get("contrib") or "{}").items()}
        await redis.hset(key, mapping={"info": json.dumps(info, sort_keys=True),
                                       "contrib": json.dumps(contrib, sort_keys=True)})
    for per in (keys.recipient_clicks, keys.recipient_messages, keys.recipient_orders,
                keys.recipient_facts):
        if await redis.exists(per(ws, recipient)):
            await redis.rename(per(ws, recipient), per(ws, p))
    for pair, value in await _hscan(redis, keys.converters(ws)):
        campaign, _, who = pair.partition(US)
        if who == recipient:
            await redis.hset(keys.converters(ws), f"{campaign}{US}{p}", value)
            await redis.hdel(keys.converters(ws), pair)
    # -- each campaign ------------------------------------------------------------------
    for campaign in sorted(str(c) for c in await redis.smembers(
            keys.workspace_campaigns(ws))):
        touched = False
        rows = keys.click_rows(ws, campaign)
        for click_id, text in await _hscan(redis, rows):
            row = json.loads(text)
            if row.get("recipient") == recipient:
                # Kept, without the person: the row is also the click's
                # "already applied" marker, so a redelivery still counts once.
                row.update(recipient=p, ip="")
                await redis.hset(rows, click_id, json.dumps(row, separators=(",", ":")))
                done.click_rows += 1
                touched = True
        moved = await _rename_bucket_links(redis, keys, ws, campaign, recipient, p, secret)
        done.links += moved
        touched = touched or moved > 0
        idx = keys.link_index(ws, campaign)
        for name, code in await _hscan(redis, idx):
            who, _, destination = name.partition(US)
            if who == recipient:
                # The link keeps working (and counting) under the pseudonym.
                await redis.hset(keys.link(code), "r", p)
                await redis.hdel(keys.link(code), "m")
                await _rename_field(redis, idx, name, f"{p}{US}{destination}")
                done.links += 1
                touched = True
        for key in (keys.recipients(ws, campaign), keys.clickers(ws, campaign)):
            if await redis.sismember(key, recipient):
                await _rename_member(redis, key, recipient, p)
                touched = True
        if await _rename_field(redis, keys.clicker_state(ws, campaign), recipient, p):
            touched = True
        # (the clicker state's older layout: the next hash and set)
        await _rename_field(redis, keys.first_clicks(ws, campaign), recipient, p)
        lclk = keys.link_clickers(ws, campaign)
        cursor = 0
        while True:
            cursor, members = await redis.sscan(lclk, cursor=cursor, match=f"* {recipient}")
            for m in members:
                code, _, who = str(m).rpartition(" ")
                if who == recipient:
                    await _rename_member(redis, lclk, str(m), f"{code} {p}")
            if cursor == 0:
                break
        refs = keys.set_counts(ws, campaign)
        for name, _ in await _hscan(redis, refs):
            set_name, _, who = name.partition(US)
            if who == recipient:
                await _rename_field(redis, refs, name, f"{set_name}{US}{p}")
        contributions = keys.contributions(ws, campaign)
        await _rename_field(redis, contributions, f"cv:{recipient}", f"cv:{p}")
        for fact, text in await _hscan(redis, contributions):
            renamed = _renamed(text, recipient, p)
            if renamed != text:
                await redis.hset(contributions, fact, renamed)
        orders = keys.order_rows(ws, campaign)
        for fact, text in await _hscan(redis, orders):
            row = json.loads(text)
            if row.get("recipient") == recipient:
                row["recipient"] = p
                await redis.hset(orders, fact, json.dumps(row, sort_keys=True,
                                                           separators=(",", ":")))
        if touched:
            done.campaigns.append(campaign)
    # -- raw stream entries, once acknowledged ----------------------------------------------
    for stream in keys.click_streams() + keys.event_streams():
        done.stream_entries += await _drop_entries(redis, stream, recipient, idents)
    return done


async def _rename_bucket_links(redis: Redis, keys: Keys, ws: str, campaign: str,
                               recipient: str, p: str, secret: str) -> int:
    """Point the recipient's links in this campaign to the pseudonym. Their
    codes are derived from (campaign, recipient, URL): for each of the
    campaign's destinations in the recipient's partition, walk the candidates
    (at every code length a deployment may have used) to the first free one."""
    prefix = f"{ws}{US}{campaign}{US}"
    urls = [text[len(prefix):] for _, text in
            await _hscan(redis, keys.templates(keys.partition(recipient)))
            if text.startswith(prefix)]
    key = code_key(secret)
    n = 0
    for url in urls:
        identity = f"{template_id(ws, campaign, url)}{US}{recipient}"
        for length in range(MIN_CODE_LENGTH, MAX_CODE_LENGTH + 1):
            for code in candidate_codes(keys, key, ws, (campaign, recipient, url), length):
                bucket = keys.link_bucket(code)
                record = await redis.hget(bucket, code)
                if record is None:
                    break  # the end of this identity's candidates
                if record == identity or str(record).startswith(identity + US):
                    fields = str(record).split(US, 5)[:5]  # without the metadata
                    fields[1] = p
                    while len(fields) > 3 and not fields[-1]:
                        fields.pop()
                    await redis.hset(bucket, code, US.join(fields))
                    n += 1
                    break
    return n


async def _drop_entries(redis: Redis, stream: str, recipient: str, idents: set[str]) -> int:
    if not await redis.exists(stream):
        return 0
    pending: set[str] = set()
    for group in await redis.xinfo_groups(stream):
        if group["name"] != CLICK_GROUP or not group["pending"]:
            continue
        for p in await redis.xpending_range(stream, CLICK_GROUP, min="-", max="+",
                                            count=100_000):
            pending.add(str(p["message_id"]))
    drop: list[Any] = []
    last = "-"
    while True:
        chunk = await redis.xrange(stream, min=last, max="+", count=1000)
        if not chunk:
            break
        for entry_id, fields in chunk:
            if fields and _names(fields, recipient, idents) and str(entry_id) not in pending:
                drop.append(entry_id)
        last = "(" + str(chunk[-1][0])
        if len(chunk) < 1000:
            break
    if drop:
        await redis.xdel(stream, *drop)
    return len(drop)


def _renamed(contribution: str, recipient: str, p: str) -> str:
    """A contribution with the recipient renamed: its distinct-set memberships
    and its order row (the same shape attribution.Contribution.to_json writes)."""
    doc = json.loads(contribution)
    members = doc.get("s") or {}
    row = json.loads(doc["row"]) if doc.get("row") else None
    if recipient not in members.values() and not (row and row.get("recipient") == recipient):
        return contribution
    doc["s"] = {k: (p if v == recipient else v) for k, v in members.items()}
    if row and row.get("recipient") == recipient:
        row["recipient"] = p
        doc["row"] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _names(fields: dict[Any, Any], recipient: str, idents: set[str]) -> bool:
    """Does a raw entry name the person: by id, or by a phone/email hash of theirs?"""
    if fields.get("recipient") == recipient:
        return True
    if CLICK in fields:  # (each of the entry's clicks: models.click_field)
        return any(str(value).rsplit(US, 1)[-1] == recipient
                   for name, value in fields.items() if str(name).startswith(CLICK))
    data = fields.get("d")
    if not data or not str(data).startswith("{"):
        return False
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    if doc.get("recipient") == recipient:
        return True
    hashes = {doc.get("phone_hash"), doc.get("email_hash"), doc.get("user_hash"),
              *(doc.get("phone_hashes") or []), *(doc.get("email_hashes") or [])}
    return bool(idents & hashes)


def _renamed_pair(pair: str, recipient: str, pseudonym: str) -> str:
    """A "campaign US recipient" pair with the recipient replaced by its pseudonym."""
    campaign, _, who = pair.partition(US)
    return f"{campaign}{US}{pseudonym}" if who == recipient else pair
