"""Destination numbers: SMPP addresses (SMPP 3.4 5.2.5 addr_ton, 5.2.6 addr_npi) to E.164.

Every route, rate and prefix table is keyed by E.164 digits without '+'
(ITU-T E.164: a country code and at most 15 digits). An address becomes one by
its type of number:

* TON 1 (international), or any address written with '+' or the ITU '00'
  international prefix: the digits are already E.164;
* TON 2 (national) and TON 4 (subscriber number): national digits, which need
  the sender's ``default_region`` (ISO 3166 alpha-2, e.g. "GB") to gain their
  country code;
* TON 0 (unknown): national when a region is given and the digits make a
  national number there, else a short code (3..8 digits), else international,
  because ESMEs commonly send full international digits with TON 0;
* TON 3 (network specific) and TON 6 (abbreviated): short codes, 3..8 digits,
  kept as they are;
* TON 5 (alphanumeric) is a sender name, never a destination.

Numbers are checked with phonenumbers' per-country *possible lengths*
(libphonenumber's ``is_possible_number``), not its stricter ``is_valid_number``:
validity also checks allocated ranges, so it refuses Ofcom's drama range
(+44 7700 900xxx) and every block allocated after the metadata was cut, and a
carrier is the better judge of those. The international check runs on a cached
table of lengths per country code rather than ``phonenumbers.parse`` (about
27 us a call), because every MT message passes through here.
"""

from __future__ import annotations

import functools

import phonenumbers

from warpd.errors import RoutingError

TON_UNKNOWN, TON_INTERNATIONAL, TON_NATIONAL, TON_NETWORK_SPECIFIC = 0, 1, 2, 3
TON_SUBSCRIBER, TON_ALPHANUMERIC, TON_ABBREVIATED = 4, 5, 6
NPI_UNKNOWN, NPI_ISDN = 0, 1

SHORT_CODE_DIGITS = range(3, 9)
E164_MAX_DIGITS = 15
_SHORT_CODE_TONS = frozenset({TON_NETWORK_SPECIFIC, TON_ABBREVIATED})
_NATIONAL_TONS = frozenset({TON_NATIONAL, TON_SUBSCRIBER})
# Visual separators people type in HTTP requests; SMPP clients send bare digits.
_SEPARATORS = str.maketrans("", "", " -.()")
_NON_GEOGRAPHIC = "001"
_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE


class InvalidNumber(RoutingError):
    """An address that is not a usable destination; ``reason`` says why."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"invalid destination {address!r}: {reason}")
        self.address = address
        self.reason = reason


def normalize_msisdn(addr: str, ton: int, npi: int, *, default_region: str | None = None) -> str:
    """E.164 digits without '+' ("447700900123"), or a short code as sent ("12345")."""
    return _normalize(addr, ton, npi, default_region)


@functools.lru_cache(maxsize=65536)
def region_of(msisdn: str) -> str | None:
    """The ISO region of an E.164 number ("GB"); None for short codes and non-geographic codes.

    A number outside any allocated range still gets its country code's main
    region (+1 -> US, +44 -> GB): that is the region rates and reports need.
    """
    try:
        _international(msisdn, msisdn)
        number = phonenumbers.parse("+" + msisdn)
    except (InvalidNumber, phonenumbers.NumberParseException):
        return None
    region = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code or 0)
    )
    return None if region in ("ZZ", _NON_GEOGRAPHIC) else region


@functools.lru_cache(maxsize=65536)
def _normalize(addr: str, ton: int, npi: int, region: str | None) -> str:
    text = addr.strip().translate(_SEPARATORS)
    if ton == TON_ALPHANUMERIC:
        raise InvalidNumber(addr, "an alphanumeric address (TON 5) is a sender, not a destination")
    if not text:
        raise InvalidNumber(addr, "empty")
    if ton in _SHORT_CODE_TONS:
        return _short_code(addr, text, ton)
    if npi not in (NPI_UNKNOWN, NPI_ISDN):
        raise InvalidNumber(addr, f"numbering plan {npi} is not E.164 (NPI 0 or 1)")
    if text[0] == "+":
        return _international(addr, text[1:])
    if text.startswith("00"):
        return _international(addr, text[2:])
    if ton == TON_INTERNATIONAL:
        return _international(addr, text)
    _digits(addr, text)
    if ton in _NATIONAL_TONS:
        if region is None:
            raise InvalidNumber(addr, f"a national number (TON {ton}) needs a default region")
        return _national(addr, text, region)
    if ton != TON_UNKNOWN:
        raise InvalidNumber(addr, f"type of number {ton} is not supported")
    if region is not None:
        try:
            return _national(addr, text, region)
        except InvalidNumber:
            pass
    if len(text) in SHORT_CODE_DIGITS:
        return text
    return _international(addr, text)


def _digits(addr: str, text: str) -> None:
    if not (text.isascii() and text.isdigit()):
        raise InvalidNumber(addr, "not all digits")


def _short_code(addr: str, text: str, ton: int) -> str:
    _digits(addr, text)
    if len(text) not in SHORT_CODE_DIGITS:
        raise InvalidNumber(addr, f"a short code (TON {ton}) has 3 to 8 digits, not {len(text)}")
    return text


def _international(addr: str, digits: str, *, reread: bool = True) -> str:
    _digits(addr, digits)
    if len(digits) > E164_MAX_DIGITS:
        raise InvalidNumber(addr, f"{len(digits)} digits, E.164 allows at most 15")
    if digits[0] == "0":
        raise InvalidNumber(addr, "no country code starts with 0: national digits need a region")
    # ITU country codes are prefix-free: the first that is known is the one.
    for n in (1, 2, 3):
        lengths = _possible_lengths(int(digits[:n]))
        if lengths:
            break
    else:
        raise InvalidNumber(addr, "no such country code")
    if reread and digits[n : n + 1] == "0":
        # A trunk prefix written after the country code ("+44 (0)7400 ..."), or in
        # Italy part of the number: libphonenumber knows which, so it reads these.
        return _international(addr, _reread(addr, digits), reread=False)
    if len(digits) - n not in lengths:
        expected = "/".join(str(x) for x in sorted(lengths))
        raise InvalidNumber(
            addr, f"+{digits[:n]} numbers have {expected} digits after the country code"
        )
    return digits


def _reread(addr: str, digits: str) -> str:
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(addr, f"not a number: {exc}") from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _national(addr: str, digits: str, region: str) -> str:
    try:
        number = phonenumbers.parse(digits, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(addr, f"not a number in region {region}: {exc}") from None
    # Local-only lengths (no area code) are "possible" to libphonenumber, not to us.
    if phonenumbers.is_possible_number_with_reason(number) != _POSSIBLE:
        raise InvalidNumber(addr, f"not a possible number in region {region}")
    return _international(
        addr, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    )


@functools.cache
def _possible_lengths(country_code: int) -> frozenset[int]:
    """National significant number lengths for a country code; empty when unknown.

    Local-only lengths (a subscriber number without its area code) do not count:
    they cannot be dialled from abroad, and an SMS destination always is.
    """
    region = phonenumbers.region_code_for_country_code(country_code)
    if region == "ZZ":
        return frozenset()
    metadata = (
        phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
        if region == _NON_GEOGRAPHIC
        else phonenumbers.PhoneMetadata.metadata_for_region(region)
    )
    if metadata is None or metadata.general_desc is None:
        return frozenset()
    return frozenset(metadata.general_desc.possible_length)
