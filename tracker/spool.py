"""A local append-only spool for clicks made while Redis is unreachable.

The recipient still lands on the shop; the click is appended to a file and
written to its stream, in order, when Redis answers again. Each web process
has its own file; a process that starts also replays the files of processes
that died with clicks in them.

Durability: every click is written to the file (the OS has it: a crash of
the process loses nothing) and the file is fsynced at most once a second,
so a crash of the whole host can lose up to a second of an outage's clicks.
Bounded: past `max_bytes` a click is dropped and counted, never blocking the
redirect. Exactly once: a replay interrupted by a crash is replayed again
from the start of the unfinished file, and the worker counts each click id
once, so no number changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

log = logging.getLogger("tracker.spool")

Writer = Callable[[str, list[str]], Awaitable[None]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.path = self.dir / f"clicks-{os.getpid()}.spool"
        self.dropped = 0
        self._file: object | None = None
        self._size = 0
        self._synced = 0.0
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return self._size

    def append(self, stream: str, fields: list[str]) -> None:
        """Keep one click (called on the hot path only while Redis fails)."""
        line = (json.dumps([stream, *fields], separators=(",", ":")) + "\n").encode()
        if self._size + len(line) > self.max_bytes:
            self.dropped += 1
            log.error("spool full (%d bytes): click dropped", self._size)
            return
        if self._file is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (kept open)
        f = self._file
        assert hasattr(f, "write")
        f.write(line)
        self._size += len(line)
        now = time.monotonic()
        if now - self._synced >= 1.0:
            os.fsync(f.fileno())  # type: ignore[attr-defined]
            self._synced = now

    def start_replay(self, write: Writer) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._replay_all(write))

    async def _replay_all(self, write: Writer) -> None:
        delay = 0.2
        while True:
            files = self._files()
            if not files:
                return
            try:
                for path in files:
                    await self._replay(path, write)
                delay = 0.2
            except (OSError, ConnectionError, TimeoutError) as exc:
                log.warning("spool replay waits for Redis: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:  # a Redis error reply: try again later, keep the file
                log.warning("spool replay failed: %r", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _files(self) -> list[Path]:
        """Ours, and those of processes that died with clicks in them; oldest first."""
        if not self.dir.is_dir():
            return []
        out = []
        for path in self.dir.glob("clicks-*"):
            pid = path.name.removeprefix("clicks-").split(".")[0]
            if not (pid.isascii() and pid.isdigit()):
                continue
            if int(pid) == os.getpid() or not _alive(int(pid)):
                out.append(path)
        return sorted(out, key=lambda p: (p.stat().st_mtime, p.name))

    def _claim(self, path: Path) -> Path:
        """Stop appending to our file before replaying it: new failures open a new one.
        (Local file operations: fast enough to do on the loop, and rare.)"""
        if path != self.path:
            return path
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._file.fileno())  # type: ignore[attr-defined]
                self._file.close()  # type: ignore[attr-defined]
            self._file = None
        replaying = path.with_name(f"clicks-{os.getpid()}.{time.time_ns()}.replay")
        path.rename(replaying)
        self._size = 0
        return replaying

    async def _replay(self, path: Path, write: Writer) -> None:
        path = self._claim(path)
        for stream, fields in _records(path):
            await write(stream, fields)
        path.unlink()
        log.info("replayed spooled clicks from %s", path.name)


def _records(path: Path) -> Iterator[tuple[str, list[str]]]:
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return  # a torn last line: its redirect never answered
            stream, *fields = json.loads(line)
            yield stream, fields
