"""ng requests and their framing (rtpengine-ng.md sections 1 and 2; rtpengine's
docs/ng_control_protocol.md, "Message format" and the per-command sections).

A datagram is ``<cookie> SP <dictionary>``: the cookie is any token without a
space and the reply carries it back; the dictionary is bencode, or JSON when the
body starts with ``{`` (rtpengine answers a JSON request in JSON). Requests go
as JSON when they can, because a JSON reply decodes in C (orjson) where a
bencoded one is decoded byte by byte in Python: a delete reply's call stats cost
~20k bytecodes that way. A request whose strings are not all UTF-8 text (an SDP
or Call-ID may carry other bytes), or that has untyped ``extra`` keys (whose
types only the bencode encoder checks), goes as bencode. Both decode to one
shape, ``Json``: ``str`` keys and text, bencode strings decoded as UTF-8 with
surrogateescape so that no byte is lost. Each request is a frozen record that names its ng keys
exactly as rtpengine spells them (``call-id``, ``from-tag``, ``ICE``,
``transport-protocol`` ...); keys we do not type go through ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, TypeAlias

import orjson

from protocols.ng import bencode
from protocols.ng.bencode import Encodable, Value
from protocols.ng.errors import NgError

MAX_DATAGRAM = 65_535
"""One ng message is one UDP datagram."""

Json: TypeAlias = str | int | float | bool | list["Json"] | dict[str, "Json"] | None
"""A decoded message body's values: what orjson returns, and bencode mapped onto it.

ng itself only has strings, integers, lists and dictionaries: readers of a
body (replies.py) check the types of the keys they use."""


class Command(StrEnum):
    """The ``command`` values warpd sends (the doc lists more)."""

    PING = "ping"
    OFFER = "offer"
    ANSWER = "answer"
    DELETE = "delete"
    QUERY = "query"
    LIST = "list"
    STATISTICS = "statistics"
    PLAY_DTMF = "play DTMF"
    START_RECORDING = "start recording"
    STOP_RECORDING = "stop recording"


class Ice(StrEnum):
    """``ICE`` key values. SIP trunks without WebRTC use ``REMOVE``."""

    REMOVE = "remove"
    FORCE = "force"
    DEFAULT = "default"
    FORCE_RELAY = "force-relay"
    OPTIONAL = "optional"


class TransportProtocol(StrEnum):
    """``transport-protocol`` key values; ``ACCEPT`` is for answers only."""

    RTP_AVP = "RTP/AVP"
    RTP_AVPF = "RTP/AVPF"
    RTP_SAVP = "RTP/SAVP"
    RTP_SAVPF = "RTP/SAVPF"
    UDP_TLS_RTP_SAVP = "UDP/TLS/RTP/SAVP"
    UDP_TLS_RTP_SAVPF = "UDP/TLS/RTP/SAVPF"
    ACCEPT = "accept"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded datagram: the cookie and its body."""

    cookie: bytes
    body: dict[str, Json]
    is_json: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """The ``codec`` dictionary: each list names codecs (``PCMA``, ``G722``, ``all``)."""

    strip: tuple[str, ...] = ()
    mask: tuple[str, ...] = ()
    offer: tuple[str, ...] = ()
    transcode: tuple[str, ...] = ()
    accept: tuple[str, ...] = ()
    consume: tuple[str, ...] = ()
    set: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Encodable]:
        pairs: tuple[tuple[str, tuple[str, ...]], ...] = (
            ("strip", self.strip),
            ("mask", self.mask),
            ("offer", self.offer),
            ("transcode", self.transcode),
            ("accept", self.accept),
            ("consume", self.consume),
            ("set", self.set),
            ("except", self.except_),
        )
        return {key: list(names) for key, names in pairs if names}


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """Base of every request. ``extra`` adds (or overrides) untyped ng keys."""

    command: ClassVar[Command]
    extra: Mapping[str, Encodable] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Encodable]:
        body: dict[str, Encodable] = {"command": self.command.value}
        self._fill(body)
        body.update(self.extra)
        return body

    def _fill(self, body: dict[str, Encodable]) -> None:
        """Add this command's typed keys (the base has none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Request):
    command: ClassVar[Command] = Command.PING


@dataclass(frozen=True, slots=True, kw_only=True)
class _SdpRequest(Request):
    """Keys shared by offer and answer."""

    call_id: str
    from_tag: str
    sdp: bytes | str
    via_branch: str | None = None
    flags: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    ice: Ice | None = None
    transport_protocol: TransportProtocol | None = None
    received_from: tuple[str, str] | None = None
    """``("IP4", "192.0.2.1")``: the SIP source, used when SDP addresses are untrusted."""
    media_address: str | None = None
    address_family: str | None = None
    codec: Codec | None = None
    record_call: bool | None = None
    rtcp_mux: tuple[str, ...] = ()
    dtls: str | None = None
    sdes: tuple[str, ...] = ()
    ptime: int | None = None
    label: str | None = None
    metadata: str | None = None

    def _fill(self, body: dict[str, Encodable]) -> None:
        body["call-id"] = self.call_id
        body["from-tag"] = self.from_tag
        body["sdp"] = self.sdp
        optional: tuple[tuple[str, Encodable | None], ...] = (
            ("via-branch", self.via_branch),
            ("ICE", self.ice),
            ("transport-protocol", self.transport_protocol),
            ("received-from", list(self.received_from) if self.received_from else None),
            ("media address", self.media_address),
            ("address family", self.address_family),
            ("codec", self.codec.to_dict() if self.codec else None),
            ("record call", None if self.record_call is None else _yes_no(self.record_call)),
            ("DTLS", self.dtls),
            ("ptime", self.ptime),
            ("label", self.label),
            ("metadata", self.metadata),
        )
        _put_optional(body, optional)
        _put_lists(body, (("flags", self.flags), ("replace", self.replace)))
        _put_lists(body, (("rtcp-mux", self.rtcp_mux), ("SDES", self.sdes)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer(_SdpRequest):
    command: ClassVar[Command] = Command.OFFER
    direction: tuple[str, str] | None = None
    """Logical interface names (``--interface NAME/IP``), initial offer only."""

    def _fill(self, body: dict[str, Encodable]) -> None:
        _SdpRequest._fill(self, body)
        if self.direction is not None:
            body["direction"] = list(self.direction)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(_SdpRequest):
    command: ClassVar[Command] = Command.ANSWER
    to_tag: str

    def _fill(self, body: dict[str, Encodable]) -> None:
        _SdpRequest._fill(self, body)
        body["to-tag"] = self.to_tag


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(Request):
    """Without the ``fast`` flag the reply carries the call's stats (for the CDR)."""

    command: ClassVar[Command] = Command.DELETE
    call_id: str
    from_tag: str | None = None
    to_tag: str | None = None
    via_branch: str | None = None
    flags: tuple[str, ...] = ()
    delete_delay: int | None = None
    """Seconds rtpengine keeps the ports after delete; 0 frees them now."""

    def _fill(self, body: dict[str, Encodable]) -> None:
        body["call-id"] = self.call_id
        optional: tuple[tuple[str, Encodable | None], ...] = (
            ("from-tag", self.from_tag),
            ("to-tag", self.to_tag),
            ("via-branch", self.via_branch),
            ("delete delay", self.delete_delay),
        )
        _put_optional(body, optional)
        _put_lists(body, (("flags", self.flags),))


