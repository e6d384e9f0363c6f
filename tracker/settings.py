"""Settings: one frozen object, read once from the environment at start-up.

A bad value stops start-up with a `SettingsError` naming the variable, so a
typo in a deployment fails loudly instead of running with a silent default.
Every variable is listed, with its default, in `VARIABLES` (the README's
table is generated from the same list by hand; a test keeps them in step).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A configuration variable has a value we cannot use."""


@dataclass(frozen=True)
class Var:
    name: str
    default: str
    help: str


# name, default, meaning. Order is the README's order.
VARIABLES: tuple[Var, ...] = (
    Var("TRACKER_ENV", "development", "development or production. Production refuses a "
        "default or password-less REDIS_URL and a non-https TRACKER_BASE_URL."),
    Var("REDIS_URL", "", "Redis or Valkey (>= 6.2) to use, e.g. redis://host:6379/0, or a "
        "Redis Cluster: redis+cluster://[user:password@]host:port[,host:port...] "
        "(rediss+cluster:// with TLS). Empty: `tracker up` starts an embedded "
        "redis-server; `serve`/`worker` use redis://127.0.0.1:6379/0."),
    Var("TRACKER_HOST", "127.0.0.1", "Address the web process listens on."),
    Var("TRACKER_PORT", "8000", "Port the web process listens on."),
    Var("TRACKER_WORKERS", "1", "Number of uvicorn web worker processes."),
    Var("TRACKER_BASE_URL", "", "Public base of short links (e.g. https://wa.shop.example). "
        "Empty: http://HOST:PORT."),
    Var("TRACKER_DATA_DIR", "./data", "Where `tracker up` keeps the embedded Redis's AOF and "
        "the default workspace's key."),
    Var("TRACKER_KEY_PREFIX", "trk", "Prefix of every Redis key (lets deployments share a Redis)."),
    Var("TRACKER_PARTITIONS", "1", "Click stream partitions. Fixed for the life of the data: "
        "a link's partition is derived from its code."),
    Var("TRACKER_CLICK_PARAM", "trk_id", "Query parameter carrying the click id to the shop."),
    Var("TRACKER_UTM_SOURCE", "whatsapp", "Default utm_source."),
    Var("TRACKER_UTM_MEDIUM", "message", "Default utm_medium."),
    Var("TRACKER_CODE_LENGTH", "8", "Length of new short codes (8 to 22). Fixed once links "
        "exist: codes derive from the link, so a repeated create after a change makes a "
        "second link."),
    Var("TRACKER_LINK_CACHE_SIZE", "100000", "Links kept in each web process's cache."),
    Var("TRACKER_LINK_CACHE_TTL", "5", "Seconds a cached link is trusted; a disabled, expired "
        "or deleted link stops redirecting within this time."),
    Var("TRACKER_FAST_PATH", "1", "1: `tracker serve` answers a cached link's redirect "
        "without an ASGI task (fastpath.py: the same bytes, a third less CPU); 0: plain "
        "uvicorn httptools."),
    Var("TRACKER_FF_MAX_IN_FLIGHT", "10000", "Fire-and-forget clicks a web process may have "
        "waiting for Redis; past it, a redirect waits for its click's acknowledgement as in "
        "the default mode (bounded memory, and bounded loss if the process dies)."),
    Var("TRACKER_SPOOL_DIR", "", "Where a web process keeps clicks made while Redis is "
        "unreachable. Empty: DATA_DIR/spool."),
    Var("TRACKER_SPOOL_MAX_BYTES", "1073741824", "Bound of each web process's spool; past "
        "it, clicks made during an outage are dropped and counted."),
    Var("TRACKER_STREAM_MAXLEN", "10000000",
        "Last-resort bound of each stream (XADD MAXLEN ~), in entries (one holds the "
        "clicks a web process takes in one event-loop tick: one to a few dozen): it can "
        "drop unread entries, so keep it far above any backlog. Workers trim read entries "
        "themselves."),
    Var("TRACKER_STREAM_RETENTION_DAYS", "7", "Days that read stream entries are kept "
        "before workers trim them (never unread ones). Folded rows and aggregates stay."),
    Var("TRACKER_TRUSTED_PROXIES", "",
        "Comma-separated IPs/CIDRs whose X-Forwarded-For is believed."),
    Var("TRACKER_IPV4_PREFIX", "24", "Bits of a client IPv4 address kept (0 to 32)."),
    Var("TRACKER_IPV6_PREFIX", "48", "Bits of a client IPv6 address kept (0 to 128)."),
    Var("TRACKER_IP_RATE", "50", "Redirects and pixel hits a second per client address and "
        "web process, sustained (0: no limit)."),
    Var("TRACKER_IP_BURST", "500", "... and in a burst."),
    Var("TRACKER_KEY_RATE", "6000", "API requests a minute per key (0: no limit)."),
    Var("TRACKER_MAX_BODY", "8388608", "Largest accepted request body, bytes."),
    Var("TRACKER_BATCH_LIMIT", "10000", "Most items in one batch request."),
    Var("TRACKER_WEBHOOK_MAX_BODY", "3145728", "Largest accepted webhook body, bytes "
        "(Meta batches up to 3 MB)."),
    Var("TRACKER_SHOPIFY_MAX_AGE", "172800", "Seconds after which a Shopify delivery "
        "(X-Shopify-Triggered-At) is acknowledged but flagged stale and not counted: "
        "Shopify retries for 4 hours, so an older one is a replay."),
    Var("TRACKER_DEDUPE_TTL", "691200", "Seconds an event's idempotency key is remembered "
        "(default 8 days: Meta re-sends statuses for up to 7)."),
    Var("TRACKER_WORKER_BATCH", "500", "Entries a worker reads per XREADGROUP."),
    Var("TRACKER_WORKER_LANES", "3", "Batches a worker process folds at once (1 to 16): "
        "Python prepares one while Redis runs another's scripts (3 lanes: about 1.4x the "
        "clicks/s of one)."),
    Var("TRACKER_WORKER_BLOCK_MS", "1000", "How long a worker blocks waiting for entries."),
    Var("TRACKER_WORKER_LINGER_MS", "20", "While a worker keeps up (its reads come back "
        "short), it waits this long before reading again, so clicks arrive in batches "
        "and not one by one: each batch costs the same scripts and round trips "
        "whatever its size. 0 reads again at once."),
    Var("TRACKER_WORKER_NICE", "0", "The worker's CPU priority, as nice (0 to 19; it only "
        "ever lowers its own): where it shares cores with web processes, 19 lets the "
        "redirect go first and the worker fold in the idle time. Measured on 2 cores "
        "with one web process: about 7 % more redirects, lag as before; with two, which "
        "fill the cores, the worker falls behind while they do (see the README's Capacity)."),
    Var("TRACKER_RECLAIM_IDLE_MS", "30000", "Pending entries idle this long are reclaimed "
        "from their (presumed dead) consumer."),
    Var("TRACKER_CONSUMER", "", "Consumer name of this worker. Empty: hostname-pid."),
    Var("TRACKER_LOG_LEVEL", "info", "Log level: debug, info, warning, error."),
)

