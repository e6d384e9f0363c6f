"""Every Redis key, stream and group name, and nothing else.

Keys that a script touches together share a Redis Cluster hash tag (the part
in braces), so the same code runs on one node and on a cluster:

- ``{p<n>}``: a click-stream partition and the links whose codes hash to it.
  The redirect's cache-miss script reads the link and appends the click in
  one round trip, so link and stream must sit in one slot.
- ``{c:<workspace>:<campaign>}``: everything the worker folds for one
  campaign (aggregates, the applied-click marker, clicker sets) and the
  campaign's link index, so each fold is one atomic script.
- ``{w:<workspace>}``: the workspace record and its campaign list.
- ``{j:<workspace>}``: the workspace's join state (send log, identities,
  click index, recipients' click and message histories, orders), which
  attribution reads and writes in one transaction. One workspace's joins
  therefore live on one shard; workspaces spread over the cluster.

User-supplied parts (workspace and campaign ids) are escaped so a brace or a
colon in them can never move a key into another tag.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

# The consumer group of every stream, clicks and events alike.
CLICK_GROUP = "workers"


def _esc(part: str) -> str:
    # Only the characters that could break a hash tag or our own separators.
    return part.replace("%", "%25").replace("{", "%7B").replace("}", "%7D").replace(":", "%3A")


def partition_of(code: str, partitions: int) -> int:
    """The click-stream partition of a short code (stable for a fixed count)."""
    if partitions <= 1:
        return 0
    return zlib.crc32(code.encode()) % partitions


@dataclass(frozen=True)
class Keys:
    prefix: str = "trk"
    partitions: int = 1

    # -- workspaces and API keys ------------------------------------------------
    def workspaces(self) -> str:
        return f"{self.prefix}:workspaces"

    def workspace(self, ws: str) -> str:
        return f"{self.prefix}:{{w:{_esc(ws)}}}:ws"

    def workspace_campaigns(self, ws: str) -> str:
        return f"{self.prefix}:{{w:{_esc(ws)}}}:campaigns"

    def fire_and_forget(self) -> str:
        """The workspaces whose redirects do not wait for Redis (a set)."""
        return f"{self.prefix}:ff"

    def api_key(self, key_hash: str) -> str:
        """An API key's record (workspace, scope), found by the key's SHA-256."""
        return f"{self.prefix}:apikey:{key_hash}"

    def rate(self, key_id: str, minute: int) -> str:
        return f"{self.prefix}:rate:{key_id}:{minute}"

    def workspace_keys(self, ws: str) -> str:
        """key id -> key hash, for listing and revoking a workspace's keys."""
        return f"{self.prefix}:{{w:{_esc(ws)}}}:keys"

    # -- links and the click stream ---------------------------------------------
    def partition(self, code: str) -> int:
        return partition_of(code, self.partitions)

    def link(self, code: str) -> str:
        """A link stored as its own hash: how links were kept before buckets
        (still read, never written)."""
        return f"{self.prefix}:{{p{self.partition(code)}}}:l:{code}"

    def link_bucket(self, code: str) -> str:
        """code -> link record, for every code starting with the same three
        letters: 57^3 buckets a partition, so a million links make buckets of
        about five, each one small listpack (~60 bytes a link where a hash of
        its own was ~140)."""
        return f"{self.prefix}:{{p{self.partition(code)}}}:L:{code[:3]}"

    def templates(self, partition: int) -> str:
        """Template id -> "workspace US campaign US final URL": what the links of
        one campaign and destination share, stored once per partition."""
        return f"{self.prefix}:{{p{partition}}}:tpl"

    def templates_for(self, code: str) -> str:
        return self.templates(self.partition(code))

    def link_counts(self, partition: int) -> str:
        """"workspace US campaign" -> links created in the partition (a report
        adds the partitions up)."""
        return f"{self.prefix}:{{p{partition}}}:nl"

    def destinations(self, partition: int) -> str:
        """Destination id -> final URL, once per partition: links sharing a
        destination store its 12-character id, not the URL (which would also
        push each link's hash out of Redis's compact encoding)."""
        return f"{self.prefix}:{{p{partition}}}:dst"

    def destinations_for(self, code: str) -> str:
        return self.destinations(self.partition(code))

    def click_stream(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition}}}:clicks"

    def click_streams(self) -> list[str]:
        return [self.click_stream(p) for p in range(self.partitions)]

    def click_stream_for(self, code: str) -> str:
        return self.click_stream(self.partition(code))

    # -- one campaign -------------------------------------------------------------
    def _campaign(self, ws: str, campaign: str) -> str:
        return f"{self.prefix}:{{c:{_esc(ws)}:{_esc(campaign)}}}"

    def link_index(self, ws: str, campaign: str) -> str:
        """(recipient, destination) -> code: makes link creation idempotent."""
        return f"{self._campaign(ws, campaign)}:idx"

    def recipients(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:rcp"

    def aggregates(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:agg"

    def click_rows(self, ws: str, campaign: str) -> str:
        """click id -> enriched row; presence is the 'already applied' marker."""
        return f"{self._campaign(ws, campaign)}:clk"

    def clicker_state(self, ws: str, campaign: str) -> str:
        """recipient -> "<first hour>\\n<token>\\n...": the unix hour of their
        earliest human click, and each link code, "device=<d>", "os=<o>" and
        "browser=<b>" they are counted under as a unique clicker (see
        scripts/apply_click.lua)."""
        return f"{self._campaign(ws, campaign)}:cst"

    def clickers(self, ws: str, campaign: str) -> str:
        """Set of recipients who clicked: with link_clickers and first_clicks,
        how clickers were kept before the clicker state (still read, never
        written)."""
        return f"{self._campaign(ws, campaign)}:clickers"

    def link_aggregates(self, ws: str, campaign: str) -> str:
        """Per-link counters, apart from the totals so a report stays O(1)."""
        return f"{self._campaign(ws, campaign)}:lagg"

    def link_clickers(self, ws: str, campaign: str) -> str:
        """Set of "code recipient" (and "device=<d> recipient" etc.): unique
        clickers of each link, device, os and browser, before the clicker
        state (still read, never written)."""
        return f"{self._campaign(ws, campaign)}:lclk"

    def first_clicks(self, ws: str, campaign: str) -> str:
        """recipient -> unix hour of their earliest human click, before the
        clicker state (still read, never written)."""
        return f"{self._campaign(ws, campaign)}:fch"

    # -- events (issue: intake) ----------------------------------------------------
    def event_partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def event_stream(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition}}}:events"

    def solo_attempts(self, stream: str) -> str:
        """entry id -> times it was folded alone (and its last error), for
        entries delivered too often; beside its stream (same slot)."""
        return f"{stream}:solo"

    def worker_stats(self) -> str:
        """consumer -> its counters (JSON), published by each worker for /metrics."""
        return f"{self.prefix}:workers"

    def sweep_turn(self) -> str:
        """The consumer that runs the retention sweeps, for a day (SET NX PX)."""
        return f"{self.prefix}:sweep"

    def dead_letters(self) -> str:
        """Entries the worker gave up on, with their error: for a person to look at."""
        return f"{self.prefix}:dead"

    def event_streams(self) -> list[str]:
        return [self.event_stream(p) for p in range(self.partitions)]

    def seen(self, partition: int, key: str) -> str:
        """Door dedupe marker of an idempotency key, beside its stream."""
        digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        return f"{self.prefix}:{{p{partition}}}:seen:{digest}"

    # -- a workspace's join state: one slot, so a join reads and writes it atomically
    def _join(self, ws: str) -> str:
        return f"{self.prefix}:{{j:{_esc(ws)}}}"

    def message_index(self, ws: str) -> str:
        """wamid -> campaign, recipient and send time: the send log."""
        return f"{self._join(ws)}:msg"

    def identities(self, ws: str) -> str:
        """phone/email hash -> recipient."""
        return f"{self._join(ws)}:ids"

    def join_version(self, ws: str) -> str:
        """Raised by every join write: a join that read older state retries."""
        return f"{self._join(ws)}:jv"

    def click_index(self, ws: str) -> str:
        """human click id -> campaign, recipient, code, time."""
        return f"{self._join(ws)}:ck"

    def recipient_clicks(self, ws: str, recipient: str) -> str:
        return f"{self._join(ws)}:rc:{_esc(recipient)}"

    def recipient_messages(self, ws: str, recipient: str) -> str:
        return f"{self._join(ws)}:rm:{_esc(recipient)}"

    def recipient_orders(self, ws: str, recipient: str) -> str:
        return f"{self._join(ws)}:ro:{_esc(recipient)}"

    def recipients_clicks_and_orders(self, ws: str, recipients: list[str]) -> list[str]:
        """recipient_clicks and recipient_orders of each recipient, in turn (the
        worker's click join asks for a batch's: the workspace escaped once)."""
        join = self._join(ws)
        out: list[str] = []
        for recipient in recipients:
            r = _esc(recipient)
            out += (f"{join}:rc:{r}", f"{join}:ro:{r}")
        return out

    def recipient_facts(self, ws: str, recipient: str) -> str:
        """Replies and opt-outs to re-attribute when the recipient gets a message."""
        return f"{self._join(ws)}:rf:{_esc(recipient)}"

    def identity_orders(self, ws: str, identity: str) -> str:
        return f"{self._join(ws)}:io:{identity}"

    def identity_facts(self, ws: str, identity: str) -> str:
        return f"{self._join(ws)}:if:{identity}"

    def message_facts(self, ws: str, message_id: str) -> str:
        """Replies naming a message that is not in the send log yet."""
        return f"{self._join(ws)}:mf:{_esc(message_id)}"

    def order(self, ws: str, order_id: str) -> str:
        return f"{self._join(ws)}:o:{_esc(order_id)}"

    def fact(self, ws: str, key: str) -> str:
        return f"{self._join(ws)}:f:{_esc(key)}"

    def click_waits(self, ws: str) -> str:
        """click id -> orders that name it but arrived before it."""
        return f"{self._join(ws)}:wait"

    def parked(self, ws: str) -> str:
        """Status bits of messages not (yet) in the send log."""
        return f"{self._join(ws)}:park"

    def converters(self, ws: str) -> str:
        """(campaign, recipient) -> their converter fact (orders, version)."""
        return f"{self._join(ws)}:cv"

    def campaign_meta(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:meta"

    def series(self, ws: str, campaign: str) -> str:
        """Counters per hour (unix hour): clicks, orders, revenue over time."""
        return f"{self._campaign(ws, campaign)}:series"

    def order_lags(self, ws: str, campaign: str) -> str:
        """Order counters by order hour and whole hours from click to order
        ("<metric>:<lag>:<hour>"): a report over a time range, any window."""
        return f"{self._campaign(ws, campaign)}:lag"

    def message_bits(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:msgs"

    def contributions(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:contrib"

    def set_counts(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:refs"

    def order_rows(self, ws: str, campaign: str) -> str:
        """Attributed orders of the campaign: fact id -> row."""
        return f"{self._campaign(ws, campaign)}:orders"
