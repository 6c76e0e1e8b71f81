"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966) and 19.1.4 comparison.

Parts are kept as written (escapes included) so that ``str(parse_uri(s)) == s``
for well-formed input; comparison unescapes and folds case where 19.1.4 says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote as _pct_unquote

from protocols.sip.errors import SipError
from protocols.sip.grammar import (
    Params,
    distinct,
    format_params,
    get_param,
    has_param,
    parse_params,
    remove_param,
    set_param,
    unquote,
)

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# user = 1*( unreserved / escaped / user-unreserved ), user-unreserved = & = + $ , ; ? /
# userinfo = user [ ":" password ] "@"; escapes are checked apart (see _BAD_ESCAPE_RE)
# because an alternation per character makes the regex several times slower.
_USERINFO_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+(?::[A-Za-z0-9\-_.!~*'()&=+$,%]*)?")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# host = hostname / IPv4address / IPv6reference, checked loosely: the resolver and
# the socket layer decide whether a name or address is usable, the parser only
# that it cannot be confused with the parts around it.
HOST = r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9\-.]*"
_HOSTPART_RE = re.compile(
    rf"({HOST})(?::([0-9]{{1,5}}))?(?:;([^?]*))?(?:\?(.*))?",
    re.DOTALL,
)
_HEADER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")
_OPAQUE_RE = re.compile(r"[^\s<>\"]+")

# uri-parameters that must match when either side has them (19.1.4).
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def port_number(text: str) -> int:
    port = int(text)
    if port > 65535:
        raise SipError(f"port {port} out of range")
    return port


@distinct
class SipUri(NamedTuple):
    """``sip:`` / ``sips:`` URI; ``host`` keeps IPv6 brackets, ``user`` its escapes."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += (":", self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += (":", str(self.port))
        out.append(format_params(self.params))
        if self.headers:
            out += ("?", "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    def param(self, name: str) -> str | None:
        """The value of uri-parameter ``name``, "" for a flag; escapes count as
        their characters (19.1.4: ``;%6C%72`` is ``;lr``), in names and values."""
        params = self.params
        if not _has_escape(params):
            return get_param(params, name)
        lname = name.lower()
        for key, value in params:
            if _unescape_key(key) == lname:
                return "" if value is None else _pct_unquote(unquote(value))
        return None

    def has_param(self, name: str) -> bool:
        params = self.params
        if not _has_escape(params):
            return has_param(params, name)
        lname = name.lower()
        return any(_unescape_key(key) == lname for key, _ in params)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        params = self.params
        if not _has_escape(params) or not self.has_param(name):
            return self._replace(params=set_param(params, name, value))
        lname = name.lower()
        return self._replace(
            params=tuple((name, value) if _unescape_key(k) == lname else (k, v) for k, v in params)
        )

    def without_param(self, name: str) -> SipUri:
        params = self.params
        if not _has_escape(params):
            return self._replace(params=remove_param(params, name))
        lname = name.lower()
        return self._replace(params=tuple(p for p in params if _unescape_key(p[0]) != lname))

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value is not None else None

    @property
    def lr(self) -> bool:
        """Loose routing (RFC 3261 section 16.12)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def host_key(self) -> str:
        """The host folded for comparison and lookups (case-insensitive)."""
        return self.host.lower()

    def equivalent(self, other: object) -> bool:
        """URI equality of RFC 3261 section 19.1.4."""
        if not isinstance(other, SipUri):
            return False
        if self.scheme.lower() != other.scheme.lower() or self.port != other.port:
            return False
        if self.host.lower() != other.host.lower():
            return False
        if _unescape(self.user) != _unescape(other.user):
            return False
        if _unescape(self.password) != _unescape(other.password):
            return False
        mine = {_unescape_key(k): _fold(v) for k, v in self.params}
        theirs = {_unescape_key(k): _fold(v) for k, v in other.params}
        for key in _MUST_MATCH:
            if mine.get(key) != theirs.get(key):
                return False
        for key in mine.keys() & theirs.keys():
            if mine[key] != theirs[key]:
                return False
        return {(k.lower(), _unescape(v)) for k, v in self.headers} == {
            (k.lower(), _unescape(v)) for k, v in other.headers
        }


@dataclass(frozen=True, slots=True)
class TelUri:
    """``tel:`` URI (RFC 3966): the number as written and its parameters."""

    number: str
    params: Params = ()
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"{self.scheme}:{self.number}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 section 5.1.1)."""
        return "".join(ch for ch in self.number if ch not in "-.()")


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other absoluteURI (mailto:, urn:, http: ...) kept opaque."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


def _unescape(text: str | None) -> str | None:
    return None if text is None else _pct_unquote(text, errors="surrogateescape")


def _has_escape(params: Params) -> bool:
    # The common case (no "%" anywhere) keeps the plain lookups of grammar.py.
    return any("%" in key or (value is not None and "%" in value) for key, value in params)


def _unescape_key(key: str) -> str:
    return (_pct_unquote(key) if "%" in key else key).lower()


def _fold(value: str | None) -> str | None:
    return None if value is None else _pct_unquote(value).lower()


def parse_uri(text: str) -> Uri:
    """Parse a URI; unknown schemes give ``AbsoluteUri``, malformed input SipError 400."""
    scheme, colon, rest = text.partition(":")
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return parse_sip_uri(scheme, rest)
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise SipError(f"bad URI {text[:60]!r}")
    if lscheme == "tel":
        number, semi, params = rest.partition(";")
        if _TEL_NUMBER_RE.fullmatch(number) is None:
            raise SipError(f"bad tel URI {text!r}")
        return TelUri(number, parse_params(params) if semi else (), scheme)
    if _OPAQUE_RE.fullmatch(rest) is None:
        raise SipError(f"bad URI {text!r}")
    return AbsoluteUri(scheme, rest)


def parse_sip_uri(scheme: str, rest: str) -> SipUri:
    """The part of a sip:/sips: URI after the colon."""
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        if _USERINFO_RE.fullmatch(userinfo) is None or (
            "%" in userinfo and _BAD_ESCAPE_RE.search(userinfo)
        ):
            raise SipError(f"bad userinfo {userinfo[:60]!r}")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    match = _HOSTPART_RE.fullmatch(rest)
    if match is None:
        raise SipError(f"bad SIP URI host part {rest[:60]!r}")
    host, port, param_text, header_text = match.groups()
    params = parse_params(param_text) if param_text is not None else ()
    headers = uri_header_pairs(header_text) if header_text is not None else ()
    return SipUri(
        scheme, host, user, password, None if port is None else port_number(port), params, headers
    )


def uri_header_pairs(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.split("&"):
        name, _, value = item.partition("=")
        if not name or _HEADER_RE.fullmatch(name + value) is None:
            raise SipError(f"bad URI header {item!r}")
        pairs.append((name, value))
    return tuple(pairs)
