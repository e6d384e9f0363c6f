"""Time as unix milliseconds, the one unit stored everywhere, and its ISO 8601 form."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@lru_cache(maxsize=4096)  # a batch of links shares its creation time
def iso_ms(ms: int) -> str:
    """2026-11-23T01:15:53.123Z"""
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
