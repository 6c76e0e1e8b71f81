"""SDP (RFC 4566) as a B2BUA reads and rewrites it for offer/answer (RFC 3264).

A session is its session-level lines and its media sections, each a tuple of
``(type, value)`` lines in order. Typed views (origin, connection, m= fields,
rtpmap/fmtp, direction, ptime, rtcp) are computed from the lines; rewrites
(``with_connection_address``, ``with_media_port``, ``with_direction``...)
return new sessions. An unmodified session serializes to the bytes it was
parsed from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum

from protocols.sip.errors import SdpError

Line = tuple[str, str]

_LINE_RE = re.compile(r"[a-z]=")
_MEDIA_RE = re.compile(r"([A-Za-z0-9\-_.]+) ([0-9]{1,5})(?:/([0-9]{1,5}))? (\S+)((?: \S+)*)")
_ADDRESS_RE = re.compile(r"[A-Za-z0-9\-.:\[\]/%]+")
_RTPMAP_RE = re.compile(r"([0-9]{1,3}) ([^/\s]+)/([0-9]{1,9})(?:/([0-9]{1,3}))?")
MAX_SDP_SIZE = 65535

# RFC 3551 section 6: static RTP payload types of audio/video codecs.
STATIC_PAYLOAD_TYPES: dict[int, str] = {
    0: "PCMU",
    3: "GSM",
    4: "G723",
    5: "DVI4",
    6: "DVI4",
    7: "LPC",
    8: "PCMA",
    9: "G722",
    10: "L16",
    11: "L16",
    12: "QCELP",
    13: "CN",
    14: "MPA",
    15: "G728",
    16: "DVI4",
    17: "DVI4",
    18: "G729",
    25: "CelB",
    26: "JPEG",
    28: "nv",
    31: "H261",
    32: "MPV",
    33: "MP2T",
    34: "H263",
}


class Direction(Enum):
    """RFC 3264 section 5.1 / RFC 4566 section 6 direction attributes."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (RFC 4566 section 5.7)."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def is_hold(self) -> bool:
        """The RFC 2543 hold: ``c=IN IP4 0.0.0.0`` (RFC 3264 section 8.4 still honours it)."""
        return self.address in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (5.2)."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None


def parse_connection(value: str) -> Connection:
    parts = value.split(" ")
    if len(parts) != 3 or _ADDRESS_RE.fullmatch(parts[2]) is None:
        raise SdpError(f"bad c= line {value[:60]!r}")
    if parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"unknown address type in c= {value[:60]!r}")
    return Connection(parts[2], parts[1], parts[0])


def parse_origin(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6 or not (parts[1] + parts[2]).isdigit() or not parts[2].isascii():
        raise SdpError(f"bad o= line {value[:60]!r}")
    return Origin(parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5])


def _attribute(lines: tuple[Line, ...], name: str) -> str | None:
    """Value of the first ``a=name[:value]`` ("" for a flag), or None."""
    for kind, value in lines:
        if kind == "a":
            attr, colon, rest = value.partition(":")
            if attr == name:
                return rest if colon else ""
    return None


def _direction(lines: tuple[Line, ...]) -> Direction | None:
    for kind, value in lines:
        if kind == "a" and value in _DIRECTIONS:
            return Direction(value)
    return None


def _set_direction(lines: tuple[Line, ...], direction: Direction) -> tuple[Line, ...]:
    kept = tuple(line for line in lines if not (line[0] == "a" and line[1] in _DIRECTIONS))
    return (*kept, ("a", direction.value))


