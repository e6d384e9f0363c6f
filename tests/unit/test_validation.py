from __future__ import annotations

from typing import Any

import pytest

from tracker.validation import Invalid, LinkDefaults, link_batch, link_patch, link_spec

D = LinkDefaults("whatsapp", "message", "trk_id")
NOW = 1_790_000_000_000  # 2026-09-21T...


def errors_of(fn: Any, *args: Any, **kw: Any) -> list[dict[str, Any]]:
    with pytest.raises(Invalid) as info:
        fn(*args, **kw)
    return [e.as_json() for e in info.value.errors]


def test_a_good_link() -> None:
    spec = link_spec(
        {"url": "https://s.example/p?x=1", "campaign": "bf", "recipient": "r1",
         "utm": {"content": "btn"}, "expires_at": "2030-01-01T00:00:00Z", "metadata": {"a": 1}},
        D, NOW,
    )
    assert spec.url == ("https://s.example/p?x=1&utm_source=whatsapp&utm_medium=message"
                        "&utm_campaign=bf&utm_content=btn")
    assert spec.recipient == "r1" and spec.expires_at == 1_893_456_000_000
    assert spec.metadata == '{"a":1}'


def test_recipient_is_optional() -> None:
    assert link_spec({"url": "https://s.example/", "campaign": "bf"}, D, NOW).recipient == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"campaign": "bf"}, "url"),
        ({"url": 5, "campaign": "bf"}, "url"),
        ({"url": "https://s.example/" + "x" * 2100, "campaign": "bf"}, "url"),
        ({"url": "https://s.example/" + "x" * 2000, "campaign": "bf"}, "url"),  # too long merged
        ({"url": "javascript:alert(1)", "campaign": "bf"}, "url"),
        ({"url": "https://s.example/"}, "campaign"),
        ({"url": "https://s.example/", "campaign": ""}, "campaign"),
        ({"url": "https://s.example/", "campaign": 7}, "campaign"),
        ({"url": "https://s.example/", "campaign": "x" * 201}, "campaign"),
        ({"url": "https://s.example/", "campaign": "a\x00b"}, "campaign"),
        ({"url": "https://s.example/", "campaign": "bf", "recipient": ["r"]}, "recipient"),
        ({"url": "https://s.example/", "campaign": "bf", "utm": "x"}, "utm"),
        ({"url": "https://s.example/", "campaign": "bf", "utm": {"src": "x"}}, "utm.src"),
        ({"url": "https://s.example/", "campaign": "bf", "utm": {"source": 1}}, "utm.source"),
        ({"url": "https://s.example/", "campaign": "bf", "expires_at": "tomorrow"}, "expires_at"),
        ({"url": "https://s.example/", "campaign": "bf", "expires_at": "2030-01-01T00:00:00"},
         "expires_at"),
        ({"url": "https://s.example/", "campaign": "bf", "expires_at": "2001-01-01T00:00:00Z"},
         "expires_at"),
        ({"url": "https://s.example/", "campaign": "bf", "metadata": [1]}, "metadata"),
        ({"url": "https://s.example/", "campaign": "bf", "metadata": {"x": "y" * 3000}},
         "metadata"),
        ({"url": "https://s.example/", "campaign": "bf", "colour": "red"}, "colour"),
    ],
)
def test_each_bad_field_is_named(body: dict[str, Any], field: str) -> None:
    assert field in [e["field"] for e in errors_of(link_spec, body, D, NOW)]


def test_every_bad_field_is_reported_at_once() -> None:
    errs = errors_of(link_spec, {"url": "ftp://x", "campaign": 1, "utm": 2}, D, NOW)
    assert {e["field"] for e in errs} == {"url", "campaign", "utm"}


def test_batch_of_link_objects_names_index_and_field() -> None:
    good = {"url": "https://s.example/", "campaign": "bf", "recipient": "r"}
    errs = errors_of(link_batch, {"links": [good, {**good, "url": "nope"}, good,
                                            {**good, "campaign": None}]}, D, NOW, 100)
    assert [(e["index"], e["field"]) for e in errs] == [(1, "links[1].url"),
                                                        (3, "links[3].campaign")]


def test_batch_for_many_recipients() -> None:
    specs = link_batch({"url": "https://s.example/", "campaign": "bf",
                        "recipients": ["a", "b", "c"]}, D, NOW, 100)
    assert [s.recipient for s in specs] == ["a", "b", "c"]
    assert len({s.url for s in specs}) == 1
    errs = errors_of(link_batch, {"url": "https://s.example/", "campaign": "bf",
                                  "recipients": ["a", 5, ""]}, D, NOW, 100)
    assert [(e["index"], e["field"]) for e in errs] == [(1, "recipients[1]"), (2, "recipients[2]")]
    errs = errors_of(link_batch, {"url": "bad", "campaign": "bf", "recipients": ["a", "b"]},
                     D, NOW, 100)
    assert [e["field"] for e in errs] == ["url"]  # the shared field, reported once


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"links": []}, "links"),
        ({"links": "x"}, "links"),
        ({"links": [{}] * 11}, "links"),
        ({"recipients": ["r"] * 11, "url": "https://s.example/", "campaign": "c"}, "recipients"),
        ({"recipients": "r", "url": "https://s.example/", "campaign": "c"}, "recipients"),
        ({"links": [], "extra": 1}, "extra"),
        ({"nothing": 1}, "body"),
        ("a string", "body"),
        ([], "body"),
    ],
)
def test_batch_shape_errors(body: Any, field: str) -> None:
    assert field in [e["field"] for e in errors_of(link_batch, body, D, NOW, 10)]


def test_patch() -> None:
    assert link_patch({"disabled": True}, NOW) == {"disabled": True}
    assert link_patch({"expires_at": None}, NOW) == {"expires_at": None}
    assert link_patch({"expires_at": "2030-01-01T00:00:00+01:00"}, NOW) == {
        "expires_at": 1_893_452_400_000
    }
    for body, field in [({"disabled": "yes"}, "disabled"), ({}, "body"), ([], "body"),
                        ({"url": "https://x.example/"}, "url"), ({"expires_at": 5}, "expires_at")]:
        assert field in [e["field"] for e in errors_of(link_patch, body, NOW)]
