"""The B leg's RFC 4028 session timer while a call is up: warpd's refreshes, or the callee's.

When warpd is the refresher it sends a refresh at half the interval: UPDATE
if the callee's 2xx allowed it (RFC 4028 section 9 prefers it: no offer is
needed), else a re-INVITE with the SDP it last sent. A 2xx refreshes the
session; 408 or 481, or no answer at all, mean the callee's side of the
dialog is gone (section 10), and the call is cleared on both sides. Another
error leaves the session until it expires. When the callee refreshes, any
re-INVITE or UPDATE from it restarts the interval; none before it ends clears
the call.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from protocols.sip.dialogs import DialogAckTimeout
from protocols.sip.transaction import (
    RequestReceived,
    ResponseReceived,
    TransactionKey,
    TransactionTimeout,
)
from warpd.voice.inbox import CallEvent
from warpd.voice.legs import SDP, Leg, Side
from warpd.voice.session_timer import REFRESH_METHODS, CarrierTimer, carrier_timer

if TYPE_CHECKING:
    from warpd.voice.call import Call

# Q.850 causes of a carrier leg cleared by its timer: no refresh came (102,
# recovery on timer expiry), or warpd's refresh found no dialog (41, temporary failure).
EXPIRED, REFRESH_FAILED = 102, 41


class Refresh(Enum):
    NOT_MINE = "not-mine"  # the call handles the event as before
    TAKEN = "taken"  # the answer to warpd's refresh, consumed here
    FAILED = "failed"  # the callee's dialog is gone: clear the call


class CarrierRefresh:
    __slots__ = ("_invite_cseq", "_pending", "call", "leg", "refreshed", "timer", "update")

    def __init__(self, call: Call, leg: Leg, timer: CarrierTimer, update: bool, now: float) -> None:
        self.call = call
        self.leg = leg
        self.timer = timer
        self.update = update  # the callee allows UPDATE
        self.refreshed = now
        self._pending: TransactionKey | None = None
        self._invite_cseq = 0

    def deadline(self) -> float:
        if self.timer.we_refresh and self._pending is None:
            return self.timer.refresh_due(self.refreshed)
        return self.timer.expires(self.refreshed)

    def on_deadline(self, now: float) -> bool:
        """The deadline came: send a refresh, or True when the session expired."""
        if now >= self.timer.expires(self.refreshed):
            return True
        if self.timer.we_refresh and self._pending is None:
            self._send()
        return False

    def _send(self) -> None:
        dialog = self.leg.dialog
        assert dialog is not None
        headers = self.timer.headers()
        if self.update:
            request = dialog.create_request("UPDATE", headers=headers)
        else:
            request = dialog.create_request(
                "INVITE", headers=headers, body=self.leg.local_sdp, content_type=SDP
            )
            self._invite_cseq = request.cseq.number
        self._pending = self.call.sw.send_request(self.call, request, self.leg.addr)

    def answer_headers(self) -> tuple[tuple[str, str], ...]:
        """For the 2xx to the callee's refresh: it stays the refresher (its UPDATE's UAC)."""
        if self.timer.we_refresh:
            return ()
        return (("Require", "timer"), ("Session-Expires", f"{self.timer.interval};refresher=uac"))

    def on_event(
        self, side: Side, event: CallEvent | DialogAckTimeout[object], now: float
    ) -> Refresh:
        if side is not Side.B:
            return Refresh.NOT_MINE
        if isinstance(event, RequestReceived) and event.request.method in REFRESH_METHODS:
            self.refreshed = now  # the callee refreshed (or re-offered): the session lives
            return Refresh.NOT_MINE
        if isinstance(event, TransactionTimeout) and event.key == self._pending:
            return Refresh.FAILED
        if not isinstance(event, ResponseReceived) or event.key != self._pending:
            return Refresh.NOT_MINE
        status = event.response.status
        if status < 200:
            return Refresh.TAKEN
        self._pending = None
        if status < 300:
            self.refreshed = now
            self.timer = carrier_timer(event.response) or self.timer
            if self._invite_cseq and self.leg.dialog is not None:
                ack = self.leg.dialog.create_ack(self._invite_cseq)
                self.leg.ack = self.call.sw.send_ack(ack, self.leg.addr)
            return Refresh.TAKEN
        return Refresh.FAILED if status in (408, 481) else Refresh.TAKEN
