"""Number normalisation: SMPP TON/NPI addresses to E.164 digits, against phonenumbers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from warpd.errors import RoutingError
from warpd.routing.numbers import InvalidNumber, normalize_msisdn, region_of

GB_MOBILE = "447400123456"  # a number libphonenumber holds valid for GB


@pytest.mark.parametrize(
    ("addr", "ton", "npi", "region", "expected"),
    [
        ("447400123456", 1, 1, None, GB_MOBILE),
        ("+447400123456", 1, 1, None, GB_MOBILE),
        ("+447400123456", 0, 0, None, GB_MOBILE),
        ("00447400123456", 0, 1, None, GB_MOBILE),
        ("00447400123456", 1, 1, None, GB_MOBILE),
        # TON 0 with full international digits: what many ESMEs send.
        ("447400123456", 0, 0, None, GB_MOBILE),
        ("07400123456", 2, 1, "GB", GB_MOBILE),
        ("07400123456", 0, 1, "GB", GB_MOBILE),
        ("07400123456", 4, 1, "gb", GB_MOBILE),
        # With a region, international digits that are no national number stay international.
        ("447400123456", 0, 1, "GB", GB_MOBILE),
        ("12345678", 0, 1, "DK", "4512345678"),
        # Ofcom's drama range: possible, though libphonenumber does not hold it valid.
        ("+447700900123", 1, 1, None, "447700900123"),
        ("+1 (202) 555-0123", 1, 1, None, "12025550123"),
        ("  +33612345678 ", 1, 1, None, "33612345678"),
        # A trunk prefix after the country code is dropped; Italy's leading zero is kept.
        ("+44 (0)7400 123456", 1, 1, None, GB_MOBILE),
        ("+390612345678", 1, 1, None, "390612345678"),
        # Short codes, kept as sent.
        ("12345", 3, 0, None, "12345"),
        ("123", 0, 0, None, "123"),
        ("12345678", 0, 0, None, "12345678"),
        ("60000", 6, 9, None, "60000"),
        ("12345", 0, 1, "GB", "12345"),
    ],
)
def test_valid_addresses(addr: str, ton: int, npi: int, region: str | None, expected: str) -> None:
    assert normalize_msisdn(addr, ton, npi, default_region=region) == expected


@pytest.mark.parametrize(
    ("addr", "ton", "npi", "region", "reason"),
    [
        ("MyBrand", 5, 0, None, "alphanumeric"),
        ("447400123456", 5, 0, None, "alphanumeric"),
        ("", 1, 1, None, "empty"),
        ("+", 1, 1, None, "not all digits"),
        ("+44740012345a", 1, 1, None, "not all digits"),
        ("+44٧400123456", 1, 1, None, "not all digits"),  # Arabic-Indic digit
        ("+4474001", 1, 1, None, "digits after the country code"),
        ("+4474001234567890", 1, 1, None, "at most 15"),
        ("+999123456789", 1, 1, None, "no such country code"),
        ("07400123456", 2, 1, None, "needs a default region"),
        ("07400123456", 0, 1, None, "national digits need a region"),
        ("0740", 2, 1, "GB", "not a possible number"),
        ("123456789", 3, 0, None, "3 to 8 digits"),
        ("12", 3, 0, None, "3 to 8 digits"),
        ("12a45", 3, 0, None, "not all digits"),
        ("447400123456", 1, 3, None, "numbering plan 3"),
        ("447400123456", 7, 1, None, "type of number 7"),
        ("12", 0, 0, None, "digits after the country code"),
    ],
)
def test_invalid_addresses(addr: str, ton: int, npi: int, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason) as info:
        normalize_msisdn(addr, ton, npi, default_region=region)
    assert isinstance(info.value, RoutingError)
    assert info.value.address == addr
    assert reason in info.value.reason


def test_region_of() -> None:
    assert region_of(GB_MOBILE) == "GB"
    assert region_of("12025550123") == "US"
    assert region_of("33612345678") == "FR"
    # Unallocated but possible: the country code's main region.
    assert region_of("447700900123") == "GB"
    assert region_of("12345") is None  # a short code
    assert region_of("80012345678") is None  # international freephone, no region
    assert region_of("not digits") is None


@given(st.text(alphabet="0123456789", min_size=1, max_size=16))
def test_fast_international_check_is_never_laxer_than_phonenumbers(digits: str) -> None:
    """What we accept as E.164, libphonenumber also holds possible and reads the same way."""
    try:
        out = normalize_msisdn(digits, 1, 1)
    except InvalidNumber:
        return
    # "00" is the international prefix, as a dialler would read it.
    number = phonenumbers.parse("+" + digits.removeprefix("00"))
    assert phonenumbers.is_possible_number(number)
    assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == "+" + out


@pytest.mark.parametrize(
    "number",
    ["447400123456", "12025550123", "4915112345678", "33612345678", "8613800138000",
     "79161234567", "5511912345678", "61412345678", "390612345678", "2348031234567"],
)  # fmt: skip
def test_real_numbers_are_accepted(number: str) -> None:
    assert phonenumbers.is_valid_number(phonenumbers.parse("+" + number))
    assert normalize_msisdn("+" + number, 1, 1) == number
