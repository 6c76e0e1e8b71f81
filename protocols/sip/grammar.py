"""SIP lexical rules (RFC 3261 section 25.1): tokens, quoted strings, lists, params.

Everything here works on ``str`` already split into one header value. The fast
paths matter: most values contain no quote and no angle bracket, and then
``str.split`` in C does the work.
"""

from __future__ import annotations

import re
from typing import TypeVar

from protocols.sip.errors import SipError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# The characters allowed in a param value without quoting: token plus the
# ``[`` ``]`` ``:`` of IPv6 references (received=, maddr=) and RFC 3261 pvalue
# (paramchar: unreserved / escaped / "[" / "]" / "/" / ":" / "&" / "+" / "$").
PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]/:&$()=?@]+")
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_QUOTED = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
# Beyond RFC 3261's pvalue: UTF-8 is accepted in param values, as RFC 4475's
# "intmeth" test expects of a tolerant parser.
_PVALUE = r"[A-Za-z0-9\-.!%*_+`'~\[\]/:&$()=?@\u0080-\U0010ffff]+"
# One ``;name[=value]`` with the LWS that SEMI and EQUAL allow around it.
# No two adjacent ``[ \t]*`` may share the same blanks: that would backtrack
# exponentially on hostile input.
_PARAM = r";[ \t]*{g}{name})[ \t]*(?:=[ \t]*{g}{value})[ \t]*)?"
_PARAM_VALUE = f"{_QUOTED}|{_PVALUE}"
_PARAM_OR_JUNK_RE = re.compile(
    _PARAM.format(g="(", name=_TOKEN, value=_PARAM_VALUE) + "|(.)", re.DOTALL
)
# Params that need none of the general grammar: tokens, each with an optional
# value of plain pvalue characters. A strict subset of what _PARAM_OR_JUNK_RE takes.
_PLAIN_VALUE = r"[A-Za-z0-9\-.!%*_+`'~\[\]/:&$()?@]+"
_PLAIN_PARAM = f"{_TOKEN}(?:={_PLAIN_VALUE})?"
_PLAIN_PARAMS_RE = re.compile(f"{_PLAIN_PARAM}(?:;{_PLAIN_PARAM})*")
_ESCAPED_IN_QUOTES = re.compile(r'["\\]')
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

# RFC 3261 section 7.3.3 and the IANA registry: compact form -> canonical name.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "y": "Identity",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}

_CANONICAL_NAMES = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Remote-Party-ID",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
]

# Lower-case name (long or compact) -> canonical spelling.
CANONICAL: dict[str, str] = {name.lower(): name for name in _CANONICAL_NAMES}
CANONICAL.update(COMPACT_FORMS)
CANONICAL_TO_COMPACT: dict[str, str] = {v: k for k, v in COMPACT_FORMS.items()}
# The spellings seen on the wire (canonical, lower-case, upper-case compact) ->
# canonical: the parser tries this before lower-casing the name.
AS_WRITTEN: dict[str, str] = {
    **CANONICAL,
    **{name: name for name in _CANONICAL_NAMES},
    **{short.upper(): name for short, name in COMPACT_FORMS.items()},
}

