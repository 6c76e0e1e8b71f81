"""ng replies and the call statistics a voice CDR needs (rtpengine-ng.md
sections 1 and 2; rtpengine's docs/ng_control_protocol.md, "delete" and "query").

Every reply has ``result``: ``ok`` (maybe with ``warning``), ``pong``, ``error``
with ``error-reason``, or ``load limit`` (Kamailio's "try the next node"). A
delete without ``fast`` and a query carry the call's counters: ``totals`` (RTP
and RTCP packets/bytes/errors, always present), ``tags`` -> ``medias`` ->
``streams`` (one per local port, with its SSRC and counters) and ``SSRC`` (per
SSRC loss and MOS, only once RTCP was seen). MOS is an integer scaled by 10
(43 means 4.3), as rtpengine sends it.

Known keys become typed fields; ``raw`` keeps the whole dictionary for anything
else. A key present with the wrong type (a JSON ``true`` where an integer
belongs, say) is malformed: ``NgError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.ng.errors import NgError
from protocols.ng.messages import Json, decode_frame


class Result(StrEnum):
    OK = "ok"
    ERROR = "error"
    PONG = "pong"
    LOAD_LIMIT = "load limit"


_RESULTS = {result.value: result for result in Result}


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
    raw: Mapping[str, Json] = field(default_factory=dict, repr=False)


def decode_reply(datagram: bytes) -> tuple[bytes, Reply]:
    """(cookie, reply) from one reply datagram."""
    frame = decode_frame(datagram)
    return frame.cookie, parse_reply(frame.body)


def parse_reply(body: Mapping[str, Json]) -> Reply:
    """Type a decoded reply dictionary; ``result: error`` is returned, not raised."""
    raw_result = body.get("result")
    if raw_result is None:
        raise NgError("reply has no result")
    result = _RESULTS.get(raw_result) if type(raw_result) is str else None
    if result is None:
        raise NgError(f"unknown result {raw_result!r}")
    calls = _list(body, "calls")
    return Reply(
        result=result,
        error_reason=_text(body, "error-reason"),
        warning=_text(body, "warning"),
        sdp=_bytes(body, "sdp"),
        stats=parse_call_stats(body) if "totals" in body else None,
        calls=tuple(_as_text(item, "calls") for item in calls),
        recordings=tuple(_as_text(item, "recordings") for item in _list(body, "recordings")),
        raw=body,
    )


def parse_call_stats(body: Mapping[str, Json]) -> CallStats:
    """The counters of a delete/query reply."""
    totals = _dict(body, "totals")
    ssrc = _dict(body, "SSRC")
    return CallStats(
        created=_int(body, "created"),
        last_signal=_int(body, "last signal"),
        rtp=_counters(_dict(totals, "RTP")),
        rtcp=_counters(_dict(totals, "RTCP")),
        ssrcs=tuple(_ssrc_stats(key, _as_dict(item, key)) for key, item in ssrc.items()),
        streams=tuple(_streams(_dict(body, "tags"))),
    )


def _ssrc_stats(key: str, entry: Mapping[str, Json]) -> SsrcStats:
    # isascii: str.isdigit() also takes digits int() refuses, such as "²".
    if not (key.isascii() and key.isdigit()):
        raise NgError(f"SSRC key {key!r} is not a number")
    return SsrcStats(
        ssrc=int(key),
        packets=_int(entry, "packets") or 0,
        bytes=_int(entry, "bytes") or 0,
        cumulative_loss=_int(entry, "cumulative loss"),
        average_mos=_int(_dict(entry, "average MOS"), "MOS"),
        lowest_mos=_int(_dict(entry, "lowest MOS"), "MOS"),
    )


def _streams(tags: Mapping[str, Json]) -> list[StreamStats]:
    streams: list[StreamStats] = []
    for tag, leg in tags.items():
        for media in _list(_as_dict(leg, tag), "medias"):
            for stream in _list(_as_dict(media, "medias"), "streams"):
                entry = _as_dict(stream, "streams")
                flags = _list(entry, "flags")
                streams.append(
                    StreamStats(
                        tag=tag,
                        local_port=_int(entry, "local port") or 0,
                        rtcp="RTCP" in flags,
                        ssrc=_int(entry, "SSRC"),
                        counters=_counters(_dict(entry, "stats")),
                    )
                )
    return streams


def _counters(entry: Mapping[str, Json]) -> Counters:
    return Counters(
        packets=_int(entry, "packets") or 0,
        bytes=_int(entry, "bytes") or 0,
        errors=_int(entry, "errors") or 0,
    )


def _int(body: Mapping[str, Json], key: str) -> int | None:
    value = body.get(key)
    # Exact type: JSON's true and false are ints to isinstance().
    if value is None or type(value) is int:
        return value
    raise NgError(f"{key} is not an integer")


def _bytes(body: Mapping[str, Json], key: str) -> bytes | None:
    text = _text(body, key)
    if text is None:
        return None
    try:
        # surrogateescape gives back the bytes of a bencoded string that was
        # not UTF-8 (messages.py decoded it so).
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise NgError(f"{key} holds a lone surrogate") from None


def _text(body: Mapping[str, Json], key: str) -> str | None:
    value = body.get(key)
    if value is None or type(value) is str:
        return value
    raise NgError(f"{key} is not a string")


def _dict(body: Mapping[str, Json], key: str) -> Mapping[str, Json]:
    value = body.get(key)
    return {} if value is None else _as_dict(value, key)


def _list(body: Mapping[str, Json], key: str) -> list[Json]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise NgError(f"{key} is not a list")


def _as_dict(value: Json, key: str) -> Mapping[str, Json]:
    if isinstance(value, dict):
        return value
    raise NgError(f"{key} is not a dictionary")


def _as_text(value: Json, key: str) -> str:
    if type(value) is str:
        return value
    raise NgError(f"{key} holds a non-string")
