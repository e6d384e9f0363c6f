"""Writing events to their streams, deduplicated at the door. Async Redis I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from .clock import now_ms
from .events import Event
from .keys import Keys
from .settings import Settings
from .store import Redis, Scripts

# Events per script call: a script runs alone on the server, keep it short.
CHUNK = 500


@dataclass(frozen=True)
class Stored:
    stored: int
    duplicates: int
    duplicate_keys: tuple[str, ...] = ()


class Intake:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.key_prefix, settings.partitions)

    async def store(self, events: Sequence[Event]) -> Stored:
        """Append each event whose key is new; returns what was stored.

        Nothing is acknowledged to the sender before this returns: a Redis
        error propagates (the web layer answers 503 so the sender retries).
        """
        if not events:
            return Stored(0, 0)
        received = now_ms()
        by_partition: dict[int, list[Event]] = defaultdict(list)
        for event in events:
            # A recipient's events share their partition with the recipient's
            # links and clicks; events that name no recipient spread by key.
            recipient = str(event.data.get("recipient") or "")
            by_partition[self.keys.event_partition(recipient or event.key)].append(event)
        pipe = self.redis.pipeline(transaction=False)
        order: list[Event] = []
        for partition, group in by_partition.items():
            stream = self.keys.event_stream(partition)
            for start in range(0, len(group), CHUNK):
                chunk = group[start : start + CHUNK]
                keys = [stream] + [self.keys.seen(partition, e.key) for e in chunk]
                args: list[Any] = [self.settings.stream_maxlen, self.settings.dedupe_ttl]
                for event in chunk:
                    flat = [x for kv in event.fields(received).items() for x in kv]
                    args.append(len(flat))
                    args.extend(flat)
                pipe.execute_command("EVALSHA", Scripts.intake.sha, len(keys), *keys, *args)
                order.extend(chunk)
        try:
            replies = await pipe.execute()
        except NoScriptError:
            # A restarted Redis forgot the script: nothing ran, so load and retry.
            await self.redis.script_load(Scripts.intake.source)
            return await self.store(events)
        flags = [flag for reply in replies for flag in reply]
        dupes = tuple(e.key for e, f in zip(order, flags, strict=True) if not f)
        return Stored(len(flags) - len(dupes), len(dupes), dupes)
