from __future__ import annotations

from typing import Any

import pytest

from tracker.validation import Invalid
from tracker.workspaces import (
    DEFAULT_STOP_KEYWORDS,
    WorkspaceConfig,
    is_stop,
    parse_window_hours,
    settings_update,
)


@pytest.mark.parametrize(("value", "hours"), [(120, 120), ("24h", 24), ("5d", 120), ("90d", 2160)])
def test_window(value: Any, hours: int) -> None:
    assert parse_window_hours(value) == hours


@pytest.mark.parametrize("value", [0, "0h", "91d", "5 days", True, 1.5, None, "-1h"])
def test_bad_window(value: Any) -> None:
    with pytest.raises(Invalid):
        parse_window_hours(value)


def test_settings_update() -> None:
    fields = settings_update({
        "whatsapp_app_secret": "Wa-s3cret-9", "whatsapp_verify_token": "Vt-77x",
        "shopify_secret": "Shh-4q2", "attribution_window": "24h", "currency": "EUR",
        "order_topic": "orders/paid", "stop_keywords": ["STOP", "Halt!"], "respect_dnt": True,
    })
    cfg = WorkspaceConfig.from_hash("acme", {"hs": "x", **fields})
    assert cfg.attribution_window_h == 24 and cfg.currency == "EUR"
    assert cfg.order_topic == "orders/paid" and cfg.respect_dnt
    assert cfg.stop_keywords == ("stop", "halt")
    public = cfg.public()
    for secret in ("Wa-s3cret-9", "Vt-77x", "Shh-4q2"):
        assert secret not in str(public)
    assert public["whatsapp_app_secret_set"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [({"currency": "euro"}, "currency"), ({"order_topic": "orders/updated"}, "order_topic"),
     ({"whatsapp_app_secret": ""}, "whatsapp_app_secret"), ({"colour": 1}, "colour"),
     ({"stop_keywords": []}, "stop_keywords"), ({"respect_dnt": "yes"}, "respect_dnt")],
)
def test_bad_settings_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as info:
        settings_update(body)
    assert [e.field for e in info.value.errors] == [field]


@pytest.mark.parametrize(
    ("text", "stop"),
    [("STOP", True), ("stop.", True), ("  Stop! ", True), ("Abmelden", True),
     ("Stop promotions", True), ("unsubscribe", True),
     ("how do I stop my subscription box?", False), ("stopwatch", False), ("", False)],
)
def test_stop_keywords_match_whole_replies(text: str, stop: bool) -> None:
    assert is_stop(text, DEFAULT_STOP_KEYWORDS) is stop
