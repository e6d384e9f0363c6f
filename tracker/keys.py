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

User-supplied parts (workspace and campaign ids) are escaped so a brace or a
colon in them can never move a key into another tag.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

CLICK_GROUP = "workers"
EVENT_GROUP = "workers"
# Shards of the per-workspace lookup hashes (message index, identities), so
# one workspace's millions of entries spread over cluster slots.
INDEX_SHARDS = 16


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

    def api_key(self, key_hash: str) -> str:
        return f"{self.prefix}:apikey:{key_hash}"

    # -- links and the click stream ---------------------------------------------
    def partition(self, code: str) -> int:
        return partition_of(code, self.partitions)

    def link(self, code: str) -> str:
        return f"{self.prefix}:{{p{self.partition(code)}}}:l:{code}"

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

    def clickers(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:clickers"

    def link_aggregates(self, ws: str, campaign: str) -> str:
        """Per-link counters, apart from the totals so a report stays O(1)."""
        return f"{self._campaign(ws, campaign)}:lagg"

    def link_clickers(self, ws: str, campaign: str) -> str:
        """Set of "code recipient": unique clickers of each link."""
        return f"{self._campaign(ws, campaign)}:lclk"

    # -- events (issue: intake) ----------------------------------------------------
    def event_partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def event_stream(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition}}}:events"

    def event_streams(self) -> list[str]:
        return [self.event_stream(p) for p in range(self.partitions)]

    def seen(self, partition: int, key: str) -> str:
        """Door dedupe marker of an idempotency key, beside its stream."""
        digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        return f"{self.prefix}:{{p{partition}}}:seen:{digest}"

    def message_index(self, ws: str, message_id: str) -> str:
        """wamid -> campaign and recipient of a registered message (sharded hash)."""
        shard = zlib.crc32(message_id.encode()) % INDEX_SHARDS
        return f"{self.prefix}:{{m:{_esc(ws)}:{shard}}}:msgs"

    def identities(self, ws: str, identity: str) -> str:
        """phone/email hash -> recipient (sharded hash)."""
        shard = zlib.crc32(identity.encode()) % INDEX_SHARDS
        return f"{self.prefix}:{{i:{_esc(ws)}:{shard}}}:ids"

    def campaign_meta(self, ws: str, campaign: str) -> str:
        return f"{self._campaign(ws, campaign)}:meta"
