"""Client transactions (RFC 3261 sections 17.1.1 and 17.1.2, RFC 6026 section 7.2).

INVITE client: Calling -> Proceeding -> Completed (non-2xx, ACK sent here) or
Accepted (2xx, RFC 6026: further 2xx go to the TU, which ACKs them) ->
Terminated. Non-INVITE client: Trying -> Proceeding -> Completed -> Terminated.
Requests are retransmitted only over unreliable transports (Timers A and E).

One addition to Figure 5: RFC 3261 leaves a Proceeding INVITE waiting forever
for a final response. Here Timer C (section 16.6 item 11) bounds it; on expiry
the transaction reports ``needs_cancel`` so the endpoint sends a CANCEL, and
Timer B is re-armed so it ends even if the peer never answers that.
"""

from __future__ import annotations

from typing import ClassVar

from protocols.sip.message import SipMessage, SipRequest, SipResponse
from protocols.sip.timers import TimerConfig, TimerName
from protocols.sip.transaction import (
    Addr,
    Handler,
    Input,
    ResponseReceived,
    TableKey,
    Transaction,
    TransactionKey,
    TransactionState,
    TransactionTimeout,
    ack_for_non_2xx,
    response_input,
)

S = TransactionState
T = TimerName
_AWAITING_FINAL = frozenset((S.CALLING, S.TRYING, S.PROCEEDING))


class ClientTransaction(Transaction):
    """Sends its request at creation and matches the responses given to it."""

    TIMEOUT_TIMER: ClassVar[TimerName]
    __slots__ = ("interval", "last_source")

    def __init__(
        self,
        key: TransactionKey,
        request: SipRequest,
        addr: Addr,
        now: float,
        *,
        reliable: bool,
        config: TimerConfig,
        state: TransactionState,
    ) -> None:
        super().__init__(key, request, addr, reliable=reliable, config=config, state=state)
        self.interval = config.t1
        self.last_source: Addr = addr
        self.outbox.append(request)

    def receive_response(self, response: SipResponse, addr: Addr, now: float) -> None:
        self.last_source = addr
        self._dispatch(response_input(response.status, from_tu=False), response, now)

    def _pass_up(self, response: SipMessage | None) -> None:
        assert isinstance(response, SipResponse)
        self.events.append(ResponseReceived(response, self.last_source, self.key))

    def _timeout(self, message: SipMessage | None, now: float) -> None:
        self.events.append(TransactionTimeout(self.key, self.TIMEOUT_TIMER))
        self._terminate()

    def transport_failed(self, now: float) -> None:
        """8.1.3.1: a request the transport could not deliver is answered as a timeout
        would be, at once, while no final response has come."""
        if self.state in _AWAITING_FINAL:
            self._timeout(None, now)


