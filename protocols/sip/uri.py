"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966) and 19.1.4 comparison.

Parts are kept as written (escapes included) so that ``str(parse_uri(s)) == s``
for well-formed input; comparison unescapes and folds case where 19.1.4 says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote as _pct_unquote

from protocols.sip.errors import SipError
from protocols.sip.grammar import (
    Params,
    format_params,
    get_param,
    has_param,
    parse_params,
    remove_param,
    set_param,
)

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# user = 1*( unreserved / escaped / user-unreserved ), user-unreserved = & = + $ , ; ? /
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?\.?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_HEADER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")
_OPAQUE_RE = re.compile(r"[^\s<>\"]+")

# uri-parameters that must match when either side has them (19.1.4).
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def _check_host(host: str) -> None:
    if host[:1] == "[":
        if _IPV6_RE.fullmatch(host) is None:
            raise SipError(f"bad IPv6 reference {host!r}")
    elif _HOSTNAME_RE.fullmatch(host) is None:
        raise SipError(f"bad host {host!r}")


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` with IPv6 references; validated, host kept as written."""
    if text[:1] == "[":
        close = text.find("]")
        host, rest = text[: close + 1], text[close + 1 :]
        if close < 0 or (rest and rest[0] != ":"):
            raise SipError(f"bad IPv6 hostport {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    _check_host(host)
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise SipError(f"bad port in {text!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class SipUri:
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
        return get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return has_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        return replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> SipUri:
        return replace(self, params=remove_param(self.params, name))

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
        mine = {k.lower(): _fold(v) for k, v in self.params}
        theirs = {k.lower(): _fold(v) for k, v in other.params}
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


def _fold(value: str | None) -> str | None:
    return None if value is None else _pct_unquote(value).lower()


def parse_uri(text: str) -> Uri:
    """Parse a URI; unknown schemes give ``AbsoluteUri``, malformed input SipError 400."""
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise SipError(f"bad URI {text!r}")
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return parse_sip_uri(scheme, rest)
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
    main, qmark, header_text = rest.partition("?")
    user = password = None
    at = main.rfind("@")
    if at >= 0:
        userinfo, main = main[:at], main[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if _USER_RE.fullmatch(user) is None:
            raise SipError(f"bad user part {userinfo!r}")
        if colon:
            if _PASSWORD_RE.fullmatch(pw) is None:
                raise SipError("bad password part")
            password = pw
    hostport, semi, param_text = main.partition(";")
    host, port = split_hostport(hostport)
    params = parse_params(param_text) if semi else ()
    headers: tuple[tuple[str, str], ...] = ()
    if qmark:
        pairs = []
        for item in header_text.split("&"):
            name, _, value = item.partition("=")
            if not name or _HEADER_RE.fullmatch(name + value) is None:
                raise SipError(f"bad URI header {item!r}")
            pairs.append((name, value))
        headers = tuple(pairs)
    return SipUri(scheme, host, user, password, port, params, headers)
