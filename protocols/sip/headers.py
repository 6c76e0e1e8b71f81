"""Typed SIP header values (RFC 3261 sections 20 and 25.1; RFC 3326 Reason).

Each ``parse_*`` takes one header value (one list element for list headers)
and returns a frozen record whose ``str()`` is its wire form. Params keep their
values as written (quotes included) so serialization is exact; ``param()``
returns them unquoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from protocols.sip.errors import SipError
from protocols.sip.grammar import (
    Params,
    distinct,
    find_quote_end,
    format_params,
    get_param,
    has_param,
    is_token,
    parse_params,
    quote,
    remove_param,
    set_param,
    split_outside,
    unquote,
)
from protocols.sip.uri import HOST, SipUri, Uri, parse_uri, port_number, uri_header_pairs

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
# sent-protocol LWS sent-by *( SEMI via-params ), RFC 3261 section 20.42 / 25.1.
_VIA_RE = re.compile(
    rf"({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+({HOST})"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*(?:;(.*))?",
    re.DOTALL,
)
# name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, then the header's params.
_NAME_ADDR_RE = re.compile(
    r'(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"[ \t]*|([A-Za-z0-9\-.!%*_+`\'~ \t]*))'
    r"<([^<>\s]*)>[ \t]*(?:;(.*))?",
    re.DOTALL,
)
# The common case in one pass: [display-name] <sip:user@host:port;params> ;params.
# Anything else (other schemes, escapes, addr-spec, an "@" after the host part,
# which the general path would take as the end of the userinfo) takes
# _parse_any_name_addr.
_SIP_NAME_ADDR_RE = re.compile(
    r'(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"[ \t]*|([A-Za-z0-9\-.!%*_+`\'~ \t]*))'
    r"<([Ss][Ii][Pp][Ss]?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/%]+)"
    r"(?::([A-Za-z0-9\-_.!~*'()&=+$,%]*))?@)?"
    rf"({HOST})(?::([0-9]{{1,5}}))?(?:;([^?<>\s@]*))?(?:\?([^<>\s@]*))?>[ \t]*(?:;(.*))?",
    re.DOTALL,
)
_CSEQ_RE = re.compile(rf"([0-9]{{1,10}})[ \t]+({_TOKEN})")
_MAX_CSEQ = 2**31 - 1


def parse_uint(value: str, name: str, limit: int = 2**32 - 1) -> int:
    """A header made of 1*DIGIT (Content-Length, Max-Forwards, Expires...)."""
    text = value.strip(" \t")
    if not text.isdigit() or not text.isascii() or len(text) > 10 or int(text) > limit:
        raise SipError(f"bad {name} {value!r}")
    return int(text)


@distinct
class Via(NamedTuple):
    """One Via value (RFC 3261 section 20.42; rport of RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP"
    version: str = "2.0"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return (
            f"{self.protocol}/{self.version}/{self.transport} {self.host}{port}"
            f"{format_params(self.params)}"
        )

    @property
    def sent_protocol(self) -> str:
        return f"{self.protocol}/{self.version}/{self.transport}"

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return get_param(self.params, "received")

    @property
    def maddr(self) -> str | None:
        return get_param(self.params, "maddr")

    @property
    def ttl(self) -> int | None:
        value = get_param(self.params, "ttl")
        return None if value is None else parse_uint(value, "ttl", 255)

    @property
    def has_rport(self) -> bool:
        """The rport param is present, with or without a value."""
        return has_param(self.params, "rport")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by a server, None when absent or a bare flag."""
        value = get_param(self.params, "rport")
        return None if not value else parse_uint(value, "rport", 65535)

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> Via:
        return self._replace(params=set_param(self.params, name, value))

    def without_param(self, name: str) -> Via:
        return self._replace(params=remove_param(self.params, name))


def parse_via(value: str) -> Via:
    match = _VIA_RE.fullmatch(value.strip(" \t"))
    if match is None:
        raise SipError(f"bad Via {value!r}")
    protocol, version, transport, host, port, param_text = match.groups()
    params = parse_params(param_text) if param_text is not None else ()
    return Via(
        transport, host, None if port is None else port_number(port), params, protocol, version
    )


@distinct
class NameAddr(NamedTuple):
    """From, To, Contact, Route, Record-Route, Reply-To... (RFC 3261 section 20.10).

    ``display_name`` is unquoted; the value always serializes in name-addr form
    (``<uri>``), which is valid wherever addr-spec is.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        name = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    @property
    def expires(self) -> int | None:
        value = get_param(self.params, "expires")
        return None if value is None else parse_uint(value, "expires")

    @property
    def q(self) -> str | None:
        return get_param(self.params, "q")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        return self._replace(params=set_param(self.params, name, value))

    def without_param(self, name: str) -> NameAddr:
        return self._replace(params=remove_param(self.params, name))

    def with_tag(self, tag: str) -> NameAddr:
        return self.with_param("tag", tag)


def parse_name_addr(value: str) -> NameAddr:
    text = value.strip(" \t")
    match = _SIP_NAME_ADDR_RE.fullmatch(text)
    if match is None:
        return _parse_any_name_addr(text)
    quoted, tokens, scheme, user, password, host, port, uri_params, uri_headers, params = (
        match.groups()
    )
    if user is not None and ("%" in user or (password is not None and "%" in password)):
        return _parse_any_name_addr(text)  # let the general path check the escapes
    uri = SipUri(
        scheme,
        host,
        user,
        password,
        None if port is None else port_number(port),
        () if uri_params is None else parse_params(uri_params),
        () if uri_headers is None else uri_header_pairs(uri_headers),
    )
    return NameAddr(
        uri,
        _display_name(quoted, tokens),
        () if params is None else parse_params(params),
    )


def _display_name(quoted: str | None, tokens: str) -> str | None:
    if quoted is not None:
        return unquote(f'"{quoted}"') if "\\" in quoted else quoted
    return tokens.strip(" \t") or None


def _parse_any_name_addr(text: str) -> NameAddr:
    """Every form: name-addr with any URI scheme, or addr-spec (RFC 3261 section 20.10)."""
    match = _NAME_ADDR_RE.fullmatch(text)
    if match is not None:
        quoted, tokens, uri_text, param_text = match.groups()
        display = _display_name(quoted, tokens)
    elif "<" in text:
        raise SipError(f"bad name-addr {text[:80]!r}")
    else:
        # addr-spec: params after the URI belong to the header, not to the URI.
        display = None
        uri_text, semi, ptext = text.partition(";")
        param_text = ptext if semi else None
    params = parse_params(param_text) if param_text is not None else ()
    return NameAddr(parse_uri(uri_text.strip(" \t")), display, params)


@distinct
class CSeq(NamedTuple):
    """RFC 3261 section 20.16."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    match = _CSEQ_RE.fullmatch(value.strip(" \t"))
    if match is None or int(match[1]) > _MAX_CSEQ:
        raise SipError(f"bad CSeq {value[:40]!r}")
    return CSeq(int(match[1]), match[2])


@dataclass(frozen=True, slots=True)
class AuthValue:
    """A challenge or credentials (RFC 3261 sections 20.7, 20.27, 20.28, 20.44).

    Param values are kept as written; build quoted ones with ``grammar.quote``:
    ``AuthValue("Digest", (("username", quote("bob")), ("nc", "00000001")))``.
    """

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    def __str__(self) -> str:
        if self.token68 is not None:
            return f"{self.scheme} {self.token68}"
        return self.scheme + " " + ", ".join(f"{k}={v}" for k, v in self.params)

    def param(self, name: str) -> str | None:
        """The unquoted value of ``name`` (case-insensitive)."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return unquote(value)
        return None

    @property
    def param_dict(self) -> dict[str, str]:
        """Lower-cased names -> unquoted values."""
        return {key.lower(): unquote(value) for key, value in self.params}


def parse_auth(value: str) -> AuthValue:
    text = value.strip(" \t")
    scheme, _, rest = text.partition(" ")
    if not is_token(scheme):
        raise SipError(f"bad auth scheme in {value!r}")
    rest = rest.strip(" \t")
    if rest and "=" not in rest.rstrip("="):
        return AuthValue(scheme, (), rest)
    params: list[tuple[str, str]] = []
    for item in split_outside(rest, ","):
        name, eq, val = item.partition("=")
        name, val = name.strip(" \t"), val.strip(" \t")
        if not name and not eq:
            continue
        if not (eq and is_token(name) and val):
            raise SipError(f"bad auth-param {item!r}")
        if val[0] == '"' and find_quote_end(val, 0) != len(val):
            raise SipError(f"bad quoted auth-param {item!r}")
        if val[0] != '"' and not is_token(val):
            raise SipError(f"bad auth-param value {item!r}")
        params.append((name, val))
    return AuthValue(scheme, tuple(params))


@dataclass(frozen=True, slots=True)
class ContentType:
    """RFC 3261 section 20.15 (media-type)."""

    type: str
    subtype: str
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"

    @property
    def mime(self) -> str:
        """``type/subtype`` lower-cased, for comparisons."""
        return f"{self.type}/{self.subtype}".lower()

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)


def parse_content_type(value: str) -> ContentType:
    media, semi, param_text = value.strip(" \t").partition(";")
    mtype, slash, subtype = media.partition("/")
    mtype, subtype = mtype.strip(" \t"), subtype.strip(" \t")
    if not (slash and is_token(mtype) and is_token(subtype)):
        raise SipError(f"bad Content-Type {value!r}")
    return ContentType(mtype, subtype, parse_params(param_text) if semi else ())


@dataclass(frozen=True, slots=True)
class Reason:
    """RFC 3326 Reason: ``Q.850;cause=16;text="Normal call clearing"``."""

    protocol: str
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.protocol}{format_params(self.params)}"

    @property
    def cause(self) -> int | None:
        value = get_param(self.params, "cause")
        return None if value is None else parse_uint(value, "Reason cause", 65535)

    @property
    def text(self) -> str | None:
        return get_param(self.params, "text")


def parse_reason(value: str) -> Reason:
    protocol, semi, param_text = value.strip(" \t").partition(";")
    protocol = protocol.strip(" \t")
    if not is_token(protocol):
        raise SipError(f"bad Reason {value!r}")
    return Reason(protocol, parse_params(param_text) if semi else ())
