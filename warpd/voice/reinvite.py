"""re-INVITE inside an established call: hold, resume, codec change (RFC 3261 14, RFC 3264 8).

The side that sends a re-INVITE is the offerer for this exchange: its SDP goes
through an RTPEngine re-offer (same call, the tags in the direction of this
offer), the rewritten SDP to the other side in a re-INVITE of its dialog, and
that side's answer back through RTPEngine to the offerer in our 200. A
re-INVITE arriving while one is pending in either direction is glare: 491
(14.1). A re-INVITE without SDP (a session refresh) is answered with the SDP
warpd last gave that side, without bothering the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from media.errors import RtpEngineUnavailable
from protocols.ng.errors import NgError
from protocols.sip.transaction import RequestReceived, ResponseReceived, TransactionTimeout
from warpd.voice.legs import SDP, Side, a_response

if TYPE_CHECKING:
    from warpd.voice.call import Call

# 14.2 / 17.1.1.2: a re-INVITE's answer comes within Timer B.
_ANSWER_WAIT = 32.0


async def relay_reinvite(call: Call, side: Side, event: RequestReceived) -> bool:
    """Relay one re-INVITE to the other side; True when the call ended meanwhile."""
    sw, request, key = call.sw, event.request, event.key
    assert key is not None
    leg, other = (call.a, call.b) if side is Side.A else (call.b, call.a)
    assert leg is not None
    assert leg.dialog is not None
    refused = leg.dialog.receive_request(request)
    if refused is not None or other is None or other.dialog is None:
        sw.respond(key, request, refused or 500, leg.local_tag)
        return False
    # A carrier refreshing the B leg's session timer gets it back in the 2xx (RFC 4028 9).
    timer = call.carrier.answer_headers() if side is Side.B and call.carrier else ()
    if not request.body:
        ok = a_response(
            request, 200, leg.local_tag, sw.contact_on(leg.addr), sdp=leg.local_sdp, headers=timer
        )
        sw.respond_with(key, ok)
        sw.start_2xx(leg.dialog, ok)
        return False
    try:
        offer = await call.media.offer(request.body, leg.addr[0], from_b=side is Side.B)
    except (RtpEngineUnavailable, NgError):
        sw.respond(key, request, 488, leg.local_tag)
        return False
    reinvite = other.dialog.create_request("INVITE", body=offer, content_type=SDP)
    out_key = sw.send_request(call, reinvite, other.addr)
    while True:
        item = await call.next_event(_ANSWER_WAIT)
        if item is None:
            sw.respond(key, request, 408, leg.local_tag)
            return False
        got_side, got = item
        if isinstance(got, ResponseReceived) and got.key == out_key:
            status = got.response.status
            if status < 200:
                continue
            if status >= 300:
                sw.respond(key, request, status, leg.local_tag)
                return False
            other.ack = sw.send_ack(other.dialog.create_ack(reinvite.cseq.number), other.addr)
            try:
                answer = await call.media.answer(got.response.body, other.addr[0],
                                                 from_b=side is Side.A)  # fmt: skip
            except (RtpEngineUnavailable, NgError):
                sw.respond(key, request, 488, leg.local_tag)
                return False
            other.local_sdp, leg.local_sdp = offer, answer
            ok = a_response(
                request, 200, leg.local_tag, sw.contact_on(leg.addr), sdp=answer, headers=timer
            )
            sw.respond_with(key, ok)
            sw.start_2xx(leg.dialog, ok)
            return False
        if isinstance(got, TransactionTimeout) and got.key == out_key:
            sw.respond(key, request, 408, leg.local_tag)
            return False
        if isinstance(got, RequestReceived) and got.key is not None:
            if got.request.method == "INVITE":
                sw.respond(got.key, got.request, 491, call.leg(got_side).local_tag)
                continue
            if call.in_dialog(got_side, got):  # a BYE: the call is over
                sw.respond(key, request, 487, leg.local_tag)
                return True
            continue
        call.stray(got_side, got)