def _set_connection(lines: tuple[Line, ...], conn: Connection) -> tuple[Line, ...]:
    return tuple(("c", str(conn)) if kind == "c" else (kind, v) for kind, v in lines)


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """An ``m=`` line and the lines of its section (RFC 4566 section 5.14)."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    lines: tuple[Line, ...] = ()
    port_count: int | None = None

    @property
    def m_line(self) -> str:
        port = f"{self.port}" if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join((self.media, port, self.proto, *self.formats))

    @property
    def connection(self) -> Connection | None:
        for kind, value in self.lines:
            if kind == "c":
                return parse_connection(value)
        return None

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, None when absent (see Session.direction)."""
        return _direction(self.lines)

    def attribute(self, name: str) -> str | None:
        return _attribute(self.lines, name)

    @property
    def attributes(self) -> tuple[tuple[str, str | None], ...]:
        out: list[tuple[str, str | None]] = []
        for kind, value in self.lines:
            if kind == "a":
                name, colon, rest = value.partition(":")
                out.append((name, rest if colon else None))
        return tuple(out)

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        out: dict[int, RtpMap] = {}
        for name, value in self.attributes:
            if name == "rtpmap" and value is not None:
                match = _RTPMAP_RE.fullmatch(value.strip())
                if match is None:
                    raise SdpError(f"bad rtpmap {value[:60]!r}")
                pt, enc, rate, channels = match.groups()
                out[int(pt)] = RtpMap(int(pt), enc, int(rate), int(channels) if channels else None)
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for name, value in self.attributes:
            if name == "fmtp" and value is not None:
                pt, _, params = value.partition(" ")
                if not pt.isdigit() or not pt.isascii():
                    raise SdpError(f"bad fmtp {value[:60]!r}")
                out[int(pt)] = params
        return out

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        if value is None:
            return None
        if not value.isdigit() or not value.isascii():
            raise SdpError(f"bad ptime {value[:20]!r}")
        return int(value)

    @property
    def rtcp(self) -> tuple[int, Connection | None] | None:
        """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605)."""
        value = self.attribute("rtcp")
        if value is None:
            return None
        port, _, rest = value.partition(" ")
        if not port.isdigit() or not port.isascii() or int(port) > 65535:
            raise SdpError(f"bad rtcp attribute {value[:60]!r}")
        return int(port), parse_connection(rest) if rest else None

    def codecs(self) -> tuple[str, ...]:
        """Encoding names of the formats in order (rtpmap first, then RFC 3551)."""
        maps = self.rtpmaps
        names: list[str] = []
        for fmt in self.formats:
            pt = int(fmt) if fmt.isdigit() and fmt.isascii() else -1
            rtpmap = maps.get(pt)
            names.append(rtpmap.encoding if rtpmap else STATIC_PAYLOAD_TYPES.get(pt, fmt))
        return tuple(names)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body: session-level lines, then the media sections."""

    session: tuple[Line, ...]
    media: tuple[MediaDescription, ...] = ()
    eol: str = "\r\n"
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def serialize(self) -> bytes:
        if self.raw is not None:
            return self.raw
        out = [f"{kind}={value}" for kind, value in self.session]
        for media in self.media:
            out.append(f"m={media.m_line}")
            out += [f"{kind}={value}" for kind, value in media.lines]
        return (self.eol.join(out) + self.eol).encode()

    @property
    def origin(self) -> Origin:
        return parse_origin(self._session_value("o"))

    @property
    def connection(self) -> Connection | None:
        """The session-level c= line."""
        for kind, value in self.session:
            if kind == "c":
                return parse_connection(value)
        return None

    def media_connection(self, index: int) -> Connection | None:
        """The connection of media ``index``: its own c=, else the session's."""
        return self.media[index].connection or self.connection

    def direction(self, index: int) -> Direction:
        """Effective direction of media ``index`` (media over session, default sendrecv)."""
        found = self.media[index].direction or _direction(self.session)
        return found or Direction.SENDRECV

    def is_hold(self, index: int) -> bool:
        """Media ``index`` put on hold: sendonly/inactive, or the legacy c=0.0.0.0."""
        conn = self.media_connection(index)
        if conn is not None and conn.is_hold:
            return True
        return self.direction(index) in (Direction.SENDONLY, Direction.INACTIVE)

    def codecs(self) -> tuple[str, ...]:
        """Codec names of the active (port != 0) media streams, without repeats, for CDRs."""
        seen: dict[str, None] = {}
        for media in self.media:
            if media.port:
                seen.update(dict.fromkeys(media.codecs()))
        return tuple(seen)

    def _session_value(self, kind: str) -> str:
        for key, value in self.session:
            if key == kind:
                return value
        raise SdpError(f"missing {kind}= line")

    # -- rewrites ----------------------------------------------------------------------

    def with_origin(self, origin: Origin) -> SessionDescription:
        session = tuple(("o", str(origin)) if k == "o" else (k, v) for k, v in self.session)
        return replace(self, session=session, raw=None)

    def with_connection_address(self, address: str, addrtype: str = "IP4") -> SessionDescription:
        """Every c= line (session and media) pointing at ``address`` (a media relay)."""
        conn = Connection(address, addrtype)
        media = tuple(replace(m, lines=_set_connection(m.lines, conn)) for m in self.media)
        return replace(self, session=_set_connection(self.session, conn), media=media, raw=None)

    def with_media_port(self, index: int, port: int) -> SessionDescription:
        return self._with_media(index, replace(self.media[index], port=port))

    def with_media_lines(self, index: int, lines: tuple[Line, ...]) -> SessionDescription:
        return self._with_media(index, replace(self.media[index], lines=lines))

    def with_direction(self, direction: Direction, index: int | None = None) -> SessionDescription:
        """Set the direction of media ``index``, or of every media section."""
        indexes = range(len(self.media)) if index is None else (index,)
        out = self
        for i in indexes:
            out = out.with_media_lines(i, _set_direction(out.media[i].lines, direction))
        return out

    def _with_media(self, index: int, media: MediaDescription) -> SessionDescription:
        medias = (*self.media[:index], media, *self.media[index + 1 :])
        return replace(self, media=medias, raw=None)


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse an SDP body; anything malformed raises ``SdpError`` (a 400 SipError).

    Lines end in CRLF, or LF alone (RFC 4566 section 5 asks parsers to accept it).
    """
    if len(data) > MAX_SDP_SIZE:
        raise SdpError("SDP body too large", 413)
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8") from exc
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(eol)
    if lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    session: list[Line] = []
    sections: list[tuple[str, list[Line]]] = []
    current = session
    for line in lines:
        if _LINE_RE.match(line) is None or "\r" in line or "\n" in line:
            raise SdpError(f"bad SDP line {line[:60]!r}")
        if line[0] == "m":
            current = []
            sections.append((line[2:], current))
        else:
            current.append((line[0], line[2:]))
    media = tuple(_parse_media(m_value, tuple(body)) for m_value, body in sections)
    sdp = SessionDescription(tuple(session), media, eol, data)
    sdp.origin  # noqa: B018 - o= is mandatory and must parse (RFC 4566 section 5.2)
    return sdp


def _parse_media(value: str, lines: tuple[Line, ...]) -> MediaDescription:
    match = _MEDIA_RE.fullmatch(value)
    if match is None:
        raise SdpError(f"bad m= line {value[:60]!r}")
    media, port, count, proto, formats = match.groups()
    if int(port) > 65535:
        raise SdpError(f"bad port in m= line {value[:60]!r}")
    fmts = tuple(formats.split())
    return MediaDescription(media, int(port), proto, fmts, lines, int(count) if count else None)
