"""One call's media through RTPEngine: offer, answer, delete and the CDR's media fields.

The rtpengine call-id is the CDR id (unique across PBXs, unlike their
Call-IDs); the A side is the PBX's From tag and the B side the To tag warpd
gives the PBX. Both SDPs are rewritten (``replace origin session-connection``,
``ICE remove``), so no address of either side reaches the other: topology
hiding for media. Media addresses are taken from where signalling came from
(``SIP source address`` with ``received-from``), which is what NATed PBXs need.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.pool import RtpEnginePool
from protocols.ng.messages import Answer, Delete, Ice, Offer, PlayDtmf
from protocols.ng.replies import CallStats, Reply
from protocols.sip.errors import SipError
from protocols.sip.sdp import parse_sdp
from warpd.voice.cdr import Cdr

_REPLACE = ("origin", "session-connection")
_FLAGS = ("SIP-source-address",)
# Lets play DTMF inject events into the call's RTP (SIP INFO interworking); it sends
# the media through rtpengine's codec handler, so it is a setting.
_INJECT = ("SIP-source-address", "inject-DTMF")


def _family(ip: str) -> str:
    return "IP6" if ":" in ip else "IP4"


@dataclass(slots=True)
class MediaSession:
    pool: RtpEnginePool
    call_id: str
    from_tag: str
    to_tag: str
    offered: bool = False
    inject_dtmf: bool = False

    async def offer(self, sdp: bytes, source_ip: str, *, from_b: bool = False) -> bytes:
        """``from_b``: a re-offer from the B side (rtpengine's tags swap roles)."""
        return _sdp_of((await self._offer(sdp, source_ip, from_b=from_b)).sdp)

    async def offer_recorded(self, sdp: bytes, source_ip: str) -> tuple[bytes, tuple[str, ...]]:
        """The first offer with ``record call``: the SDP and the files rtpengine
        records to (none when it does not record: no recording directory)."""
        reply = await self._offer(sdp, source_ip, record=True)
        return _sdp_of(reply.sdp), reply.recordings

    async def _offer(
        self, sdp: bytes, source_ip: str, *, from_b: bool = False, record: bool | None = None
    ) -> Reply:
        reply = await self.pool.offer(
            Offer(
                call_id=self.call_id,
                from_tag=self.to_tag if from_b else self.from_tag,
                sdp=sdp,
                ice=Ice.REMOVE,
                replace=_REPLACE,
                flags=self.flags,
                received_from=(_family(source_ip), source_ip),
                record_call=record,
            )
        )
        self.offered = True
        return reply

    async def answer(self, sdp: bytes, source_ip: str, *, from_b: bool = True) -> bytes:
        """``from_b`` False: the A side answers a re-offer the B side made."""
        reply = await self.pool.answer(
            Answer(
                call_id=self.call_id,
                from_tag=self.from_tag if from_b else self.to_tag,
                to_tag=self.to_tag if from_b else self.from_tag,
                sdp=sdp,
                ice=Ice.REMOVE,
                replace=_REPLACE,
                flags=self.flags,
                received_from=(_family(source_ip), source_ip),
            )
        )
        return _sdp_of(reply.sdp)

    async def delete(self) -> CallStats | None:
        """Ends the media; its stats for the CDR (None if there were no media)."""
        if not self.offered:
            return None
        self.offered = False
        reply = await self.pool.delete(
            Delete(call_id=self.call_id, from_tag=self.from_tag, delete_delay=0)
        )
        return reply.stats

    @property
    def flags(self) -> tuple[str, ...]:
        return _INJECT if self.inject_dtmf else _FLAGS

    async def play_dtmf(self, code: str, duration_ms: int | None, *, from_b: bool) -> None:
        """Inject ``code`` as if the side named sent it: the other side gets the event."""
        await self.pool.call_request(
            PlayDtmf(
                call_id=self.call_id,
                from_tag=self.to_tag if from_b else self.from_tag,
                code=code,
                duration=duration_ms,
            )
        )

    @property
    def node(self) -> str | None:
        return self.pool.instance_of(self.call_id)


def _sdp_of(sdp: bytes | None) -> bytes:
    if not sdp:
        raise SipError("rtpengine answered without SDP", 500)
    return sdp


def codecs_of(body: bytes) -> str | None:
    """The codec names an SDP lists, in preference order (for the CDR)."""
    if not body:
        return None
    try:
        codecs = parse_sdp(body).codecs()
    except SipError:
        return None
    return ",".join(codecs) or None


def fill_media_stats(cdr: Cdr, stats: CallStats, a_tag: str, b_tag: str) -> None:
    """Packets and bytes received from each side, loss and MOS (rtpengine-ng.md sec. 3)."""
    sides = {a_tag: [0, 0], b_tag: [0, 0]}
    for stream in stats.streams:
        if stream.rtcp or stream.tag not in sides:
            continue
        sides[stream.tag][0] += stream.counters.packets
        sides[stream.tag][1] += stream.counters.bytes
    cdr.rtp_packets_a, cdr.rtp_bytes_a = sides[a_tag]
    cdr.rtp_packets_b, cdr.rtp_bytes_b = sides[b_tag]
    # Loss is counted per SSRC; the streams say which side each SSRC came from.
    side_of = {s.ssrc: s.tag for s in stats.streams if s.ssrc is not None}
    lost = {a_tag: 0, b_tag: 0}
    for ssrc in stats.ssrcs:
        tag = side_of.get(ssrc.ssrc)
        if tag in lost and ssrc.cumulative_loss is not None:
            lost[tag] += ssrc.cumulative_loss
    cdr.rtp_lost_a, cdr.rtp_lost_b = lost[a_tag], lost[b_tag]
    averages = [s.average_mos for s in stats.ssrcs if s.average_mos]
    lowest = [s.lowest_mos for s in stats.ssrcs if s.lowest_mos]
    cdr.mos_avg_x10 = sum(averages) // len(averages) if averages else None
    cdr.mos_min_x10 = min(lowest) if lowest else None
