"""One B2BUA call: the A leg warpd answers, the B leg it places (RFC 3261, RFC 3264).

A call is one task reading its own inbox of SIP events, so the flow reads in
order: RTPEngine offer -> INVITE to each gateway in turn (the next one on 408,
5xx, a timeout or no answer at all; any other final answer is relayed) ->
18x relayed with RTPEngine's answer -> 200: ACK the carrier, 200 to the PBX ->
wait for BYE from either side (re-INVITEs relayed meanwhile, ``reinvite``),
the maximum duration, an unrefreshed session timer, a missing ACK or the loss
of the call's RTPEngine -> BYE the other side, RTPEngine delete with stats ->
CDR and charge. A CANCEL from
the PBX (answered 487 by the endpoint) cancels the B leg; a 200 that crosses
it is ACKed and BYEd. Events for a B transaction the call gave up on (a late
200 from a gateway that timed out) are ACKed and BYEd too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING

import structlog

from media.errors import RtpEngineUnavailable
from protocols.ng.errors import NgError
from protocols.sip.dialogs import DialogAckTimeout
from protocols.sip.errors import SipError
from protocols.sip.message import SipRequest, SipResponse
from protocols.sip.transaction import (
    Addr,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionKey,
    TransactionTimeout,
)
from warpd.voice.admission import CallPlan
from warpd.voice.auth import answer_challenge
from warpd.voice.carrier_refresh import EXPIRED, REFRESH_FAILED, CarrierRefresh, Refresh
from warpd.voice.cdr import Answered, Cdr, close_cdr
from warpd.voice.dtmf import Digit, info_digit
from warpd.voice.inbox import CallEvent, Inbox, Mailbox, MediaLost, q850_of
from warpd.voice.legs import Leg, Side, a_response, b_invite, uac_dialog, uas_dialog
from warpd.voice.media import MediaSession, codecs_of, fill_media_stats
from warpd.voice.rating import best_rate, price_micros
from warpd.voice.reinvite import relay_reinvite
from warpd.voice.session_timer import REFRESH_METHODS, carrier_request, carrier_timer, min_se
from warpd.voice.trunks import Gateway

if TYPE_CHECKING:
    from warpd.voice.b2bua import B2bua

log = structlog.get_logger(__name__)


class Outcome(Enum):
    ANSWERED = "answered"
    NEXT = "next"  # try the next gateway
    FINAL = "final"  # the PBX has its final answer


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Call:
    # Slotted: one per active call (the memory target is under 20 KB a call, issue 10).
    __slots__ = (
        "_hung_up", "_ringing", "_tried", "a", "b", "cancelled", "carrier", "cdr", "final_to_a",
        "inbox", "invite", "media", "media_offer", "plan", "sw",
    )  # fmt: skip

    def __init__(
        self,
        b2bua: B2bua,
        *,
        invite: SipRequest,
        key: TransactionKey,
        cdr: Cdr,
        plan: CallPlan,
        a_tag: str,
    ) -> None:
        self.sw = b2bua
        # The PBX's INVITE, until the call is answered (then only its dialog is needed).
        self.invite: SipRequest | None = invite
        self.cdr = cdr
        self.plan = plan
        self.a = Leg(Side.A, b2bua.source_of(key), invite.call_id, a_tag, invite_key=key)
        self.b: Leg | None = None
        self.inbox = Mailbox()
        self.cancelled = False
        self.media = MediaSession(
            b2bua.media, str(cdr.id), invite.from_.tag or "", a_tag,
            inject_dtmf=b2bua.settings.info_dtmf,
        )  # fmt: skip
        self.final_to_a = False
        self._ringing = False
        # Every B INVITE sent, by Call-ID: a late 2xx to one we left is ACKed and BYEd.
        self._tried: dict[str, tuple[SipRequest, Addr]] = {}
        self._hung_up: set[str | None] = set()
        self.media_offer = b""  # the SDP RTPEngine made for the B side
        self.carrier: CarrierRefresh | None = None  # the B leg's session timer, once up

    # -- what the B2BUA calls --------------------------------------------------------

    def post(self, side: Side, event: CallEvent | DialogAckTimeout[object]) -> None:
        if isinstance(event, CancelReceived):
            self.cancelled = True
            self.final_to_a = True  # the endpoint answered the INVITE 487
        self.inbox.put((side, event))

    async def run(self) -> None:
        try:
            if await self._setup():
                await self._connected()
        except Exception:
            log.exception("call_failed", call_id=self.a.call_id)
            self._final_a(500)
        finally:
            await self._teardown()

    # -- setup -----------------------------------------------------------------------

    async def _setup(self) -> bool:
        invite = self.a_invite()
        self.cdr.codec_a = codecs_of(invite.body)
        try:
            offer = await self._offer(invite)
        except (RtpEngineUnavailable, NgError) as exc:
            log.warning("call_media_refused", error=str(exc))
            self.cdr.hangup_by = "system"
            self._final_a(503 if isinstance(exc, RtpEngineUnavailable) else 488)
            return False
        self.cdr.rtpengine_node = self.media.node
        self.media_offer = offer
        for gateway in self.plan.gateways:
            if self.cancelled:
                break
            outcome = await self._attempt(gateway, offer)
            if outcome is Outcome.ANSWERED:
                return True
            if outcome is Outcome.FINAL:
                return False
        if not self.cancelled:
            self._final_a(503)
        return False

    async def _offer(self, invite: SipRequest) -> bytes:
        """RTPEngine's offer, recorded when the trunk records calls (a refusal to record
        is logged and put in the CDR, never a reason to fail the call)."""
        if not self.plan.record:
            return await self.media.offer(invite.body, self.a.addr[0])
        offer, files = await self.media.offer_recorded(invite.body, self.a.addr[0])
        if files:
            self.cdr.recording, self.cdr.recording_path = "recorded", files[0]
        else:
            self.cdr.recording = "refused"
            log.warning("call_recording_refused", call_id=self.a.call_id, cdr_id=str(self.cdr.id))
        return offer

    async def _attempt(self, gateway: Gateway, sdp: bytes) -> Outcome:
        sw = self.sw
        self._ringing = False
        leg = Leg(Side.B, gateway.addr, sw.new_id(), sw.new_id())
        self.b = leg
        self.cdr.attempts += 1
        self.cdr.gateway_id, self.cdr.call_id_b = gateway.id, leg.call_id
        key, sent = self._send_invite(gateway, leg, sdp)
        auth: tuple[tuple[str, str], ...] = ()
        interval: int | None = None  # the callee's Min-SE, after a 422
        timeout = sw.settings.gateway_timeout
        while True:
            item = await self.next_event(timeout)
            if item is None:
                if self._ringing:  # no answer in time: give up on the callee
                    sw.cancel(key)
                    self._final_a(480)
                    self.cdr.attempt_codes.append(480)
                    await self._drain_b_final(key)
                    return Outcome.FINAL
                self.cdr.attempt_codes.append(408)
                # Given up on: a late 200 from this gateway is ACKed and BYEd (stray).
                return Outcome.NEXT
            side, event = item
            if isinstance(event, CancelReceived):
                sw.cancel(key)
                continue
            if isinstance(event, TransactionTimeout) and event.key == key:
                self.cdr.attempt_codes.append(408)
                return Outcome.NEXT
            if not isinstance(event, ResponseReceived) or event.key != key:
                self.stray(side, event)
                continue
            response = event.response
            status = response.status
            if status < 200:
                timeout = sw.settings.ring_timeout
                if status > 100:
                    await self._provisional(response)
                continue
            if status < 300:
                return await self._answered(leg, sent, response)
            retry = self._retry(gateway, sent, response, auth, interval)
            if retry is not None:
                auth, interval = retry
                key, sent = self._send_invite(
                    gateway, leg, sdp, cseq=sent.cseq.number + 1, extra=auth, interval=interval
                )
                continue
            self.cdr.attempt_codes.append(status)
            self.cdr.q850_cause = q850_of(response) or self.cdr.q850_cause
            if self.cancelled:
                return Outcome.FINAL
            if status == 408 or 500 <= status < 600:
                return Outcome.NEXT
            self._final_a(status)
            return Outcome.FINAL

    def _retry(
        self,
        gateway: Gateway,
        sent: SipRequest,
        response: SipResponse,
        auth: tuple[tuple[str, str], ...],
        interval: int | None,
    ) -> tuple[tuple[tuple[str, str], ...], int | None] | None:
        """Once each: a carrier's 401/407 answered with the gateway's credentials, a 422
        with its Min-SE (RFC 4028 6); the INVITE's headers for the retry, or None."""
        if self.cancelled:
            return None
        status = response.status
        if status in (401, 407) and not auth:
            header = answer_challenge(gateway, sent, response, self.sw.new_id())
            return None if header is None else ((header,), interval)
        asked = self.sw.settings.carrier_session_expires
        if status == 422 and interval is None and asked:
            larger = min_se(response, asked)
            return None if larger is None else (auth, larger)
        return None

    def _send_invite(
        self,
        gateway: Gateway,
        leg: Leg,
        sdp: bytes,
        *,
        cseq: int = 1,
        extra: tuple[tuple[str, str], ...] = (),
        interval: int | None = None,
    ) -> tuple[TransactionKey, SipRequest]:
        sw = self.sw
        asked = interval or sw.settings.carrier_session_expires
        if asked:
            extra = (*extra, *carrier_request(asked))
        invite = b_invite(
            target=gateway.dial(self.plan.dst),
            gateway_host=f"{gateway.host}:{gateway.port}",
            caller=self.plan.caller,
            local_host=sw.settings.advertised,
            call_id=leg.call_id,
            tag=leg.local_tag,
            contact=sw.contact_on(gateway.addr),
            sdp=sdp,
            max_forwards=self.plan.max_forwards,
            cseq=cseq,
            extra=extra,
        )
        key = sw.send_request(self, invite, gateway.addr)
        leg.invite_key = key
        sent = sw.sent_request(key) or invite
        self._tried[leg.call_id] = (sent, gateway.addr)
        return key, sent

    async def _provisional(self, response: SipResponse) -> None:
        self._ringing = True
        if self.cdr.ring_at is None:
            self.cdr.ring_at = _now()
        sdp = b""
        if response.body and not self.cancelled:
            try:
                sdp = await self.media.answer(response.body, self.b.addr[0] if self.b else "")
            except (RtpEngineUnavailable, NgError) as exc:
                log.warning("call_early_media_failed", error=str(exc))
        if not self.cancelled and not self.final_to_a:
            status = 183 if sdp else (response.status if response.status != 183 else 180)
            invite, tag = self.a_invite(), self.a.local_tag
            contact = self.sw.contact_on(self.a.addr)
            self.sw.respond_a(self, a_response(invite, status, tag, contact, sdp=sdp))

    async def _answered(self, leg: Leg, invite: SipRequest, response: SipResponse) -> Outcome:
        sw = self.sw
        try:
            dialog = uac_dialog(invite, response)
        except SipError:
            dialog = None
        if dialog is not None:
            leg.dialog = dialog
            leg.ack = sw.send_ack(dialog.create_ack(invite.cseq.number), leg.addr)
            sw.add_dialog(dialog, self, Side.B, leg.addr)
        if self.cancelled or dialog is None:
            self.cdr.attempt_codes.append(200)
            self._bye(leg)
            if not self.cancelled:
                self._final_a(502)
            return Outcome.FINAL
        self.cdr.codec_b = codecs_of(response.body)
        try:
            sdp = await self.media.answer(response.body, leg.addr[0])
        except (RtpEngineUnavailable, NgError) as exc:
            log.warning("call_media_answer_failed", error=str(exc))
            self.cdr.attempt_codes.append(200)
            self._bye(leg)
            self._final_a(503)
            return Outcome.FINAL
        if self.cancelled_meanwhile():  # the CANCEL arrived while RTPEngine answered
            self._bye(leg)
            return Outcome.FINAL
        self.cdr.attempt_codes.append(200)
        self._carrier_timer(leg, response)
        timer = self.plan.timer
        extra = (timer.header(), ("Require", "timer")) if timer is not None else ()
        invite = self.a_invite()
        contact = sw.contact_on(self.a.addr)
        ok = a_response(invite, 200, self.a.local_tag, contact, sdp=sdp, headers=extra)
        self.a.local_sdp, leg.local_sdp = sdp, self.media_offer
        sw.respond_a(self, ok)
        self.final_to_a = True
        self.a.dialog = uas_dialog(invite, ok)
        sw.add_dialog(self.a.dialog, self, Side.A, self.a.addr)
        sw.start_2xx(self.a.dialog, ok)
        # Up: the dialogs hold what the call needs now; the INVITEs (both sides'
        # transactions let theirs go too) are not kept for the call's length.
        self.invite = None
        self._tried.pop(leg.call_id, None)
        self.cdr.answer_at = _now()
        self.cdr.sip_code = 200
        sw.metrics.call_answered(
            self.cdr, sw.trunk_name(self.cdr.trunk_id), sw.gateway_name(self.cdr.gateway_id)
        )
        sw.cdrs.put(Answered(self.cdr, sw.settings.instance))
        return Outcome.ANSWERED

    def _carrier_timer(self, leg: Leg, response: SipResponse) -> None:
        timer = carrier_timer(response) if self.sw.settings.carrier_session_expires else None
        if timer is not None:
            allow = ",".join(response.header_values("Allow")).replace(" ", "").upper()
            now = asyncio.get_running_loop().time()
            self.carrier = CarrierRefresh(self, leg, timer, "UPDATE" in allow.split(","), now)

    def a_invite(self) -> SipRequest:
        assert self.invite is not None, "the PBX's INVITE is kept until the answer"
        return self.invite

    def cancelled_meanwhile(self) -> bool:
        # A method, not the attribute: a CANCEL may have been posted during an await.
        return self.cancelled

    async def _drain_b_final(self, key: TransactionKey) -> None:
        """After CANCEL: wait briefly for the B leg's 487 (or a crossing 200 to hang up)."""
        while (item := await self.next_event(self.sw.settings.gateway_timeout)) is not None:
            side, event = item
            if isinstance(event, ResponseReceived) and event.key == key:
                if 200 <= event.response.status < 300:
                    self._late_2xx(event.response)  # answered too late: ACK and BYE
                if event.response.status >= 200:
                    return
            elif isinstance(event, TransactionTimeout):
                return
            else:
                self.stray(side, event)

    # -- connected -------------------------------------------------------------------

    async def _connected(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.sw.settings.max_duration
        timer, refreshed = self.plan.timer, loop.time()
        carrier = self.carrier
        while True:
            expiry = deadline if timer is None else min(deadline, timer.expires(refreshed))
            if carrier is not None:
                expiry = min(expiry, carrier.deadline())
            item = await self.next_event(max(expiry - loop.time(), 0.0))
            if item is None:
                now = loop.time()
                if carrier is not None and now >= carrier.deadline() and now < deadline:
                    if not carrier.on_deadline(now):
                        continue  # a refresh sent
                    self.cdr.q850_cause = EXPIRED
                    self._hangup("session_timer")  # the carrier did not refresh
                    return
                # RFC 4028 section 10: not refreshed in time, the session is dead.
                lapsed = timer is not None and now >= timer.expires(refreshed)
                self._hangup("session_timer" if lapsed else "system")
                return
            side, event = item
            if carrier is not None:
                verdict = carrier.on_event(side, event, loop.time())
                if verdict is Refresh.FAILED:
                    self.cdr.q850_cause = REFRESH_FAILED
                    self._hangup("session_timer")
                    return
                if verdict is Refresh.TAKEN:
                    continue
            if (
                isinstance(event, RequestReceived)
                and side is Side.A
                and event.request.method in REFRESH_METHODS
            ):
                refreshed = loop.time()
            if isinstance(event, DialogAckTimeout):
                self._hangup("system")
                return
            if isinstance(event, MediaLost):
                self.cdr.q850_cause = 41  # Temporary failure: the media relay is gone
                self.media.offered = False  # nothing left to delete there
                self._hangup("system")
                return
            if isinstance(event, RequestReceived) and event.key is not None:
                if event.request.method == "INVITE":
                    if await relay_reinvite(self, side, event):
                        return
                elif self.in_dialog(side, event):
                    return
            else:
                self.stray(side, event)

    def in_dialog(self, side: Side, event: RequestReceived) -> bool:
        """Answer a request inside the dialog; True when it ended the call."""
        request = event.request
        assert event.key is not None
        leg = self.a if side is Side.A else self.b
        assert leg is not None
        assert leg.dialog is not None
        refused = leg.dialog.receive_request(request)
        if refused is not None:
            self.sw.respond(event.key, request, refused, leg.local_tag)
            return False
        if request.method == "BYE":
            self.sw.respond(event.key, request, 200, leg.local_tag)
            self.cdr.hangup_by = "caller" if side is Side.A else "callee"
            self.cdr.q850_cause = q850_of(request) or 16  # 16: normal call clearing
            other = self.b if side is Side.A else self.a
            if other is not None:
                self._bye(other)
            return True
        # A carrier's UPDATE refreshing its session timer gets the timer back (RFC 4028 9).
        carrier = self.carrier if side is Side.B and request.method == "UPDATE" else None
        headers = () if carrier is None else carrier.answer_headers()
        self.sw.respond(event.key, request, 200, leg.local_tag, headers=headers)
        if request.method == "INFO" and self.sw.settings.info_dtmf:
            content_type = request.content_type
            mime = None if content_type is None else content_type.mime
            digit = info_digit(mime, request.body)
            if digit is not None:
                self.sw.spawn(self._play_dtmf(digit, side))
        return False

    async def _play_dtmf(self, digit: Digit, side: Side) -> None:
        """SIP INFO DTMF to the other side as RFC 4733 (``warpd.voice.dtmf``)."""
        try:
            await self.media.play_dtmf(digit.code, digit.duration_ms, from_b=side is Side.B)
        except (RtpEngineUnavailable, NgError) as exc:
            log.warning("call_dtmf_failed", call_id=self.a.call_id, error=str(exc))
        else:
            self.sw.metrics.dtmf.labels(side.value).inc()

    def _hangup(self, by: str) -> None:
        self.cdr.hangup_by = by
        for leg in (self.a, self.b):
            if leg is not None:
                self._bye(leg)

    def _bye(self, leg: Leg) -> None:
        dialog = leg.dialog
        if dialog is None or dialog.state.value == "terminated":
            return
        bye = dialog.create_request("BYE")
        dialog.terminate()
        self.sw.send_request(None, bye, leg.addr)

    # -- events that belong to no step -------------------------------------------------

    def stray(self, side: Side, event: CallEvent | DialogAckTimeout[object]) -> None:
        if isinstance(event, ResponseReceived) and 200 <= event.response.status < 300:
            if event.response.cseq.method == "INVITE":
                self._late_2xx(event.response)
        elif isinstance(event, RequestReceived) and event.key is not None:
            leg = self.a if side is Side.A else self.b
            tag = leg.local_tag if leg is not None else self.a.local_tag
            status = 200 if event.request.method == "BYE" else 481
            self.sw.respond(event.key, event.request, status, tag)

    def _late_2xx(self, response: SipResponse) -> None:
        """A 2xx retransmission gets our ACK again; a 2xx we no longer want, ACK+BYE."""
        b = self.b
        if b is not None and b.dialog is not None and response.call_id == b.call_id:
            if b.ack is not None:
                self.sw.send_stateless(b.ack, b.addr)
            return
        tried = self._tried.get(response.call_id)
        if tried is None or response.to.tag in self._hung_up:
            return
        invite, addr = tried
        try:
            dialog = uac_dialog(invite, response)
        except SipError:
            return
        self._hung_up.add(response.to.tag)
        self.sw.send_ack(dialog.create_ack(invite.cseq.number), addr)
        self.sw.send_request(None, dialog.create_request("BYE"), addr)

    def after_end(self, side: Side, event: CallEvent | DialogAckTimeout[object]) -> None:
        """An event that reached the call after its task finished."""
        self.stray(side, event)

    def leg(self, side: Side) -> Leg:
        leg = self.a if side is Side.A else self.b
        assert leg is not None
        return leg

    # -- plumbing --------------------------------------------------------------------

    async def next_event(self, timeout: float) -> Inbox | None:
        return await self.inbox.get(timeout)

    def _final_a(self, status: int) -> None:
        if self.final_to_a:
            return
        self.final_to_a = True
        self.cdr.sip_code = status
        contact = self.sw.contact_on(self.a.addr)
        response = a_response(self.a_invite(), status, self.a.local_tag, contact)
        self.sw.respond_a(self, response)

    async def _teardown(self) -> None:
        cdr = self.cdr
        try:
            stats = await self.media.delete()
        except (RtpEngineUnavailable, NgError) as exc:
            log.warning("call_media_delete_failed", error=str(exc))
            stats = None
        if stats is not None and self.b is not None:
            fill_media_stats(cdr, stats, self.media.from_tag, self.media.to_tag)
        close_cdr(cdr, _now(), self.plan.rate, cancelled=self.cancelled)
        if cdr.billsec and cdr.gateway_id is not None:
            # What the carrier charges us, for margins and least-cost routing reports.
            costs = self.sw.directory.costs.get(cdr.gateway_id, ())
            cost = best_rate(costs, cdr.dst_e164 or "")
            cdr.cost_micros = 0 if cost is None else price_micros(cost, cdr.billsec)
        self.sw.finished(self)
        self.sw.cdrs.put(cdr)
