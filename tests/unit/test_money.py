from __future__ import annotations

from decimal import Decimal

import pytest

from tracker.money import CURRENCIES, check_currency, fmt, parse_amount


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.50", Decimal("12.50")), ("0", Decimal(0)), ("1000000", Decimal(1000000)),
     (" 9.99 ", Decimal("9.99")), ("0.123456", Decimal("0.123456"))],
)
def test_parse_amount(text: str, value: Decimal) -> None:
    assert parse_amount(text) == value


@pytest.mark.parametrize("text", ["-1", "1e5", "1,50", "abc", "", "1.1234567", "NaN", "Infinity"])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_floats_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_amount(12.5)  # type: ignore[arg-type]


def test_currencies() -> None:
    assert {"EUR", "USD", "GBP", "CHF", "INR", "BRL"} <= CURRENCIES
    assert check_currency("EUR") == "EUR"
    for bad in ("eur", "EURO", "XXX", "", None, 978):
        with pytest.raises(ValueError):
            check_currency(bad)


@pytest.mark.parametrize(("value", "text"), [(Decimal("12.5"), "12.50"), (Decimal(3), "3.00"),
                                             (Decimal("0.125"), "0.125")])
def test_fmt(value: Decimal, text: str) -> None:
    assert fmt(value) == text
