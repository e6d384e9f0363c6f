"""The `tracker` command: up | serve | worker | workspace | report.

Every flag can also be set through its environment variable (the flag wins);
flags are written into the environment so the processes we start inherit them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .settings import Settings, SettingsError

log = logging.getLogger("tracker.cli")

if TYPE_CHECKING:
    from .store import Store

T = TypeVar("T")

DEFAULT_WORKSPACE = "default"
_EXAMPLE = json.dumps({"url": "https://shop.example/p", "campaign": "demo", "recipient": "r1"})


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"tracker: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


EMBEDDED_URL_FILE = "redis-url"  # in the data directory, while `tracker up` runs


def _admin_settings() -> Settings:
    """Settings for a command run beside `tracker up` (another shell, the same
    data directory): without REDIS_URL it talks to the embedded Redis that
    `up` started, whose address `up` leaves in DATA_DIR/redis-url while it
    runs (its port is picked free at start). Only when that Redis answers: a
    file left by a crashed `up` changes nothing. Not for `serve` and
    `worker`, which `up` starts with REDIS_URL set, and which in production
    must never guess."""
    settings = _settings()
    if settings.redis_url:
        return settings
    try:
        url = (Path(settings.data_dir) / EMBEDDED_URL_FILE).read_text().strip()
    except OSError:
        return settings
    from .embedded import answers

    if not answers(url):
        return settings
    os.environ["REDIS_URL"] = url
    return _settings()


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _apply_flags(args: argparse.Namespace) -> None:
    for flag, var in (("host", "TRACKER_HOST"), ("port", "TRACKER_PORT"),
                      ("workers", "TRACKER_WORKERS"), ("data_dir", "TRACKER_DATA_DIR")):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[var] = str(value)


async def _with_store(settings: Settings, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Run `fn` with a Store on a fresh connection, closed afterwards."""
    from .store import Store, connect

    redis = connect(settings.effective_redis_url)
    try:
        return await fn(Store(redis, settings))
    finally:
        await redis.aclose()


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# -- serve / worker ---------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    _apply_flags(args)
    settings = _settings()
    _logging(settings)
    uvicorn.run(
        "tracker.asgi:create",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=_http_protocol(settings),
        access_log=False,
        log_level=settings.log_level,
        lifespan="on",
        # X-Forwarded-For is read once, by us, from TRACKER_TRUSTED_PROXIES only
        # (uvicorn's own rewrite would apply a second, different rule).
        proxy_headers=False,
    )
    return 0


def _http_protocol(settings: Settings) -> str:
    """uvicorn's httptools, with the redirect's fast path where it can run."""
    if not settings.fast_path:
        return "httptools"
    try:
        from . import fastpath
    except ImportError as exc:  # an uvicorn whose internals moved
        log.warning("redirect fast path off: %s", exc)
        return "httptools"
    if not fastpath.supported():
        log.warning("redirect fast path off: this uvicorn's internals differ")
        return "httptools"
    return fastpath.NAME


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    if args.action == "status":
        print(json.dumps(_run(_worker_status(_admin_settings())), indent=2))
        return 0
    settings = _settings()
    _logging(settings)
    _run(run_worker(settings))
    return 0


async def _worker_status(settings: Settings) -> dict[str, Any]:
    """Streams, the consumer group's backlog and consumers, and the dead letters."""
    from .keys import CLICK_GROUP, Keys
    from .store import connect

    redis = connect(settings.effective_redis_url)
    keys = Keys(settings.key_prefix, settings.partitions)
    out: dict[str, Any] = {"streams": {}}
    try:
        for stream in keys.click_streams() + keys.event_streams():
            if not await redis.exists(stream):
                continue
            info = await redis.xinfo_stream(stream)
            groups = [g for g in await redis.xinfo_groups(stream) if g["name"] == CLICK_GROUP]
            entry: dict[str, Any] = {"length": info["length"],
                                     "last_id": info["last-generated-id"]}
            if groups:
                g = groups[0]
                consumers = await redis.xinfo_consumers(stream, CLICK_GROUP)
                entry.update({
                    "pending": g["pending"], "last_delivered_id": g["last-delivered-id"],
                    "caught_up": g["last-delivered-id"] == info["last-generated-id"],
                    "consumers": [{"name": c["name"], "pending": c["pending"],
                                   "idle_ms": c["idle"]} for c in consumers],
                })
            out["streams"][stream] = entry
        dead = keys.dead_letters()
        out["dead_letters"] = {
            "count": await redis.xlen(dead),
            "latest": [{"id": i, **(f or {})}
                       for i, f in (await redis.xrevrange(dead, count=5)) or []],
        }
    finally:
        await redis.aclose()
    return out