@dataclass(frozen=True, slots=True, kw_only=True)
class Query(Request):
    command: ClassVar[Command] = Command.QUERY
    call_id: str
    from_tag: str | None = None
    to_tag: str | None = None

    def _fill(self, body: dict[str, Encodable]) -> None:
        body["call-id"] = self.call_id
        _put_optional(body, (("from-tag", self.from_tag), ("to-tag", self.to_tag)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ListCalls(Request):
    """The ``list`` command: call-ids rtpengine holds (``limit`` defaults to 32)."""

    command: ClassVar[Command] = Command.LIST
    limit: int | None = None

    def _fill(self, body: dict[str, Encodable]) -> None:
        _put_optional(body, (("limit", self.limit),))


@dataclass(frozen=True, slots=True, kw_only=True)
class Statistics(Request):
    command: ClassVar[Command] = Command.STATISTICS


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayDtmf(Request):
    """Inject an RFC 4733 event (SIP INFO interworking). Needs ``inject DTMF``
    on offer and answer and RTP already flowing, else rtpengine answers
    "No SSRC context present for DTMF injection"."""

    command: ClassVar[Command] = Command.PLAY_DTMF
    call_id: str
    from_tag: str
    code: str
    """``0``-``9``, ``*``, ``#``, ``A``-``D`` (or the event number as text)."""
    duration: int | None = None
    """Milliseconds, 100..5000 (rtpengine's default 250)."""
    volume: int | None = None
    """dBm0 below full scale, as a positive or negative int (default -8)."""
    pause: int | None = None
    label: str | None = None

    def _fill(self, body: dict[str, Encodable]) -> None:
        body["call-id"] = self.call_id
        body["from-tag"] = self.from_tag
        body["code"] = self.code
        optional: tuple[tuple[str, Encodable | None], ...] = (
            ("duration", self.duration),
            ("volume", self.volume),
            ("pause", self.pause),
            ("label", self.label),
        )
        _put_optional(body, optional)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRecording(Request):
    command: ClassVar[Command] = Command.START_RECORDING
    call_id: str
    from_tag: str | None = None
    to_tag: str | None = None
    via_branch: str | None = None

    def _fill(self, body: dict[str, Encodable]) -> None:
        _fill_recording(self.call_id, self.from_tag, self.to_tag, self.via_branch, body)


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRecording(Request):
    command: ClassVar[Command] = Command.STOP_RECORDING
    call_id: str
    from_tag: str | None = None
    to_tag: str | None = None
    via_branch: str | None = None

    def _fill(self, body: dict[str, Encodable]) -> None:
        _fill_recording(self.call_id, self.from_tag, self.to_tag, self.via_branch, body)


def encode_request(cookie: bytes, request: Request, *, prefer_json: bool = False) -> bytes:
    """The datagram for ``request``: ``cookie SP dict``, the dict in JSON when
    ``prefer_json`` and the request allows it (see the module doc), else bencode."""
    if not cookie or b" " in cookie:
        raise NgError(f"invalid cookie {cookie!r}: a cookie is a token without spaces")
    body = request.to_dict()
    if prefer_json and not request.extra:
        try:
            return cookie + b" " + orjson.dumps(body, default=_json_text)
        except orjson.JSONEncodeError:
            pass  # bytes or a str that is not UTF-8: bencode carries them
    return cookie + b" " + bencode.encode(body)


def _json_text(value: object) -> str:
    # orjson's hook for types it does not know: bytes that are UTF-8 become
    # text; anything else makes orjson give up, and bencode takes the request.
    if type(value) is bytes:
        return value.decode()
    raise TypeError


def split_cookie(datagram: bytes) -> tuple[bytes, bytes]:
    """Split at the first space into (cookie, body), as rtpengine does."""
    space = datagram.find(b" ")
    if space <= 0:
        raise NgError("no cookie")
    return datagram[:space], datagram[space + 1 :]


def decode_frame(datagram: bytes) -> Frame:
    """Decode one datagram; the body must be a dictionary (bencode or JSON)."""
    if len(datagram) > MAX_DATAGRAM:
        raise NgError(f"ng message of {len(datagram)} bytes exceeds {MAX_DATAGRAM}")
    cookie, body = split_cookie(bytes(datagram))
    return Frame(cookie, decode_body(body), body[:1] == b"{")


def decode_body(body: bytes) -> dict[str, Json]:
    """A message body as a dictionary, from JSON or bencode."""
    value: Json
    if body[:1] == b"{":
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            # Also bad UTF-8, lone surrogates and nesting past orjson's limit
            # (1,024 levels, checked in C: no Python recursion to exhaust).
            raise NgError(f"invalid JSON body: {exc}") from None
    else:
        value = _from_bencode(bencode.decode(body))
    if not isinstance(value, dict):
        raise NgError("ng message body is not a dictionary")
    return value


def _from_bencode(value: Value) -> Json:
    """Bencode values mapped onto JSON's: strings become text, losslessly."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [_from_bencode(item) for item in value]
    if isinstance(value, dict):
        return {
            key.decode("utf-8", "surrogateescape"): _from_bencode(item)
            for key, item in value.items()
        }
    return value  # an int; bencode.decode's depth limit bounds the recursion


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _put_optional(
    body: dict[str, Encodable], pairs: tuple[tuple[str, Encodable | None], ...]
) -> None:
    for key, value in pairs:
        if value is not None:
            body[key] = value


def _put_lists(body: dict[str, Encodable], pairs: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    for key, values in pairs:
        if values:
            body[key] = list(values)


def _fill_recording(
    call_id: str,
    from_tag: str | None,
    to_tag: str | None,
    via_branch: str | None,
    body: dict[str, Encodable],
) -> None:
    body["call-id"] = call_id
    optional: tuple[tuple[str, Encodable | None], ...] = (
        ("from-tag", from_tag),
        ("to-tag", to_tag),
        ("via-branch", via_branch),
    )
    _put_optional(body, optional)
