"""Parsing SIP messages from bytes (RFC 3261 sections 7, 7.3.1, 7.5, 18.3, 25.1).

One pass: decode the header section, unfold continuation lines, split lines,
canonicalize names. Values are left as text; ``SipMessage`` parses them when
asked. Any malformed input raises ``SipError`` with the status to answer, and,
once the header lines are read, the message as far as it was read
(``SipError.message``): a UAS answers from its Via, From, To, Call-ID and CSeq
(RFC 3261 section 8.2) without parsing the bytes a second time.

A header that the grammar allows only once (section 7.3.1: To, From, Call-ID,
CSeq, Max-Forwards, Content-Length) appearing twice is refused with 400: two
readers of the same message could otherwise act on different values.
"""

from __future__ import annotations

import re

from protocols.sip.errors import SipError
from protocols.sip.grammar import AS_WRITTEN, CANONICAL, TOKEN_RE
from protocols.sip.message import (
    SIP_VERSION,
    SipRequest,
    SipResponse,
)

MAX_MESSAGE_SIZE = 65535
MAX_HEADERS = 256
# Headers whose grammar has one value (RFC 3261 section 20) and that a UAS and
# the transaction layer act on: a second one is a 400, not silently ignored.
SINGLE_HEADERS = ("To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")

_FOLD_RE = re.compile(r"\r\n[ \t]+")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_SUPPORTED_SCHEMES = frozenset(("sip", "sips", "tel"))
# Methods of RFC 3261 and its extensions, known to be tokens without a regex.
_METHODS = frozenset(
    [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "UPDATE",
        "INFO",
        "REFER",
        "NOTIFY",
        "SUBSCRIBE",
        "MESSAGE",
        "PUBLISH",
    ]
)


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> SipRequest | SipResponse:
    """A whole message in one datagram (RFC 3261 section 18.3).

    Content-Length absent: the body is the rest of the datagram. Present and
    larger than what arrived: 400. Bytes after the body are discarded.
    """
    if len(data) > max_size:
        _refuse_oversized(data, max_size)
    start = 0
    while data.startswith(b"\r\n", start):  # 7.5: ignore CRLFs before the start line
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipError("no empty line after the headers")
    head = parse_head(data[start : end + 2])
    body_start = end + 4
    length = head.content_length
    if length is None:
        return head.message(data[body_start:], None)
    if body_start + length > len(data):
        raise SipError(
            f"Content-Length {length} exceeds the {len(data) - body_start} body bytes",
            message=head.partial(),
        )
    stop = body_start + length
    raw = data if start == 0 and stop == len(data) else data[start:stop]
    return head.message(data[body_start:stop], raw)


def _refuse_oversized(data: bytes, max_size: int) -> None:
    """413, with the header section when one is found (so it can be answered).

    The search and the parse stop at what a message may hold at most, so a
    flood of large datagrams costs no more than one of the largest accepted.
    """
    error = SipError(f"message of {len(data)} bytes", 413)
    start = len(data) - len(data.lstrip(b"\r\n"))
    end = data.find(b"\r\n\r\n", start, start + max(max_size, MAX_MESSAGE_SIZE))
    if end >= 0:
        try:
            error.message = parse_head(data[start : end + 2]).partial()
        except SipError as exc:
            error.message = exc.message
    raise error


class Head:
    """A parsed start line and header section, waiting for its body."""

    __slots__ = ("content_length", "names", "start", "values")

    def __init__(
        self,
        start: tuple[str, str, int],
        names: list[str],
        values: list[str],
        content_length: int | None,
    ) -> None:
        # (method, Request-URI, -1) for a request, ("", reason phrase, status) for a response
        self.start = start
        self.names = names
        self.values = values
        self.content_length = content_length

    def message(self, body: bytes, raw: bytes | None) -> SipRequest | SipResponse:
        """The message; ``raw`` is reused by ``serialize()`` when the length is declared."""
        names, values = self.names, self.values
        if self.content_length is None:
            names, values = [*names, "Content-Length"], [*values, str(len(body))]
            raw = None
        method_or_empty, text, status = self.start
        fields = names, values
        if status < 0:
            return SipRequest(method_or_empty, text, None, body, raw=raw, fields=fields)
        return SipResponse(status, text, None, body, raw=raw, fields=fields)

    def partial(self) -> SipRequest | SipResponse:
        """The message without its body, for answering a refused one."""
        return self.message(b"", None)


