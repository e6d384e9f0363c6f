"""How an order's wait for a click id is stored (joins.waiting_orders / wait_value)."""

from __future__ import annotations

import json

import pytest

from tracker.joins import wait_value, waiting_orders


@pytest.mark.parametrize(("stored", "expected"), [
    (None, ([], None)),
    ("", ([], None)),
    # stored before waits kept their time: a bare list
    (json.dumps(["o2", "o1"]), (["o2", "o1"], None)),
    (json.dumps({"orders": ["o1"], "since": 1_790_000_000_000}), (["o1"], 1_790_000_000_000)),
])
def test_waiting_orders(stored: str | None, expected: tuple[list[str], int | None]) -> None:
    assert waiting_orders(stored) == expected


def test_a_wait_keeps_each_order_once_in_order_with_its_time() -> None:
    value = wait_value(["o2", "o1", "o2"], 5)
    assert waiting_orders(value) == (["o1", "o2"], 5)
    assert value == wait_value({"o1", "o2"}, 5)  # (the same bytes: the sweep compares them)
