"""A stand-in for `tracker worker` that folds nothing: the redirect benchmark's floor.

It reads the click streams through the worker's consumer group and
acknowledges each read, as the real worker does while it keeps up (a batch
of up to TRACKER_WORKER_BATCH entries, then TRACKER_WORKER_LINGER_MS of
rest when a read comes back short), through the same lean client, and
writes nothing else: no row, no counter, no history. Any worker that reads
every click costs at least this much, so the redirect's rate beside it is
the most any fold sharing the machine's cores can leave the web (README:
Benchmarks). Not the product: its clicks are acknowledged and never counted.

    python -m bench.standin     (REDIS_URL and the worker's settings from the environment)

On SIGTERM it acknowledges what it holds, publishes how many clicks it read
under its own name in the workers' stats hash, as the worker does, and
leaves.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

from tracker.keys import CLICK_GROUP, Keys
from tracker.models import entry_values
from tracker.resp import FastRedis
from tracker.settings import Settings


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """Read and acknowledge until `stop`; returns the clicks read."""
    keys = Keys(settings.key_prefix, settings.partitions)
    streams = keys.click_streams()
    fast = FastRedis(settings.effective_redis_url)
    consumer = f"bench-standin-{os.getpid()}"  # (its stats field too: one a run, summed)
    clicks = 0
    try:
        while not stop.is_set():
            reply: Any = await fast.call(
                "XREADGROUP", "GROUP", CLICK_GROUP, consumer, "COUNT", settings.worker_batch,
                "BLOCK", 200, "STREAMS", *streams, *[">"] * len(streams))
            read = 0
            for stream, entries in reply or []:
                ids = []
                for entry_id, fields in entries:
                    ids.append(entry_id)
                    # (how many clicks it held, for the benchmark's clicks an
                    # entry: one per field, as the redirect packs them)
                    values = entry_values(dict(zip(fields[::2], fields[1::2], strict=True))
                                          ) if fields else None
                    clicks += len(values) if values else 1
                if ids:
                    await fast.call("XACK", stream, CLICK_GROUP, *ids)
                read += len(ids)
            if 0 < read < settings.worker_batch and settings.worker_linger_ms:
                await asyncio.sleep(settings.worker_linger_ms / 1000)
        await fast.call("HSET", keys.worker_stats(), consumer, json.dumps(
            {"read": clicks, "applied": clicks, "duplicates": 0, "invalid": 0, "dead": 0,
             "reclaimed": 0, "errors": 0}))
    finally:
        await fast.aclose()
    return clicks


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(Settings.from_env(), stop)


if __name__ == "__main__":
    asyncio.run(main())
