"""What SIP requests and responses share (RFC 3261 sections 7.3, 7.4 and 20).

A message holds its header lines as ``(canonical name, value)`` pairs in wire
order, its body, and the bytes it came from. Typed header values (``via``,
``from_``, ``cseq``...) are parsed on first access and cached;
``serialize()`` of an unmodified message returns the original bytes. Every
``with_*``/``without_*`` returns a new message whose Content-Length is kept
equal to its body. The start lines live in ``protocols.sip.message``, parsing
in ``protocols.sip.parser``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar, cast

from protocols.sip.errors import SipError
from protocols.sip.grammar import (
    CANONICAL,
    CANONICAL_TO_COMPACT,
    LIST_HEADERS,
    canonical_name,
    split_list,
)
from protocols.sip.headers import (
    AuthValue,
    ContentType,
    CSeq,
    NameAddr,
    Reason,
    Via,
    parse_auth,
    parse_content_type,
    parse_cseq,
    parse_name_addr,
    parse_reason,
    parse_uint,
    parse_via,
)

Header = tuple[str, str]
HeaderInput = tuple[str, object]  # a value: str, or a typed value whose str() is its wire form
_T = TypeVar("_T")
_M = TypeVar("_M", bound="SipMessage")


def check_value(value: str) -> str:
    # A CR or LF in a value we are asked to write would inject header lines.
    if "\r" in value or "\n" in value:
        raise ValueError(f"CR/LF in SIP header value {value!r}")
    return value


def normalize(headers: Iterable[HeaderInput]) -> list[Header]:
    return [(canonical_name(name), check_value(str(value))) for name, value in headers]


class SipMessage:
    """What requests and responses share: headers, body, typed accessors."""

    __slots__ = (
        "_body",
        "_cache",
        "_contact",
        "_cseq",
        "_from",
        "_names",
        "_raw",
        "_to",
        "_top_via",
        "_values",
    )

    def __init__(
        self,
        headers: tuple[Header, ...] | None,
        body: bytes,
        raw: bytes | None,
        fields: tuple[list[str], list[str]] | None = None,
    ) -> None:
        # Names and values in parallel lists (what the parser makes; list.index()
        # finds a header in C); the pairs are built each time someone asks.
        if fields is None:
            assert headers is not None
            fields = [h[0] for h in headers], [h[1] for h in headers]
        # Only the two lists are kept, not the pairs too: a call holds its messages
        # for its whole life (their transactions 32 s), and each would cost twice.
        self._names, self._values = fields
        self._body = body
        self._raw = raw
        # What a proxy reads on every message gets a slot; the rest a dict, made on demand.
        self._top_via: Via | None = None
        self._from: NameAddr | None = None
        self._to: NameAddr | None = None
        self._cseq: CSeq | None = None
        self._contact: tuple[NameAddr, ...] | None = None
        self._cache: dict[str, object] | None = None

    # -- start line and copies (defined by the subclasses) ----------------------------

    def start_line(self) -> str:
        raise NotImplementedError

    def _make(self: _M, headers: tuple[Header, ...], body: bytes) -> _M:
        """A message with this start line and the given parts (not re-validated)."""
        raise NotImplementedError

    def _copy(self: _M, headers: tuple[Header, ...], body: bytes) -> _M:
        return self._make(with_length(headers, body), body)

    # -- raw access --------------------------------------------------------------------

    @property
    def headers(self) -> tuple[Header, ...]:
        """Every header line as (canonical name, value), in wire order."""
        return tuple(zip(self._names, self._values, strict=True))

    @property
    def body(self) -> bytes:
        return self._body

    def _value(self, canon: str) -> str | None:
        """First value of a header by its exact canonical name (the hot path)."""
        names = self._names
        return self._values[names.index(canon)] if canon in names else None

    def _positions(self, name: str) -> list[int]:
        canon = CANONICAL.get(name.lower())
        if canon is not None:
            return self._canon_positions(canon)
        lname = name.lower()
        return [i for i, n in enumerate(self._names) if n.lower() == lname]

    def _canon_positions(self, canon: str) -> list[int]:
        names = self._names
        count = names.count(canon)
        if count < 2:
            return [names.index(canon)] if count else []
        return [i for i, n in enumerate(names) if n == canon]

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None

    def header(self, name: str) -> str | None:
        """The value of the first ``name`` line (any case, compact or long), or None."""
        canon = CANONICAL.get(name.lower())
        if canon is not None:
            return self._value(canon)
        positions = self._positions(name)
        return self._values[positions[0]] if positions else None

    def header_values(self, name: str) -> tuple[str, ...]:
        """All values of ``name``: list headers split on commas, others one per line."""
        canon = CANONICAL.get(name.lower())
        if canon is None:
            return tuple(self._values[i] for i in self._positions(name))
        return self._canon_values(canon)

    def _canon_values(self, canon: str) -> tuple[str, ...]:
        values = [self._values[i] for i in self._canon_positions(canon)]
        if canon not in LIST_HEADERS:
            return tuple(values)
        return tuple(item for value in values for item in split_list(value))

    def _single(self, canon: str) -> str:
        value = self._value(canon)
        if value is None:
            raise SipError(f"missing {canon} header")
        return value

    def _typed(self, key: str, make: Callable[[], _T]) -> _T:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        elif key in cache:
            return cast(_T, cache[key])
        value = cache[key] = make()
        return value

    # -- typed accessors (RFC 3261 section 20), parsed on first use ---------------------

    @property
    def via(self) -> tuple[Via, ...]:
        return self._typed("via", lambda: tuple(map(parse_via, self._canon_values("Via"))))

    @property
    def top_via(self) -> Via:
        """The first Via value, parsed alone (what a proxy reads on every message)."""
        via = self._top_via
        if via is None:
            value = self._single("Via")
            if "," in value:
                items = split_list(value)
                value = items[0] if items else ""
            via = self._top_via = parse_via(value)
        return via

    @property
    def from_(self) -> NameAddr:
        value = self._from
        if value is None:
            value = self._from = parse_name_addr(self._single("From"))
        return value

    @property
    def to(self) -> NameAddr:
        value = self._to
        if value is None:
            value = self._to = parse_name_addr(self._single("To"))
        return value

    @property
    def call_id(self) -> str:
        value = self._single("Call-ID").strip(" \t")
        if not value or " " in value:
            raise SipError(f"bad Call-ID {value!r}")
        return value

    @property
    def cseq(self) -> CSeq:
        value = self._cseq
        if value is None:
            value = self._cseq = parse_cseq(self._single("CSeq"))
        return value

    @property
    def max_forwards(self) -> int | None:
        value = self.header("Max-Forwards")
        return None if value is None else parse_uint(value, "Max-Forwards", 255)

    @property
    def expires(self) -> int | None:
        value = self.header("Expires")
        return None if value is None else parse_uint(value, "Expires")

    @property
    def content_length(self) -> int:
        value = self.header("Content-Length")
        return len(self._body) if value is None else parse_uint(value, "Content-Length")

    @property
    def content_type(self) -> ContentType | None:
        value = self.header("Content-Type")
        return None if value is None else parse_content_type(value)

    @property
    def contact_star(self) -> bool:
        """``Contact: *`` (RFC 3261 section 10.2.2: remove all bindings)."""
        return self._canon_values("Contact") == ("*",)

    @property
    def contact(self) -> tuple[NameAddr, ...]:
        """Contact values; empty for ``Contact: *`` (see ``contact_star``)."""
        value = self._contact
        if value is None:
            value = self._contact = self._name_addrs("Contact")
        return value

    @property
    def route(self) -> tuple[NameAddr, ...]:
        return self._typed("route", lambda: self._name_addrs("Route"))

    @property
    def record_route(self) -> tuple[NameAddr, ...]:
        return self._typed("record-route", lambda: self._name_addrs("Record-Route"))

    @property
    def reason(self) -> tuple[Reason, ...]:
        return tuple(map(parse_reason, self._canon_values("Reason")))

    @property
    def authorization(self) -> tuple[AuthValue, ...]:
        return tuple(map(parse_auth, self._canon_values("Authorization")))

    @property
    def proxy_authorization(self) -> tuple[AuthValue, ...]:
        return tuple(map(parse_auth, self._canon_values("Proxy-Authorization")))

    @property
    def www_authenticate(self) -> tuple[AuthValue, ...]:
        return tuple(map(parse_auth, self._canon_values("WWW-Authenticate")))

    @property
    def proxy_authenticate(self) -> tuple[AuthValue, ...]:
        return tuple(map(parse_auth, self._canon_values("Proxy-Authenticate")))

    def _name_addrs(self, name: str) -> tuple[NameAddr, ...]:
        names = self._names
        if names.count(name) == 1:
            # One line with one address: what nearly every Contact is.
            value = self._values[names.index(name)]
            if "," not in value and value.strip(" \t") not in ("*", ""):
                return (parse_name_addr(value),)
        values = self._canon_values(name)
        if name == "Contact" and "*" in values:
            if len(values) != 1:
                raise SipError("Contact: * mixed with addresses")
            return ()
        return tuple(map(parse_name_addr, values))

    # -- modification: every method returns a new message ------------------------------

    def with_header(self: _M, name: str, value: object) -> _M:
        """Replace every ``name`` line by one (at the first one's place) or append it."""
        canon = canonical_name(name)
        line = (canon, check_value(str(value)))
        positions = self._positions(canon)
        if not positions:
            return self._copy((*self.headers, line), self._body)
        first, drop = positions[0], set(positions[1:])
        headers = tuple(
            line if i == first else h for i, h in enumerate(self.headers) if i not in drop
        )
        return self._copy(headers, self._body)

    def without_header(self: _M, name: str) -> _M:
        drop = set(self._positions(name))
        if not drop:
            return self
        headers = tuple(h for i, h in enumerate(self.headers) if i not in drop)
        return self._copy(headers, self._body)

    def with_added_header(self: _M, name: str, value: object, *, first: bool = False) -> _M:
        """Add a ``name`` line: last, or before the existing ``name`` lines if ``first``."""
        canon = canonical_name(name)
        line = (canon, check_value(str(value)))
        positions = self._positions(canon)
        if not first or not positions:
            return self._copy((*self.headers, line), self._body)
        at = positions[0]
        return self._copy((*self.headers[:at], line, *self.headers[at:]), self._body)

    def without_first_value(self: _M, name: str) -> _M:
        """Remove the first value of a list header (the top Via, the first Route)."""
        positions = self._positions(name)
        if not positions:
            return self
        at = positions[0]
        rest = split_list(self.headers[at][1])[1:]
        headers = list(self.headers)
        if rest:
            headers[at] = (headers[at][0], ", ".join(rest))
        else:
            del headers[at]
        return self._copy(tuple(headers), self._body)

    def with_top_via(self: _M, via: Via | str) -> _M:
        return self.with_added_header("Via", via, first=True)

    def without_top_via(self: _M) -> _M:
        return self.without_first_value("Via")

    def with_body(self: _M, content_type: str | ContentType | None, body: bytes) -> _M:
        """Replace the body; Content-Type set (or removed when None), length fixed."""
        msg = self.without_header("Content-Type") if content_type is None else self
        if content_type is not None:
            msg = msg.with_header("Content-Type", content_type)
        return msg._copy(msg.headers, body)

    # -- serialization -----------------------------------------------------------------

    def serialize(self) -> bytes:
        """The wire form: the received bytes if unmodified, else built (and kept)."""
        raw = self._raw
        if raw is None:
            raw = self._raw = self._build(self._names)
        return raw

    def serialize_compact(self) -> bytes:
        """Built with compact header names (RFC 3261 7.3.3), to fit a UDP datagram (18.1.1)."""
        return self._build([CANONICAL_TO_COMPACT.get(name, name) for name in self._names])

    def _build(self, names: list[str]) -> bytes:
        lines = [self.start_line()]
        lines += [f"{name}: {value}" for name, value in zip(names, self._values, strict=True)]
        lines += ["", ""]
        return "\r\n".join(lines).encode() + self._body

    def __bytes__(self) -> bytes:
        return self.serialize()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, SipMessage)
        return (
            self.start_line() == other.start_line()
            and self._names == other._names
            and self._values == other._values
            and self._body == other._body
        )

    def __hash__(self) -> int:
        return hash((self.start_line(), self.headers, self._body))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.start_line()!r}>"


def with_length(headers: Iterable[Header], body: bytes) -> tuple[Header, ...]:
    """``headers`` with one Content-Length equal to ``len(body)`` (first one's place)."""
    out: list[Header] = []
    placed = False
    for header in headers:
        if header[0] != "Content-Length":
            out.append(header)
        elif not placed:
            out.append(("Content-Length", str(len(body))))
            placed = True
    if not placed:
        out.append(("Content-Length", str(len(body))))
    return tuple(out)