class InviteClientTransaction(ClientTransaction):
    """Figure 5 of RFC 3261 as amended by RFC 6026 Figure 3."""

    TIMEOUT_TIMER = T.B
    __slots__ = ("needs_cancel",)

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
        super().__init__(key, request, addr, now, reliable=reliable, config=config, state=S.CALLING)
        self.needs_cancel = False
        if not reliable:
            self.timers.start(T.A, now + config.t1)
        self.timers.start(T.B, now + config.timeout)

    def _retransmit(self, message: SipMessage | None, now: float) -> None:
        self.outbox.append(self.request)
        self.interval = self.config.next_interval(self.interval, cap=False)
        self.timers.start(T.A, now + self.interval)

    def _provisional(self, response: SipMessage | None, now: float) -> None:
        assert isinstance(response, SipResponse)
        self.timers.stop(T.A, T.B)
        # Timer C restarts on each 101-199 (section 16.7 step 2), not on a 100.
        if response.status > 100 or not self.timers.running(T.C):
            self.timers.start(T.C, now + self.config.timer_c)
        self.state = S.PROCEEDING
        self._pass_up(response)

    def _accepted(self, response: SipMessage | None, now: float) -> None:
        self.timers.clear()
        self.timers.start(T.M, now + self.config.timeout)
        self.state = S.ACCEPTED
        self._pass_up(response)

    def _again_2xx(self, response: SipMessage | None, now: float) -> None:
        # RFC 6026 section 7.2: each 2xx in Accepted goes to the TU (forks, lost ACKs).
        self._pass_up(response)

    def _completed(self, response: SipMessage | None, now: float) -> None:
        assert isinstance(response, SipResponse)
        self.timers.clear()
        self.state = S.COMPLETED
        self.outbox.append(ack_for_non_2xx(self.request, response))
        self._pass_up(response)
        self._wait_then_terminate(T.D, self.config.wait_d(self.reliable), now)

    def _ack_again(self, response: SipMessage | None, now: float) -> None:
        # 17.1.1.2: a retransmitted final response gets the ACK again, not the TU.
        assert isinstance(response, SipResponse)
        self.outbox.append(ack_for_non_2xx(self.request, response))

    def _timer_c(self, message: SipMessage | None, now: float) -> None:
        self.needs_cancel = True
        self.timers.start(T.B, now + self.config.timeout)

    TABLE: ClassVar[dict[TableKey, Handler]] = {
        (S.CALLING, T.A): _retransmit,
        (S.CALLING, T.B): ClientTransaction._timeout,
        (S.CALLING, Input.RECV_1XX): _provisional,
        (S.CALLING, Input.RECV_2XX): _accepted,
        (S.CALLING, Input.RECV_FINAL): _completed,
        (S.PROCEEDING, Input.RECV_1XX): _provisional,
        (S.PROCEEDING, Input.RECV_2XX): _accepted,
        (S.PROCEEDING, Input.RECV_FINAL): _completed,
        (S.PROCEEDING, T.C): _timer_c,
        (S.PROCEEDING, T.B): ClientTransaction._timeout,
        (S.COMPLETED, Input.RECV_FINAL): _ack_again,
        (S.COMPLETED, T.D): ClientTransaction._end,
        (S.ACCEPTED, Input.RECV_2XX): _again_2xx,
        (S.ACCEPTED, T.M): ClientTransaction._end,
    }


class NonInviteClientTransaction(ClientTransaction):
    """Figure 6 of RFC 3261."""

    TIMEOUT_TIMER = T.F
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
        super().__init__(key, request, addr, now, reliable=reliable, config=config, state=S.TRYING)
        if not reliable:
            self.timers.start(T.E, now + config.t1)
        self.timers.start(T.F, now + config.timeout)

    def _retransmit(self, message: SipMessage | None, now: float) -> None:
        self.outbox.append(self.request)
        # 17.1.2.2: doubling up to T2 in Trying; every T2 once in Proceeding.
        if self.state is S.PROCEEDING:
            self.interval = self.config.t2
        else:
            self.interval = self.config.next_interval(self.interval)
        self.timers.start(T.E, now + self.interval)

    def _provisional(self, response: SipMessage | None, now: float) -> None:
        self.state = S.PROCEEDING
        self._pass_up(response)

    def _completed(self, response: SipMessage | None, now: float) -> None:
        self.timers.clear()
        self.state = S.COMPLETED
        self._pass_up(response)
        self._wait_then_terminate(T.K, self.config.wait_t4(self.reliable), now)

    TABLE: ClassVar[dict[TableKey, Handler]] = {
        (S.TRYING, T.E): _retransmit,
        (S.TRYING, T.F): ClientTransaction._timeout,
        (S.TRYING, Input.RECV_1XX): _provisional,
        (S.TRYING, Input.RECV_2XX): _completed,
        (S.TRYING, Input.RECV_FINAL): _completed,
        (S.PROCEEDING, T.E): _retransmit,
        (S.PROCEEDING, T.F): ClientTransaction._timeout,
        (S.PROCEEDING, Input.RECV_1XX): _provisional,
        (S.PROCEEDING, Input.RECV_2XX): _completed,
        (S.PROCEEDING, Input.RECV_FINAL): _completed,
        (S.COMPLETED, T.K): ClientTransaction._end,
    }