def parse_head(data: bytes) -> Head:
    """Start line and header lines: ``data`` runs up to the CRLF ending the last one.

    Split on CRLF, then on the first colon (C-speed string methods beat one
    regex pass here); a bare CR or LF, which would let a value smuggle a line
    in when forwarded, is refused.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise SipError("header section is not UTF-8") from exc
    if "\r\n " in text or "\r\n\t" in text:
        text = _FOLD_RE.sub(" ", text)
    lines = text.split("\r\n")
    crlfs = len(lines) - 1
    if text.count("\r") != crlfs or text.count("\n") != crlfs or lines.pop():
        raise SipError("bare CR or LF in the header section")  # or no CRLF at the end
    if crlfs > MAX_HEADERS:
        raise SipError(f"more than {MAX_HEADERS} header lines", 413)
    if not lines:
        raise SipError("no start line")
    start_line = lines.pop(0)
    names, values = _split_fields(lines) if lines else ([], [])
    try:
        start = _parse_start_line(start_line)
        if len(set(names)) != len(names):  # one C pass; repeats are rare but for Via
            _check_single(names)
        content_length = None
        if "Content-Length" in names:
            content_length = _content_length(values[names.index("Content-Length")])
    except SipError as exc:
        exc.message = _partial(start_line, names, values)
        raise
    return Head(start, names, values, content_length)


def _check_single(names: list[str]) -> None:
    for name in SINGLE_HEADERS:
        if names.count(name) > 1:
            raise SipError(f"duplicate {name} header")


def _partial(start_line: str, names: list[str], values: list[str]) -> SipRequest | None:
    """A request as far as it was read, whatever its start line says, or None.

    A start line refused for its version, its Request-URI or its method still
    names a request whose headers can be answered; a status line is never
    answered.
    """
    if start_line[:4].upper() == "SIP/":
        return None
    method, _, rest = start_line.partition(" ")
    uri = rest.rpartition(" ")[0] or rest
    return SipRequest(method, uri, None, b"", fields=(names, values))


def _split_fields(lines: list[str]) -> tuple[list[str], list[str]]:
    """Canonical names and trimmed values of ``name: value`` lines."""
    get = AS_WRITTEN.get
    pairs = [line.split(":", 1) for line in lines]
    try:
        names = [get(name) or _other_name(name) for name, _ in pairs]
    except ValueError:  # a line without a colon does not unpack into two
        raise SipError("header line without a colon") from None
    return names, [value.strip(" \t") for _, value in pairs]


def _other_name(name: str) -> str:
    """A name not found as written: odd case, blanks before the colon, or an unknown token."""
    name = name.rstrip(" \t")
    canon = CANONICAL.get(name.lower())
    if canon is not None:
        return canon
    if TOKEN_RE.fullmatch(name) is None:
        raise SipError(f"bad header name {name[:40]!r}")
    return name


def _content_length(value: str) -> int:
    if not value.isdigit() or not value.isascii() or len(value) > 9:
        raise SipError(f"bad Content-Length {value!r}")
    return int(value)


def _parse_start_line(line: str) -> tuple[str, str, int]:
    if line[:4].upper() == "SIP/":
        return _parse_status_line(line)
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipError(f"bad request line {line[:60]!r}")
    method, uri, version = parts
    if version != SIP_VERSION:
        _check_version(version)
    if method not in _METHODS and TOKEN_RE.fullmatch(method) is None:
        raise SipError(f"bad method {method[:20]!r}")
    scheme, colon, _ = uri.partition(":")
    if scheme.lower() not in _SUPPORTED_SCHEMES:
        if not colon or _SCHEME_RE.fullmatch(scheme) is None:
            raise SipError(f"bad Request-URI {uri[:60]!r}")
        raise SipError(f"Request-URI scheme {scheme!r}", 416)
    return method, uri, -1


def _parse_status_line(line: str) -> tuple[str, str, int]:
    version, _, rest = line.partition(" ")
    _check_version(version)
    code, _, reason = rest.partition(" ")
    if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
        raise SipError(f"bad status line {line[:60]!r}")
    return "", reason, int(code)


def _check_version(version: str) -> None:
    if version.upper() != SIP_VERSION:
        if _VERSION_RE.fullmatch(version):
            raise SipError(f"SIP version {version!r}", 505)
        raise SipError(f"bad SIP version {version[:20]!r}")