# -- workspaces -------------------------------------------------------------------
async def _create_workspace(settings: Settings, name: str) -> str:
    return await _with_store(settings, lambda store: store.create_workspace(name))


def cmd_workspace_create(args: argparse.Namespace) -> int:
    from .store import WorkspaceExists

    settings = _admin_settings()
    try:
        key = _run(_create_workspace(settings, args.name))
    except WorkspaceExists:
        print(f"tracker: workspace {args.name!r} already exists", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"workspace": args.name, "api_key": key}))
    return 0


_SET_FLAGS = {
    "whatsapp_app_secret": str, "whatsapp_verify_token": str, "shopify_secret": str,
    "attribution_window": str, "currency": str, "order_topic": str, "timezone": str,
}


def cmd_workspace_set(args: argparse.Namespace) -> int:
    from .validation import Invalid
    from .workspaces import settings_update

    settings = _admin_settings()
    body: dict[str, Any] = {k: getattr(args, k) for k in _SET_FLAGS if getattr(args, k)}
    if args.stop_keywords:
        body["stop_keywords"] = [k.strip() for k in args.stop_keywords.split(",") if k.strip()]
    if args.respect_dnt is not None:
        body["respect_dnt"] = args.respect_dnt == "yes"
    if args.fire_and_forget is not None:
        body["fire_and_forget"] = args.fire_and_forget == "yes"
    if args.raw_retention_days is not None:
        body["raw_retention_days"] = args.raw_retention_days
    if args.allowed_domains is not None:
        body["allowed_domains"] = [d.strip() for d in args.allowed_domains.split(",")
                                   if d.strip()]
    try:
        fields = settings_update(body)
    except Invalid as exc:
        for err in exc.errors:
            print(f"tracker: --{err.field.replace('_', '-')}: {err.reason}", file=sys.stderr)
        return 2

    async def go(store: Store) -> dict[str, Any] | None:
        if not await store.workspace_exists(args.name):
            return None
        return (await store.update_workspace(args.name, fields)).public()

    public = _run(_with_store(settings, go))
    if public is None:
        print(f"tracker: no workspace {args.name!r}", file=sys.stderr)
        return 1
    print(json.dumps(public))
    return 0


# -- keys -------------------------------------------------------------------------
def cmd_key(args: argparse.Namespace) -> int:
    """create | list | revoke | rotate (a new key with the same scope, the old one revoked)."""
    from .store import hash_key, key_id

    settings = _admin_settings()

    async def go(store: Store) -> tuple[int, Any]:
        if not await store.workspace_exists(args.workspace):
            return 1, f"no workspace {args.workspace!r}"
        if args.action == "list":
            return 0, await store.list_keys(args.workspace)
        if args.action == "create":
            key = await store.add_api_key(args.workspace, args.scope)
            return 0, {"key_id": key_id(hash_key(key)), "scope": args.scope,
                       "api_key": key}
        if not args.key_id:
            return 2, "give the key id (tracker key list WORKSPACE)"
        scope = await store.key_scope(args.workspace, args.key_id)
        if scope is None:
            return 1, f"no key {args.key_id!r} in workspace {args.workspace!r}"
        new: dict[str, Any] = {}
        if args.action == "rotate":
            key = await store.add_api_key(args.workspace, scope)
            new = {"key_id": key_id(hash_key(key)), "scope": scope, "api_key": key}
        await store.revoke_key(args.workspace, args.key_id)
        return 0, {"revoked": args.key_id, **new}

    code, result = _run(_with_store(settings, go))
    if code:
        print(f"tracker: {result}", file=sys.stderr)
    else:
        print(json.dumps(result))
    return int(code)


