from __future__ import annotations

import pytest

from tracker.identity import email_hash, identity_hash, normalise_email, normalise_phone, phone_hash


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+4917612345678", "+4917612345678"),
        ("+49 176 1234-5678", "+4917612345678"),
        ("+1 (650) 555-1234", "+16505551234"),
        ("004917612345678", "+4917612345678"),
        ("16505551234", None),  # digits alone could be national...
        ("0176 12345678", None),  # national format: no country code
        ("555-625-1199", None),
        ("+0123456789", None),
        ("+12", None),
        ("", None),
        ("phone", None),
    ],
)
def test_normalise_phone(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


def test_whatsapp_ids_are_international() -> None:
    # ... but WhatsApp's wa_id always carries the country code, without the plus
    assert normalise_phone("16505551234", international=True) == "+16505551234"
    assert normalise_phone("0176 12345678", international=True) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Jon.Snow@Example.COM ", "jon.snow@example.com"), ("nope", None), ("a@b", None)],
)
def test_normalise_email(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


def test_hashes_are_keyed_and_match_across_formats() -> None:
    a = phone_hash("secret-1", "+49 176 1234-5678")
    assert a == phone_hash("secret-1", "4917612345678", international=True)
    assert a == phone_hash("secret-1", "0049176 12345678")
    assert a != phone_hash("secret-2", "+4917612345678")  # another workspace, another hash
    assert a is not None and len(a) == 32 and "4917612345678" not in a
    assert email_hash("s", "Jon@Example.com") == email_hash("s", "jon@example.com")
    # a phone and an email never collide by construction
    assert identity_hash("s", "phone", "x") != identity_hash("s", "email", "x")
    assert phone_hash("s", None) is None and phone_hash("s", "0176") is None