# Headers whose grammar is a comma-separated list (RFC 3261 section 7.3.1: "Multiple
# header field rows ... if and only if the entire field-value ... is defined as a
# comma-separated list"). The credentials and challenge headers are NOT lists of
# values: their commas separate auth-params.
LIST_HEADERS: frozenset[str] = frozenset(
    [
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Diversion",
        "Error-Info",
        "History-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Privacy",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Request-Disposition",
        "Require",
        "Route",
        "Security-Client",
        "Security-Server",
        "Security-Verify",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    ]
)


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name, validating unknown ones as tokens."""
    canon = CANONICAL.get(name.lower())
    if canon is not None:
        return canon
    if TOKEN_RE.fullmatch(name) is None:
        raise SipError(f"bad header name {name!r}")
    return name


def is_token(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


def quote(text: str) -> str:
    """A quoted-string holding ``text`` (backslash-escaping ``"`` and ``\\``)."""
    return '"' + _ESCAPED_IN_QUOTES.sub(r"\\\g<0>", text) + '"'


def unquote(text: str) -> str:
    """The content of a quoted-string, or ``text`` itself when it is not quoted."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" in inner:
            return _QUOTED_PAIR.sub(r"\1", inner)
        return inner
    return text


def find_quote_end(text: str, start: int) -> int:
    """Index just past the quoted-string opening at ``text[start]``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SipError("unterminated quoted string")


def split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is outside quoted strings and ``<...>``."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i = find_quote_end(text, i)
            continue
        if ch == "<":
            close = text.find(">", i)
            if close < 0:
                raise SipError("unterminated <")
            i = close + 1
            continue
        if ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_list(value: str) -> list[str]:
    """The elements of a comma-separated header value (empty elements dropped)."""
    if "," not in value:
        value = value.strip(" \t")
        return [value] if value else []
    return [part.strip(" \t") for part in split_outside(value, ",") if part.strip(" \t")]


Params = tuple[tuple[str, str | None], ...]
_R = TypeVar("_R", bound=tuple[object, ...])


def parse_params(text: str) -> Params:
    """``name=value;flag`` (the text after the first ``;``) as ordered pairs.

    Names keep their case (params compare case-insensitively through
    ``param``); values keep their quotes so that serialization is exact.
    """
    if _PLAIN_PARAMS_RE.fullmatch(text) is not None:
        # The common case (branch=z9hG4bK..;rport, tag=..): no LWS, quotes or
        # "=" inside values, so str methods split it exactly as the regex would.
        return tuple([_plain_param(item) for item in text.split(";")])
    return parse_params_general(text)


def parse_params_general(text: str) -> Params:
    """``parse_params`` for every form the grammar allows (LWS, quoted values).

    One regex pass: anything that is not a well-formed param lands in the last
    group, one character at a time, and makes the whole value invalid.
    """
    found = _PARAM_OR_JUNK_RE.findall(";" + text)
    for _, _, junk in found:
        if junk:
            raise SipError(f"bad parameters {text[:60]!r}")
    return tuple([(name, value or None) for name, value, _ in found])


def _plain_param(item: str) -> tuple[str, str | None]:
    name, eq, value = item.partition("=")
    return name, value if eq else None


def get_param(params: Params, name: str) -> str | None:
    """The unquoted value of param ``name`` (case-insensitive), "" for a flag."""
    lname = name.lower()
    for key, value in params:
        if key == name or key.lower() == lname:  # as written, usually: skip the lower()
            return "" if value is None else unquote(value)
    return None


def has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(key.lower() == lname for key, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    """``params`` with ``name`` set to ``value`` (replaced in place or appended)."""
    if not has_param(params, name):
        return (*params, (name, value))
    lname = name.lower()
    return tuple((name, value) if key.lower() == lname else (key, v) for key, v in params)


def remove_param(params: Params, name: str) -> Params:
    lname = name.lower()
    return tuple((key, v) for key, v in params if key.lower() != lname)


def distinct(cls: type[_R]) -> type[_R]:
    """Make a NamedTuple record equal only to its own type, not to any equal tuple.

    The header and URI records are NamedTuples rather than frozen dataclasses:
    they are built on every parsed message, and a frozen dataclass's __init__
    (object.__setattr__ per field) costs three times as much. They stay
    immutable; this restores dataclass equality on top.
    """
    setattr(cls, "__eq__", _record_eq)  # noqa: B010 (mypy refuses a method assignment)
    setattr(cls, "__ne__", _record_ne)  # noqa: B010
    setattr(cls, "__hash__", tuple.__hash__)  # noqa: B010
    return cls


def _record_eq(self: tuple[object, ...], other: object) -> bool:
    return type(other) is type(self) and tuple.__eq__(self, other)


def _record_ne(self: tuple[object, ...], other: object) -> bool:
    return not _record_eq(self, other)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)
