from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tracker.settings import VARIABLES, Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.effective_redis_url == "redis://127.0.0.1:6379/0"
    assert s.public_base_url == "http://127.0.0.1:8000"


def test_values_are_read() -> None:
    s = Settings.from_env({
        "REDIS_URL": "redis://r:6380/2", "TRACKER_PORT": "9000", "TRACKER_WORKERS": "4",
        "TRACKER_BASE_URL": "https://wa.example/", "TRACKER_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        "TRACKER_LINK_CACHE_TTL": "0.5", "TRACKER_LOG_LEVEL": "DEBUG",
        "TRACKER_WORKER_NICE": "19",
    })
    assert (s.redis_url, s.port, s.workers) == ("redis://r:6380/2", 9000, 4)
    assert s.public_base_url == "https://wa.example"
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert s.link_cache_ttl == 0.5 and s.log_level == "debug"
    assert s.worker_nice == 19


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRACKER_PORT", "eighty"),
        ("TRACKER_PORT", "70000"),
        ("TRACKER_WORKERS", "0"),
        ("TRACKER_CODE_LENGTH", "6"),
        ("TRACKER_LINK_CACHE_TTL", "soon"),
        ("TRACKER_TRUSTED_PROXIES", "10.0.0.0/8,nonsense"),
        ("TRACKER_IPV4_PREFIX", "33"),
        ("TRACKER_KEY_PREFIX", "a b"),
        ("TRACKER_CLICK_PARAM", "a&b"),
        ("REDIS_URL", "http://localhost"),
        ("TRACKER_BASE_URL", "wa.example"),
        ("TRACKER_LOG_LEVEL", "loud"),
        ("TRACKER_WORKER_NICE", "-5"),
        ("TRACKER_WORKER_NICE", "20"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}:"):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_readme_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert listed == {v.name for v in VARIABLES}


@pytest.mark.parametrize(
    ("env", "name"),
    [({}, "REDIS_URL"),
     ({"REDIS_URL": "redis://redis:6379/0"}, "REDIS_URL"),
     ({"REDIS_URL": "redis://:s3cret@redis:6379/0"}, "TRACKER_BASE_URL"),
     ({"REDIS_URL": "redis://:s3cret@redis:6379/0", "TRACKER_BASE_URL": "http://wa.example"},
      "TRACKER_BASE_URL")],
)
def test_production_refuses_defaults(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}:"):
        Settings.from_env({"TRACKER_ENV": "production", **env})
    ok = Settings.from_env({"TRACKER_ENV": "production", "REDIS_URL": "redis://:s@r:6379/0",
                            "TRACKER_BASE_URL": "https://wa.example"})
    assert ok.env == "production"
