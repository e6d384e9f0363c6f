from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.attribution import (
    EMPTY,
    HOUR_MS,
    ClickRef,
    OrderState,
    attribute,
    clicks_needed_since,
    converter_contribution,
    kept_click,
    last_message_before,
    merge_order,
    message_state,
    micro,
    order_contribution,
)

T0 = 1_790_000_000_000


def click(cid: str, ts: int, recipient: str = "r1", campaign: str = "bf",
          human: bool = True) -> ClickRef:
    return ClickRef(cid, campaign, recipient, "code" + cid, ts, human)


def order(**kw: Any) -> OrderState:
    base: dict[str, Any] = {"order_id": "1", "ts": T0 + 10 * HOUR_MS, "total": "50.00",
                            "currency": "EUR", "source": "shopify"}
    return OrderState(**{**base, **kw})


@pytest.mark.parametrize(
    ("own", "customer", "window", "expected"),
    [
        # the order's own click wins over a later click of the customer
        ([click("a", T0)], [click("b", T0 + 5 * HOUR_MS)], 120, ("a", "click_id", 10)),
        # no own click: the customer's last human click before the order
        ([], [click("b", T0 + 2 * HOUR_MS), click("c", T0 + 9 * HOUR_MS, "r2")], 120,
         ("c", "last_click", 1)),
        # bots and previews never get an order
        ([click("a", T0, human=False)], [click("b", T0, human=False)], 120, None),
        # a click after the order cannot have caused it
        ([click("a", T0 + 11 * HOUR_MS)], [click("b", T0 + 12 * HOUR_MS)], 120, None),
        # the window decides whether the last click qualifies, not which click is last
        ([], [click("b", T0 - 200 * HOUR_MS)], 120, None),
        ([], [click("b", T0)], 10, None),  # exactly 10 h: outside a 10 h window
        ([], [click("b", T0 + 1)], 10, ("b", "last_click", 9)),
        # the order's own click, outside the window: not attributed at all
        ([click("a", T0 - 500 * HOUR_MS)], [click("b", T0)], 120, None),
        # ties: the same time, the greater click id (stable, whatever the arrival order)
        ([], [click("b", T0), click("c", T0, "r2")], 120, ("c", "last_click", 10)),
    ],
)
def test_attribute(own: list[ClickRef], customer: list[ClickRef], window: int,
                   expected: tuple[str, str, int] | None) -> None:
    got = attribute(order(), own, customer, window)
    assert (None if got is None else (got.click_id, got.method, got.hours)) == expected


def test_no_order_time_no_attribution() -> None:
    assert attribute(OrderState("1"), [click("a", T0)], [], 120) is None


def test_order_contribution() -> None:
    attr = attribute(order(), [click("a", T0)], [], 120)
    contrib = order_contribution(order(refunds={"r1": ("20.00", "EUR")}), attr)
    at = (T0 + 10 * HOUR_MS) // HOUR_MS
    assert contrib.counters == {
        # totals by hours from click to order (for any window)
        "orders:10": 1, "orders_by:click_id:10": 1, "orders_in:EUR:10": 1,
        "gross:EUR:10": micro("50.00"), "refunded:EUR:10": micro("20.00"),
        # the time series, by the hour the order was placed
        f"@orders:{at}": 1, f"@gross:EUR:{at}": micro("50.00"),
        f"@refunded:EUR:{at}": micro("20.00"),
        # by hours from click and order hour (a report over a range)
        f"%orders:10:{at}": 1, f"%orders_by:click_id:10:{at}": 1,
        f"%orders_in:EUR:10:{at}": 1, f"%gross:EUR:10:{at}": micro("50.00"),
        f"%refunded:EUR:10:{at}": micro("20.00"),
        # per link
        "#codea:orders": 1, "#codea:gross:EUR": micro("50.00"),
        "#codea:refunded:EUR": micro("20.00"),
    }
    assert contrib.row is not None and contrib.row["refunded"] == "20.00"
    # excluded: unattributed, test, cancelled, incomplete
    assert order_contribution(order(), None) == EMPTY
    assert order_contribution(order(test=True), attr) == EMPTY
    assert order_contribution(order(test=True), attr, include_test=True) != EMPTY
    assert order_contribution(order(cancelled=True), attr) == EMPTY
    assert order_contribution(OrderState("1", ts=T0), attr) == EMPTY
    # refunds never exceed the order
    big = order_contribution(order(refunds={"a": ("40", "EUR"), "b": ("40", "EUR")}), attr)
    assert big.counters["refunded:EUR:10"] == micro("50.00")


def test_converters_count_at_the_quickest_order() -> None:
    c = converter_contribution([(30, 100), (4, 120), (12, 90)]).counters
    assert {k: v for k, v in c.items() if not k.startswith("%")} == {"converters:4": 1}
    assert converter_contribution([]) == EMPTY
    # stored before order hours were kept: totals only
    assert converter_contribution([(30, None), (4, None)]).counters == {"converters:4": 1}


def _converter_hour(orders: list[tuple[int, int]], window: int) -> int | None:
    """Brute force: the hour of the earliest order inside the window."""
    inside = [at for h, at in orders if h < window]
    return min(inside) if inside else None


