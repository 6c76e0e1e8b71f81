"""Server transactions (RFC 3261 sections 17.2.1 and 17.2.2, RFC 6026 section 7.1).

INVITE server: Proceeding -> Completed (non-2xx; Timer G retransmits it over
UDP until the ACK, Timer H gives up) -> Confirmed (Timer I absorbs ACK
retransmits) -> Terminated; or Proceeding -> Accepted on a 2xx (RFC 6026: the
TU retransmits the 2xx through the transaction, ACKs go to the TU, Timer L
absorbs INVITE retransmits) -> Terminated. A 100 Trying goes out by itself
when the TU has said nothing within 200 ms (17.2.1).

Non-INVITE server: Trying -> Proceeding -> Completed (Timer J absorbs request
retransmits) -> Terminated.

The TU answers through ``respond()``; a response in a state whose table has no
entry for it (after the transaction sent its final response) returns False.
"""

from __future__ import annotations

from typing import ClassVar

from protocols.sip.message import SipMessage, SipRequest, SipResponse, make_response
from protocols.sip.timers import TimerConfig, TimerName
from protocols.sip.transaction import (
    Addr,
    Handler,
    Input,
    RequestReceived,
    TableKey,
    Transaction,
    TransactionKey,
    TransactionState,
    TransactionTimeout,
    response_input,
)

S = TransactionState
T = TimerName


class ServerTransaction(Transaction):
    """Holds the request it was created for and the last response the TU sent.

    ``addr`` is where its responses go (``transaction.response_address``),
    which is not always where the request came from.
    """

    __slots__ = ("ack_source", "last_response", "to_tag")

    def __init__(
        self,
        key: TransactionKey,
        request: SipRequest,
        addr: Addr,
        *,
        reliable: bool,
        config: TimerConfig,
        state: TransactionState,
    ) -> None:
        super().__init__(key, request, addr, reliable=reliable, config=config, state=state)
        self.last_response: SipResponse | None = None
        # The To tag of this transaction's responses, once the endpoint chose it.
        self.to_tag: str | None = None
        self.ack_source: Addr = addr

    def receive_request(self, request: SipRequest, addr: Addr, now: float) -> None:
        """A retransmission of the request, or (INVITE) an ACK matching this transaction."""
        inp = Input.ACK if request.method == "ACK" else Input.REQUEST
        if inp is Input.ACK:
            self.ack_source = addr
        self._dispatch(inp, request, now)

    def respond(self, response: SipResponse, now: float) -> bool:
        """Send the TU's response; False when the transaction is past answering."""
        return self._dispatch(response_input(response.status, from_tu=True), response, now)

    def _send(self, response: SipMessage | None) -> None:
        assert isinstance(response, SipResponse)
        self.last_response = response
        self.outbox.append(response)

    def _resend(self, message: SipMessage | None, now: float) -> None:
        if self.last_response is not None:
            self.outbox.append(self.last_response)