def cmd_recipient_erase(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .erase import erase_recipient

    settings = _admin_settings()

    async def go(store: Store) -> dict[str, Any] | None:
        cfg = await store.workspace_config(args.workspace)
        if cfg is None:
            return None
        done = await erase_recipient(store.redis, store.keys, args.workspace, args.recipient,
                                     cfg.hash_secret)
        return asdict(done)

    result = _run(_with_store(settings, go))
    if result is None:
        print(f"tracker: no workspace {args.workspace!r}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


# -- report -----------------------------------------------------------------------
async def _report(settings: Settings, ws: str, campaign: str) -> dict[str, Any] | None:
    from .metrics import campaign_report

    async def go(store: Store) -> dict[str, Any] | None:
        if not await store.campaign_known(ws, campaign):
            return None
        cfg = await store.workspace_config(ws)
        agg, links, recipients, meta = await store.campaign_counts(ws, campaign)
        window = cfg.attribution_window_h if cfg else 120
        return campaign_report(campaign, agg, links, recipients, meta, window)

    return await _with_store(settings, go)


def cmd_report(args: argparse.Namespace) -> int:
    settings = _admin_settings()
    report = _run(_report(settings, args.workspace, args.campaign))
    if report is None:
        print(f"tracker: no campaign {args.campaign!r} in workspace {args.workspace!r}",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(format_report(report))
    return 0


_COUNTS = ("recipients", "links", "messages", "sent", "delivered", "read", "failed", "clicks",
           "unique_clickers", "non_human_clicks", "replies", "opt_outs", "orders", "converters")
_RATES = ("delivery_rate", "read_rate", "ctr", "click_to_read", "reply_rate", "opt_out_rate",
          "conversion_rate")


def format_report(report: dict[str, Any]) -> str:
    """The report as a table for a terminal: counts, rates with their parts, money."""
    rows: list[tuple[str, str]] = [(k, f"{report[k]:,}") for k in _COUNTS]
    for key in _RATES:
        r = report[key]
        value = "-" if r["value"] is None else f"{r['value'] * 100:.2f} %"
        rows.append((key, f"{value}  ({r['numerator']} / {r['denominator']})"))
    for cur, money in report["revenue"].items():
        rows.append((f"revenue {cur}", f"gross {money['gross']}  refunded {money['refunded']}  "
                                       f"net {money['net']}"))
        rpr = money["revenue_per_recipient"]["value"]
        rows.append((f"per recipient {cur}", rpr or "-"))
    rocs = report["rocs"]
    rows.append(("rocs", f"{rocs['value'] * 100:.0f} %" if rocs["value"] is not None
                 else f"- ({rocs.get('reason', '')})"))
    width = max(len(k) for k, _ in rows)
    title = f"campaign {report['campaign']}  (window {report['window']})"
    return "\n".join([title, *(f"  {k.ljust(width)}  {v}" for k, v in rows)])


# -- up: the quick start --------------------------------------------------------------
def _default_key(settings: Settings, data_dir: Path) -> str:
    """The default workspace's key, created on first start and kept in the data dir."""
    from .store import WorkspaceExists

    key_file = data_dir / "default-api-key"
    if key_file.exists():
        return key_file.read_text().strip()
    try:
        key: str = _run(_create_workspace(settings, DEFAULT_WORKSPACE))
    except WorkspaceExists:
        key = _run(_new_key(settings, DEFAULT_WORKSPACE))
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


async def _new_key(settings: Settings, ws: str, scope: str = "full") -> str:
    return await _with_store(settings, lambda store: store.add_api_key(ws, scope))


def _default_read_key(settings: Settings, data_dir: Path) -> str:
    """A read-only key of the default workspace, for the dashboard (kept like the other)."""
    key_file = data_dir / "default-read-key"
    if key_file.exists():
        return key_file.read_text().strip()
    key: str = _run(_new_key(settings, DEFAULT_WORKSPACE, "read"))
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def cmd_up(args: argparse.Namespace) -> int:
    from .embedded import EmbeddedRedis, EmbeddedRedisError

    _apply_flags(args)
    settings = _settings()
    data_dir = Path(settings.data_dir)
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        try:
            embedded = EmbeddedRedis(data_dir / "redis").start()
        except EmbeddedRedisError as exc:
            print(f"tracker: {exc}", file=sys.stderr)
            return 1
        os.environ["REDIS_URL"] = embedded.url
        settings = _settings()
        (data_dir / EMBEDDED_URL_FILE).write_text(embedded.url + "\n")
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        key = _default_key(settings, data_dir)
        read_key = _default_read_key(settings, data_dir)
        exe = [sys.executable, "-m", "tracker"]
        children.append(subprocess.Popen([*exe, "worker"]))
        children.append(subprocess.Popen([*exe, "serve"]))
        redis_where = (
            f"embedded redis-server, data in {data_dir / 'redis'}" if embedded
            else settings.redis_url
        )
        print(
            f"tracker is up\n"
            f"  listening on   http://{settings.host}:{settings.port}\n"
            f"  short links    {settings.public_base_url}/<code>\n"
            f"  redis          {redis_where}\n"
            f"  workspace      {DEFAULT_WORKSPACE}\n"
            f"  api key        {key}\n"
            f"  dashboard      http://{settings.host}:{settings.port}/dashboard "
            f"(read-only key {read_key})\n"
            f"try: curl -s -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' "
            f"-d '{_EXAMPLE}' http://{settings.host}:{settings.port}/api/v1/links",
            flush=True,
        )
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            (data_dir / EMBEDDED_URL_FILE).unlink(missing_ok=True)
            embedded.stop()
    failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    return 1 if failed and not stopping else 0


# -- parser -------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracker", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def web_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", help="listen address (TRACKER_HOST)")
        sp.add_argument("--port", type=int, help="listen port (TRACKER_PORT)")
        sp.add_argument("--workers", type=int, help="web worker processes (TRACKER_WORKERS)")

    up = sub.add_parser("up", help="run web + worker on an embedded Redis (the quick start)")
    web_flags(up)
    up.add_argument("--data-dir", help="data directory (TRACKER_DATA_DIR)")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run the web process")
    web_flags(serve)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a worker, or show the group's status")
    worker.add_argument("action", nargs="?", choices=["run", "status"], default="run",
                        help="run (default) or status: backlog, consumers, dead letters")
    worker.set_defaults(func=cmd_worker)

    ws = sub.add_parser("workspace", help="manage workspaces")
    ws_sub = ws.add_subparsers(dest="action", required=True)
    create = ws_sub.add_parser("create", help="create a workspace and print its API key")
    create.add_argument("name")
    create.set_defaults(func=cmd_workspace_create)
    wset = ws_sub.add_parser("set", help="change a workspace's settings (secrets are write-only)")
    wset.add_argument("name")
    for flag in _SET_FLAGS:
        wset.add_argument("--" + flag.replace("_", "-"), dest=flag)
    wset.add_argument("--stop-keywords", help="comma-separated opt-out keywords")
    wset.add_argument("--raw-retention-days", type=int,
                      help="days raw click data (rows, the clicks kept for attribution) "
                           "is kept (aggregates stay)")
    wset.add_argument("--allowed-domains",
                      help="comma-separated destination domains links may point to "
                           "(subdomains included); empty: any")
    wset.add_argument("--respect-dnt", choices=["yes", "no"],
                      help="honour Do Not Track / Global Privacy Control in the pixel")
    wset.add_argument("--fire-and-forget", choices=["yes", "no"],
                      help="redirect before Redis acknowledges the click (faster; a crash "
                           "of a web process may lose the clicks in flight)")
    wset.set_defaults(func=cmd_workspace_set)

    key = sub.add_parser("key", help="a workspace's API keys: create, list, revoke, rotate")
    key.add_argument("action", choices=["create", "list", "revoke", "rotate"])
    key.add_argument("workspace")
    key.add_argument("key_id", nargs="?", help="for revoke and rotate")
    key.add_argument("--scope", choices=["full", "read"], default="full",
                     help="for create: full, or read (reports and exports only)")
    key.set_defaults(func=cmd_key)

    recipient = sub.add_parser("recipient", help="a recipient's personal data")
    r_sub = recipient.add_subparsers(dest="action", required=True)
    erase = r_sub.add_parser("erase", help="erase it; every aggregate stays as it was")
    erase.add_argument("workspace")
    erase.add_argument("recipient")
    erase.set_defaults(func=cmd_recipient_erase)

    report = sub.add_parser("report", help="print a campaign report")
    report.add_argument("campaign")
    report.add_argument("--workspace", default=os.environ.get("TRACKER_WORKSPACE",
                                                             DEFAULT_WORKSPACE),
                        help="workspace (TRACKER_WORKSPACE; default: default)")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