@pytest.mark.parametrize("orders", [
    [(30, 100), (4, 120), (12, 90)],
    [(0, 5)],
    [(3, 50), (3, 40), (7, 60), (1, 70), (9, 10)],
    [(2, 10), (2, 10), (5, 10)],
])
def test_converter_staircase_gives_the_earliest_order_hour_in_any_window(
        orders: list[tuple[int, int]]) -> None:
    stairs = {k: v for k, v in converter_contribution(orders).counters.items()
              if k.startswith("%")}
    for window in range(0, 40):
        by_hour: dict[int, int] = {}
        for key, n in stairs.items():
            _, h, at = key.split(":")
            if int(h) < window:
                by_hour[int(at)] = by_hour.get(int(at), 0) + n
        live = {at: n for at, n in by_hour.items() if n}
        want = _converter_hour(orders, window)
        assert live == ({} if want is None else {want: 1}), window


@pytest.mark.parametrize(
    ("bits", "state"),
    [(0, (0, False)), (1, (1, False)), (2, (2, False)), (4, (3, False)), (1 | 4, (3, False)),
     (8, (0, True)), (1 | 8, (1, True)), (2 | 8, (2, False)), (4 | 8, (3, False))],
)
def test_message_state(bits: int, state: tuple[int, bool]) -> None:
    # read implies delivered; failed only if the message never got past sent
    assert message_state(bits) == state


def test_last_message_before() -> None:
    msgs = [(T0, "a"), (T0 + 5 * HOUR_MS, "b"), (T0 + 50 * HOUR_MS, "c")]
    assert last_message_before(msgs, T0 + 6 * HOUR_MS, 120) == "b"
    assert last_message_before(msgs, T0 + 5 * HOUR_MS, 120) == "b"  # at the same instant
    assert last_message_before(msgs, T0 - 1, 120) is None
    assert last_message_before(msgs, T0 + 200 * HOUR_MS, 120) is None  # too long after
    assert last_message_before(msgs, T0 + 200 * HOUR_MS, 1000) == "c"


# -- merging order events: any order, any repeats, one state -------------------------------
ORDER_EVENTS: list[tuple[str, str, int, dict[str, Any]]] = [
    ("order", "shopify", T0, {"order_id": "1", "total": "89.90", "currency": "EUR",
                              "click_id": "cA", "phone_hashes": ["p1"], "test": False}),
    ("pixel_purchase", "pixel", T0 + 5, {"order_id": "1", "total": "99.00", "currency": "EUR",
                                         "click_id": "cB"}),
    ("refund", "shopify", T0 + HOUR_MS, {"order_id": "1", "refund_id": "r1", "amount": "10.00",
                                         "currency": "EUR"}),
    ("refund", "shopify", T0 + 2 * HOUR_MS, {"order_id": "1", "refund_id": "r2",
                                             "amount": "5.00", "currency": "EUR"}),
    ("order_cancelled", "shopify", T0 + 3 * HOUR_MS, {"order_id": "1"}),
    ("order", "api", T0, {"order_id": "1", "total": "89.90", "currency": "EUR",
                          "email_hash": "e1"}),
]


def fold(events: list[tuple[str, str, int, dict[str, Any]]]) -> OrderState:
    state = OrderState("1")
    for kind, src, ts, data in events:
        state = merge_order(state, kind, src, ts, data)
    return state


@given(st.lists(st.sampled_from(range(len(ORDER_EVENTS))), min_size=1, max_size=12))
def test_merging_is_order_independent_and_idempotent(picks: list[int]) -> None:
    events = [ORDER_EVENTS[i] for i in picks]
    reference = fold(sorted(events, key=lambda e: ORDER_EVENTS.index(e)))
    for perm in itertools.islice(itertools.permutations(events), 30):
        assert fold(list(perm)) == reference
    assert fold(events + events) == reference


def test_webhook_amounts_win_over_the_pixel() -> None:
    state = fold([ORDER_EVENTS[1], ORDER_EVENTS[0]])
    assert (state.total, state.source, state.ts) == ("89.90", "shopify", T0)
    assert state.click_id == "cA" and state.pixel_click_id == "cB"
    pixel_only = fold([ORDER_EVENTS[1]])
    assert (pixel_only.total, pixel_only.source) == ("99.00", "pixel")
    assert micro(fold(ORDER_EVENTS).refunded()) == micro("15.00")


def test_an_attribution_keeps_its_click_whole() -> None:
    """What an order stores of its attribution gives its click back, classes
    and all: after the sweep it is the order's only copy of the click."""
    ref = ClickRef("c1", "bf", "r1", "codec1", T0, True, ("mobile", "Android", "WhatsApp"))
    for method, own, customer in (("click_id", [ref], []), ("last_click", [], [ref])):
        attr = attribute(order(click_id="c1" if own else ""), own, customer, 120)
        assert attr is not None and attr.method == method
        assert kept_click(attr.as_json()) == (method, ref)
    assert kept_click(None) is None
    older = {"campaign": "bf", "recipient": "r1", "click_id": "c1", "code": "codec1",
             "click_ts": T0, "method": "last_click", "hours": 3}  # stored before classes
    assert kept_click(older) == ("last_click", ClickRef("c1", "bf", "r1", "codec1", T0))


DAY = 24 * HOUR_MS


@pytest.mark.parametrize(
    ("window_h", "late_ms", "retention_ms", "needed_since"),
    [
        (120, 8 * DAY, 90 * DAY, -90 * DAY),  # the defaults: the raw retention rules
        (120, 8 * DAY, 10 * DAY, -13 * DAY),  # a short retention: late orders' window
        (24 * 30, 8 * DAY, 30 * DAY, -38 * DAY),  # a long window
        (1, 0, 0, -HOUR_MS),
    ],
)
def test_clicks_needed_since(window_h: int, late_ms: int, retention_ms: int,
                             needed_since: int) -> None:
    assert clicks_needed_since(T0, window_h, late_ms, retention_ms) == T0 + needed_since