_KNOWN = {v.name: v for v in VARIABLES}


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise SettingsError(f"{name}: expected 1 or 0, got {raw!r}")


def _float(name: str, raw: str, lo: float, hi: float) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {part!r} is not an IP address or CIDR") from None
    return tuple(nets)


def _token(name: str, raw: str, *, allowed: str) -> str:
    value = raw.strip()
    if not value or any(ch not in allowed for ch in value):
        raise SettingsError(f"{name}: {raw!r} may only use the characters {allowed!r}")
    return value


_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
_LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    base_url: str = ""
    data_dir: str = "./data"
    key_prefix: str = "trk"
    partitions: int = 1
    click_param: str = "trk_id"
    utm_source: str = "whatsapp"
    utm_medium: str = "message"
    code_length: int = 8
    link_cache_size: int = 100_000
    link_cache_ttl: float = 5.0
    fast_path: bool = True
    ff_max_in_flight: int = 10_000
    spool_dir: str = "data/spool"
    spool_max_bytes: int = 1 << 30
    stream_maxlen: int = 10_000_000
    stream_retention_ms: int = 7 * 86_400_000
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=tuple
    )
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    ip_rate: float = 50.0
    ip_burst: float = 500.0
    key_rate: int = 6000
    max_body: int = 8 * 1024 * 1024
    batch_limit: int = 10_000
    webhook_max_body: int = 3 * 1024 * 1024
    dedupe_ttl: int = 8 * 86_400
    shopify_max_age: int = 2 * 86_400
    worker_batch: int = 500
    worker_lanes: int = 3
    worker_block_ms: int = 1000
    worker_linger_ms: int = 20
    worker_nice: int = 0
    reclaim_idle_ms: int = 30_000
    consumer: str = ""
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return env.get(name, _KNOWN[name].default)

        redis_url = get("REDIS_URL").strip()
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://",
                                                   "redis+cluster://", "rediss+cluster://")):
            raise SettingsError(
                "REDIS_URL: expected redis://, rediss://, unix:// or (a Redis Cluster) "
                f"redis+cluster://host:port[,host:port...], got {redis_url!r}"
            )
        base_url = get("TRACKER_BASE_URL").strip().rstrip("/")
        if base_url and not base_url.startswith(("http://", "https://")):
            raise SettingsError(f"TRACKER_BASE_URL: expected an http(s) URL, got {base_url!r}")
        env_name = get("TRACKER_ENV").strip().lower()
        if env_name not in ("development", "production"):
            raise SettingsError("TRACKER_ENV: development or production")
        if env_name == "production":
            # A production deployment never runs on defaults that only suit a laptop.
            if not redis_url:
                raise SettingsError("REDIS_URL: required in production (no default Redis)")
            if "@" not in redis_url and not redis_url.startswith("unix://"):
                raise SettingsError("REDIS_URL: needs a password in production "
                                    "(redis://:PASSWORD@host:6379/0)")
            if not base_url.startswith("https://"):
                raise SettingsError("TRACKER_BASE_URL: must be an https URL in production")
        log_level = get("TRACKER_LOG_LEVEL").strip().lower()
        if log_level not in _LOG_LEVELS:
            raise SettingsError(f"TRACKER_LOG_LEVEL: one of {', '.join(_LOG_LEVELS)}")
        return cls(
            env=env_name,
            redis_url=redis_url,
            host=get("TRACKER_HOST").strip() or "127.0.0.1",
            port=_int("TRACKER_PORT", get("TRACKER_PORT"), 0, 65535),
            workers=_int("TRACKER_WORKERS", get("TRACKER_WORKERS"), 1, 256),
            base_url=base_url,
            data_dir=get("TRACKER_DATA_DIR").strip() or "./data",
            key_prefix=_token("TRACKER_KEY_PREFIX", get("TRACKER_KEY_PREFIX"), allowed=_SAFE),
            partitions=_int("TRACKER_PARTITIONS", get("TRACKER_PARTITIONS"), 1, 1024),
            click_param=_token("TRACKER_CLICK_PARAM", get("TRACKER_CLICK_PARAM"), allowed=_SAFE),
            utm_source=get("TRACKER_UTM_SOURCE").strip(),
            utm_medium=get("TRACKER_UTM_MEDIUM").strip(),
            code_length=_int("TRACKER_CODE_LENGTH", get("TRACKER_CODE_LENGTH"), 8, 22),
            link_cache_size=_int(
                "TRACKER_LINK_CACHE_SIZE", get("TRACKER_LINK_CACHE_SIZE"), 0, 100_000_000
            ),
            link_cache_ttl=_float("TRACKER_LINK_CACHE_TTL", get("TRACKER_LINK_CACHE_TTL"), 0, 3600),
            fast_path=_bool("TRACKER_FAST_PATH", get("TRACKER_FAST_PATH")),
            ff_max_in_flight=_int("TRACKER_FF_MAX_IN_FLIGHT", get("TRACKER_FF_MAX_IN_FLIGHT"),
                                  0, 10_000_000),
            spool_dir=get("TRACKER_SPOOL_DIR").strip()
            or str(Path(get("TRACKER_DATA_DIR").strip() or "./data") / "spool"),
            spool_max_bytes=_int("TRACKER_SPOOL_MAX_BYTES", get("TRACKER_SPOOL_MAX_BYTES"),
                                 0, 1 << 40),
            stream_retention_ms=_int("TRACKER_STREAM_RETENTION_DAYS",
                                     get("TRACKER_STREAM_RETENTION_DAYS"), 0, 3650) * 86_400_000,
            stream_maxlen=_int(
                "TRACKER_STREAM_MAXLEN", get("TRACKER_STREAM_MAXLEN"), 1000, 10**12
            ),
            trusted_proxies=_networks("TRACKER_TRUSTED_PROXIES", get("TRACKER_TRUSTED_PROXIES")),
            ipv4_prefix=_int("TRACKER_IPV4_PREFIX", get("TRACKER_IPV4_PREFIX"), 0, 32),
            ipv6_prefix=_int("TRACKER_IPV6_PREFIX", get("TRACKER_IPV6_PREFIX"), 0, 128),
            ip_rate=_float("TRACKER_IP_RATE", get("TRACKER_IP_RATE"), 0, 1e6),
            ip_burst=_float("TRACKER_IP_BURST", get("TRACKER_IP_BURST"), 1, 1e7),
            key_rate=_int("TRACKER_KEY_RATE", get("TRACKER_KEY_RATE"), 0, 10**9),
            max_body=_int("TRACKER_MAX_BODY", get("TRACKER_MAX_BODY"), 1024, 1024**3),
            batch_limit=_int("TRACKER_BATCH_LIMIT", get("TRACKER_BATCH_LIMIT"), 1, 1_000_000),
            webhook_max_body=_int(
                "TRACKER_WEBHOOK_MAX_BODY", get("TRACKER_WEBHOOK_MAX_BODY"), 1024, 1024**3
            ),
            shopify_max_age=_int("TRACKER_SHOPIFY_MAX_AGE", get("TRACKER_SHOPIFY_MAX_AGE"),
                                 60, 400 * 86_400),
            dedupe_ttl=_int("TRACKER_DEDUPE_TTL", get("TRACKER_DEDUPE_TTL"), 60, 400 * 86_400),
            worker_batch=_int("TRACKER_WORKER_BATCH", get("TRACKER_WORKER_BATCH"), 1, 100_000),
            worker_lanes=_int("TRACKER_WORKER_LANES", get("TRACKER_WORKER_LANES"), 1, 16),
            worker_block_ms=_int(
                "TRACKER_WORKER_BLOCK_MS", get("TRACKER_WORKER_BLOCK_MS"), 1, 60_000
            ),
            worker_linger_ms=_int(
                "TRACKER_WORKER_LINGER_MS", get("TRACKER_WORKER_LINGER_MS"), 0, 10_000
            ),
            worker_nice=_int("TRACKER_WORKER_NICE", get("TRACKER_WORKER_NICE"), 0, 19),
            reclaim_idle_ms=_int(
                "TRACKER_RECLAIM_IDLE_MS", get("TRACKER_RECLAIM_IDLE_MS"), 100, 86_400_000
            ),
            consumer=get("TRACKER_CONSUMER").strip(),
            log_level=log_level,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"

    @property
    def public_base_url(self) -> str:
        return self.base_url or f"http://{self.host}:{self.port}"

