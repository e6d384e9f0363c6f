"""Exact money: decimal strings and ISO 4217 currency codes. Pure."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Active ISO 4217 codes (2024 list).
_ISO_4217 = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS
TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER
ZAR ZMW ZWG ZWL
"""
CURRENCIES = frozenset(_ISO_4217.split())

_AMOUNT = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$")


def parse_amount(text: str, *, allow_negative: bool = False) -> Decimal:
    """A decimal string ("12.50") to an exact Decimal; ValueError if it is not one.

    Floats are refused: 0.1 + 0.2 is not money.
    """
    if not isinstance(text, str) or not _AMOUNT.match(text.strip()):
        raise ValueError("must be a decimal string such as \"12.50\"")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("must be a decimal string such as \"12.50\"") from None
    if value < 0 and not allow_negative:
        raise ValueError("must not be negative")
    return value


def check_currency(code: object) -> str:
    if not isinstance(code, str) or code not in CURRENCIES:
        raise ValueError("must be an ISO 4217 currency code such as \"EUR\"")
    return code


def fmt(value: Decimal) -> str:
    """Canonical decimal string: no exponent, at least two places."""
    q = value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value
    return format(q, "f")
