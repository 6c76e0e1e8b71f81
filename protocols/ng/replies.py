"""ng replies and the call statistics a voice CDR needs (rtpengine-ng.md
sections 1 and 2; rtpengine's docs/ng_control_protocol.md, "delete" and "query").

Every reply has ``result``: ``ok`` (maybe with ``warning``), ``pong``, ``error``
with ``error-reason``, or ``load limit`` (Kamailio's "try the next node"). A
delete without ``fast`` and a query carry the call's counters: ``totals`` (RTP
and RTCP packets/bytes/errors, always present), ``tags`` -> ``medias`` ->
``streams`` (one per local port, with its SSRC and counters) and ``SSRC`` (per
SSRC loss and MOS, only once RTCP was seen). MOS is an integer scaled by 10
(43 means 4.3), as rtpengine sends it.

Known keys become ``str``/typed fields; ``raw`` keeps the whole dictionary for
anything else. A key present with the wrong type is malformed: ``NgError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.ng.bencode import Value
from protocols.ng.errors import NgError
from protocols.ng.messages import decode_frame


class Result(StrEnum):
    OK = "ok"
    ERROR = "error"
    PONG = "pong"
    LOAD_LIMIT = "load limit"


_RESULTS = {result.value.encode(): result for result in Result}


@dataclass(frozen=True, slots=True)
class Counters:
    packets: int = 0
    bytes: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class SsrcStats:
    """One entry of the ``SSRC`` dictionary; MOS values are scaled by 10."""

    ssrc: int
    packets: int
    bytes: int
    cumulative_loss: int | None = None
    average_mos: int | None = None
    lowest_mos: int | None = None


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One stream (local port) of one media of one tag (call leg)."""

    tag: str
    local_port: int
    rtcp: bool
    ssrc: int | None
    counters: Counters


@dataclass(frozen=True, slots=True)
class CallStats:
    """What a delete or query reply says about the call, for the CDR.

    ``created`` and ``last_signal`` are Unix seconds (rtpengine's clock).
    """

    created: int | None
    last_signal: int | None
    rtp: Counters
    rtcp: Counters
    ssrcs: tuple[SsrcStats, ...] = ()
    streams: tuple[StreamStats, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    result: Result
    error_reason: str | None = None
    warning: str | None = None
    sdp: bytes | None = None
    """Kept as bytes: it becomes a SIP body whose Content-Length counts bytes."""
    stats: CallStats | None = None
    calls: tuple[str, ...] = ()
    """Call-ids, for a ``list`` reply."""
    recordings: tuple[str, ...] = ()
    """Files an offer or answer with ``record call`` writes to (none: not recording)."""
    raw: Mapping[bytes, Value] = field(default_factory=dict, repr=False)


def decode_reply(datagram: bytes) -> tuple[bytes, Reply]:
    """(cookie, reply) from one reply datagram."""
    frame = decode_frame(datagram)
    return frame.cookie, parse_reply(frame.body)


def parse_reply(body: Mapping[bytes, Value]) -> Reply:
    """Type a decoded reply dictionary; ``result: error`` is returned, not raised."""
    raw_result = body.get(b"result")
    if raw_result is None:
        raise NgError("reply has no result")
    result = _RESULTS.get(raw_result) if isinstance(raw_result, bytes) else None
    if result is None:
        raise NgError(f"unknown result {raw_result!r}")
    calls = _list(body, b"calls")
    return Reply(
        result=result,
        error_reason=_text(body, b"error-reason"),
        warning=_text(body, b"warning"),
        sdp=_bytes(body, b"sdp"),
        stats=parse_call_stats(body) if b"totals" in body else None,
        calls=tuple(_as_text(item, b"calls") for item in calls),
        recordings=tuple(_as_text(item, b"recordings") for item in _list(body, b"recordings")),
        raw=body,
    )


def parse_call_stats(body: Mapping[bytes, Value]) -> CallStats:
    """The counters of a delete/query reply."""
    totals = _dict(body, b"totals")
    ssrc = _dict(body, b"SSRC")
    return CallStats(
        created=_int(body, b"created"),
        last_signal=_int(body, b"last signal"),
        rtp=_counters(_dict(totals, b"RTP")),
        rtcp=_counters(_dict(totals, b"RTCP")),
        ssrcs=tuple(_ssrc_stats(key, _as_dict(item, key)) for key, item in ssrc.items()),
        streams=tuple(_streams(_dict(body, b"tags"))),
    )


def _ssrc_stats(key: bytes, entry: Mapping[bytes, Value]) -> SsrcStats:
    if not key.isdigit():
        raise NgError(f"SSRC key {key!r} is not a number")
    return SsrcStats(
        ssrc=int(key),
        packets=_int(entry, b"packets") or 0,
        bytes=_int(entry, b"bytes") or 0,
        cumulative_loss=_int(entry, b"cumulative loss"),
        average_mos=_int(_dict(entry, b"average MOS"), b"MOS"),
        lowest_mos=_int(_dict(entry, b"lowest MOS"), b"MOS"),
    )


def _streams(tags: Mapping[bytes, Value]) -> list[StreamStats]:
    streams: list[StreamStats] = []
    for tag, leg in tags.items():
        tag_text = tag.decode("utf-8", "surrogateescape")
        for media in _list(_as_dict(leg, tag), b"medias"):
            for stream in _list(_as_dict(media, b"medias"), b"streams"):
                entry = _as_dict(stream, b"streams")
                flags = _list(entry, b"flags")
                streams.append(
                    StreamStats(
                        tag=tag_text,
                        local_port=_int(entry, b"local port") or 0,
                        rtcp=b"RTCP" in flags,
                        ssrc=_int(entry, b"SSRC"),
                        counters=_counters(_dict(entry, b"stats")),
                    )
                )
    return streams


def _counters(entry: Mapping[bytes, Value]) -> Counters:
    return Counters(
        packets=_int(entry, b"packets") or 0,
        bytes=_int(entry, b"bytes") or 0,
        errors=_int(entry, b"errors") or 0,
    )


def _int(body: Mapping[bytes, Value], key: bytes) -> int | None:
    value = body.get(key)
    if value is None or isinstance(value, int):
        return value
    raise NgError(f"{key.decode(errors='replace')} is not an integer")


def _bytes(body: Mapping[bytes, Value], key: bytes) -> bytes | None:
    value = body.get(key)
    if value is None or isinstance(value, bytes):
        return value
    raise NgError(f"{key.decode(errors='replace')} is not a string")


def _text(body: Mapping[bytes, Value], key: bytes) -> str | None:
    value = _bytes(body, key)
    # surrogateescape: a reason or call-id that is not UTF-8 still survives.
    return None if value is None else value.decode("utf-8", "surrogateescape")


def _dict(body: Mapping[bytes, Value], key: bytes) -> Mapping[bytes, Value]:
    value = body.get(key)
    return {} if value is None else _as_dict(value, key)


def _list(body: Mapping[bytes, Value], key: bytes) -> list[Value]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise NgError(f"{key.decode(errors='replace')} is not a list")


def _as_dict(value: Value, key: bytes) -> Mapping[bytes, Value]:
    if isinstance(value, dict):
        return value
    raise NgError(f"{key.decode(errors='replace')} is not a dictionary")


def _as_text(value: Value, key: bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    raise NgError(f"{key.decode(errors='replace')} holds a non-string")