class InviteServerTransaction(ServerTransaction):
    """Figure 7 of RFC 3261 as amended by RFC 6026 Figure 5."""

    __slots__ = ("interval",)

    def __init__(
        self,
        key: TransactionKey,
        request: SipRequest,
        addr: Addr,
        now: float,
        *,
        reliable: bool,
        config: TimerConfig,
    ) -> None:
        super().__init__(key, request, addr, reliable=reliable, config=config, state=S.PROCEEDING)
        self.interval = config.t1
        self.timers.start(T.TRYING, now + config.trying_delay)

    @property
    def final_sent(self) -> bool:
        return self.state is not S.PROCEEDING

    def _trying(self, message: SipMessage | None, now: float) -> None:
        self._send(make_response(self.request, 100))

    def _provisional(self, response: SipMessage | None, now: float) -> None:
        self.timers.stop(T.TRYING)
        self._send(response)

    def _accepted(self, response: SipMessage | None, now: float) -> None:
        self.timers.clear()
        self.state = S.ACCEPTED
        self._send(response)
        # RFC 6026 7.1: retransmitted 2xx are the TU's, not this transaction's, so the
        # 2xx (SDP and all) is not held for Timer L's 32 s; its To tag is.
        assert isinstance(response, SipResponse)
        self.to_tag = self.to_tag or response.to.tag
        self.last_response = None
        self._release_request()
        self.timers.start(T.L, now + self.config.timeout)

    def _again_2xx(self, response: SipMessage | None, now: float) -> None:
        self._send(response)

    def _ack_to_tu(self, ack: SipMessage | None, now: float) -> None:
        # RFC 6026 section 7.1: an ACK matching an Accepted transaction is the
        # ACK for its 2xx and belongs to the TU.
        assert isinstance(ack, SipRequest)
        self.events.append(RequestReceived(ack, self.ack_source, None))

    def _completed(self, response: SipMessage | None, now: float) -> None:
        self.timers.clear()
        self.state = S.COMPLETED
        self._send(response)
        if not self.reliable:
            self.timers.start(T.G, now + self.interval)
        self.timers.start(T.H, now + self.config.timeout)

    def _retransmit_final(self, message: SipMessage | None, now: float) -> None:
        self._resend(None, now)
        self.interval = self.config.next_interval(self.interval)
        self.timers.start(T.G, now + self.interval)

    def _confirmed(self, ack: SipMessage | None, now: float) -> None:
        self.timers.clear()
        self.state = S.CONFIRMED
        self._wait_then_terminate(T.I, self.config.wait_t4(self.reliable), now)

    def _no_ack(self, message: SipMessage | None, now: float) -> None:
        self.events.append(TransactionTimeout(self.key, T.H))
        self._terminate()

    TABLE: ClassVar[dict[TableKey, Handler]] = {
        (S.PROCEEDING, T.TRYING): _trying,
        (S.PROCEEDING, Input.REQUEST): ServerTransaction._resend,
        (S.PROCEEDING, Input.TU_1XX): _provisional,
        (S.PROCEEDING, Input.TU_2XX): _accepted,
        (S.PROCEEDING, Input.TU_FINAL): _completed,
        (S.ACCEPTED, Input.TU_2XX): _again_2xx,
        (S.ACCEPTED, Input.ACK): _ack_to_tu,
        (S.ACCEPTED, T.L): ServerTransaction._end,
        (S.COMPLETED, Input.REQUEST): ServerTransaction._resend,
        (S.COMPLETED, Input.ACK): _confirmed,
        (S.COMPLETED, T.G): _retransmit_final,
        (S.COMPLETED, T.H): _no_ack,
        (S.CONFIRMED, T.I): ServerTransaction._end,
    }


class NonInviteServerTransaction(ServerTransaction):
    """Figure 8 of RFC 3261."""

    __slots__ = ()

    def __init__(
        self,
        key: TransactionKey,
        request: SipRequest,
        addr: Addr,
        now: float,
        *,
        reliable: bool,
        config: TimerConfig,
    ) -> None:
        super().__init__(key, request, addr, reliable=reliable, config=config, state=S.TRYING)

    def _provisional(self, response: SipMessage | None, now: float) -> None:
        self.state = S.PROCEEDING
        self._send(response)

    def _completed(self, response: SipMessage | None, now: float) -> None:
        self.state = S.COMPLETED
        self._send(response)
        self._wait_then_terminate(T.J, self.config.wait_j(self.reliable), now)

    TABLE: ClassVar[dict[TableKey, Handler]] = {
        (S.TRYING, Input.TU_1XX): _provisional,
        (S.TRYING, Input.TU_2XX): _completed,
        (S.TRYING, Input.TU_FINAL): _completed,
        (S.PROCEEDING, Input.REQUEST): ServerTransaction._resend,
        (S.PROCEEDING, Input.TU_1XX): _provisional,
        (S.PROCEEDING, Input.TU_2XX): _completed,
        (S.PROCEEDING, Input.TU_FINAL): _completed,
        (S.COMPLETED, Input.REQUEST): ServerTransaction._resend,
        (S.COMPLETED, T.J): ServerTransaction._end,
    }
