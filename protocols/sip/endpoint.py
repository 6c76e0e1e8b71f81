"""The SIP transaction layer, sans-I/O (RFC 3261 sections 8.2.2.2, 9, 17.1.3, 17.2.3, 18).

``Endpoint`` owns the transactions of every transport: a peer over UDP is a
``(host, port)``, one over TCP or TLS a ``StreamAddr``, whose transactions are
reliable (no retransmissions, zero Timers D, I, J, K), whose responses go back
on the request's connection (18.2.2) and whose requests carry a TCP or TLS
Via. ``reliable=True`` makes every peer reliable. Bytes or framed
messages come in with their source address and ``now``; responses are matched
to client transactions by branch and CSeq method (17.1.3), requests to server
transactions by branch, sent-by and method (17.2.3, ACK counted as INVITE).
What matches nothing new goes to the TU as an event; retransmissions are
absorbed by their transaction. CANCEL is answered here (section 9.2): 200 for
the CANCEL, 487 for the INVITE it cancels, 481 when it cancels nothing.

Malformed input never raises: a request that can still be answered (its
top Via parses; From, To, Call-ID and CSeq are there) gets the status
of its ``SipError`` (400 mostly, 505 for a version, 416 for a URI scheme, 413
for a size) with the error's detail in the reason phrase; anything else is
dropped. Either way a ``MalformedMessage`` event tells the TU. The parser
hands over what it read with the error, so nothing is parsed twice.

RFC 2543 peers are served: a From without a tag is accepted (8.1.1.3 binds
the client, not us), and a branch without the 3261 cookie, or with nothing
after it, is matched by 17.2.3's older rules (``transaction.server_key``).
Responses go where 18.2.2 and RFC 3581 say (``inbound.response_address``):
the Via's sent-by port unless the client asked for ``rport``.

``build_response`` gives every response of one server transaction the same To
tag (8.2.6.2); ``protocols.sip.uas`` holds the checks a UAS makes before it
accepts a request (501, 420, 415, 483), for the TU to call.

The TU must answer every server transaction it is given (RFC 3261 has no timer
for a silent TU); ``max_transactions`` bounds the damage when it does not, by
answering new requests 503 once that many transactions are alive.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocols.sip.errors import SipError
from protocols.sip.headers import ContentType, NameAddr, parse_via
from protocols.sip.inbound import answerable, response_address, stamp_via, validate_request
from protocols.sip.message import (
    HeaderInput,
    SipMessage,
    SipRequest,
    SipResponse,
    make_response,
)
from protocols.sip.parser import MAX_MESSAGE_SIZE, parse_message
from protocols.sip.timers import TimerConfig
from protocols.sip.transaction import (
    MAGIC_COOKIE,
    Addr,
    CancelReceived,
    Event,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    Role,
    StreamAddr,
    Transaction,
    TransactionKey,
    TransactionState,
    TransactionTerminated,
    Transport,
    cancel_for,
    client_key,
    is_reliable,
    server_key,
)
from protocols.sip.txn_client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from protocols.sip.txn_server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from protocols.sip.uri import Uri

# 8.2.2.2: a request is merged when From tag, Call-ID and CSeq equal another's.
MergeKey = tuple[str, str, int, str]


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """``sent_by`` is the host[:port] this endpoint writes in its Via headers.

    ``stream_sent_by`` is the one written on requests sent over TCP or TLS
    (where warpd listens for them: 18.2.2 lets a server open a connection
    there when the request's connection is gone); ``sent_by`` when absent.
    """

    sent_by: str
    transport: str = "UDP"
    stream_sent_by: tuple[tuple[Transport, str], ...] = ()
    reliable: bool = False
    timers: TimerConfig = field(default_factory=TimerConfig)
    max_transactions: int = 50_000
    max_message_size: int = MAX_MESSAGE_SIZE


class Endpoint:
    """Transactions of one transport: network in, TU calls, datagrams and events out."""

    def __init__(self, config: EndpointConfig, id_source: Callable[[], str]) -> None:
        self.config = config
        self._ids = id_source
        self._via = parse_via(f"SIP/2.0/{config.transport} {config.sent_by}")
        sent_by = dict(config.stream_sent_by)
        self._stream_vias = {
            t: parse_via(f"SIP/2.0/{t.value} {sent_by.get(t, config.sent_by)}")
            for t in (Transport.TCP, Transport.TLS)
        }
        self._txns: dict[TransactionKey, Transaction] = {}
        self._merge: dict[MergeKey, TransactionKey] = {}
        self._merge_of: dict[TransactionKey, MergeKey] = {}
        self._pending_cancel: set[TransactionKey] = set()
        self._heap: list[tuple[float, int, TransactionKey]] = []
        self._seq = 0
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[Event] = deque()

    # -- outputs ---------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def transaction(self, key: TransactionKey) -> Transaction | None:
        return self._txns.get(key)

    def __len__(self) -> int:
        return len(self._txns)

    def make_branch(self) -> str:
        return MAGIC_COOKIE + self._ids()

    def make_tag(self) -> str:
        return self._ids()

    # -- timers ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            txn = self._txns.get(key)
            if txn is not None and txn.get_timer() == deadline:
                return deadline
            heapq.heappop(heap)  # stale: the transaction moved its deadline or ended
            if txn is not None and txn.scheduled == deadline:
                txn.scheduled = None  # its entry is gone: the next deadline is pushed anew
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            popped, _, key = heapq.heappop(heap)
            txn = self._txns.get(key)
            if txn is None:
                continue
            if txn.scheduled == popped:
                txn.scheduled = None
            deadline = txn.get_timer()
            if deadline is not None and deadline <= now:
                txn.handle_timer(now)
                self._settle(txn, now)
            else:
                self._schedule(txn)

    def _schedule(self, txn: Transaction) -> None:
        deadline = txn.get_timer()
        # Most inputs leave the earliest deadline where it was: no second heap entry.
        if deadline is None or deadline == txn.scheduled:
            return
        txn.scheduled = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, txn.key))
        if len(self._heap) > 4 * len(self._txns) + 1024:
            # Re-armed timers leave stale entries behind; rebuild from the truth.
            self._heap = []
            for i, t in enumerate(self._txns.values()):
                t.scheduled = t.get_timer()
                if t.scheduled is not None:
                    self._heap.append((t.scheduled, i, t.key))
            heapq.heapify(self._heap)

    # -- TU calls --------------------------------------------------------------------

    def send_request(self, request: SipRequest, addr: Addr, now: float) -> TransactionKey:
        """Start a client transaction: a Via with a new branch goes on top of ``request``.

        ACK for a 2xx is not a transaction (``send_stateless``); CANCEL goes
        through ``cancel``.
        """
        if request.method in ("ACK", "CANCEL"):
            raise ValueError(f"{request.method} is sent with send_stateless/cancel")
        return self._start_client(self._with_new_via(request, addr), addr, now)

    def _reliable(self, addr: Addr) -> bool:
        return self.config.reliable or is_reliable(addr)

    def _start_client(self, request: SipRequest, addr: Addr, now: float) -> TransactionKey:
        key = TransactionKey(Role.CLIENT, request.top_via.branch or "", request.method)
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        txn = cls(key, request, addr, now, reliable=self._reliable(addr), config=self.config.timers)
        self._txns[key] = txn
        self._settle(txn, now)
        return key

    def cancel(self, key: TransactionKey, now: float) -> bool:
        """CANCEL the INVITE of client transaction ``key`` (section 9.1).

        Before any provisional response the CANCEL waits for one ("the CANCEL
        request MUST NOT be sent" until then). False when there is nothing
        left to cancel (no such INVITE, or it already has its final response).
        """
        txn = self._txns.get(key)
        if not isinstance(txn, InviteClientTransaction):
            return False
        if txn.state is TransactionState.CALLING:
            self._pending_cancel.add(key)
            return True
        if txn.state is not TransactionState.PROCEEDING:
            return False
        self._send_cancel(txn, now)
        return True

    def _send_cancel(self, txn: InviteClientTransaction, now: float) -> None:
        self._pending_cancel.discard(txn.key)
        cancel_key = TransactionKey(Role.CLIENT, txn.key.branch, "CANCEL")
        if cancel_key not in self._txns:
            self._start_client(cancel_for(txn.request), txn.addr, now)

    def respond(self, key: TransactionKey, response: SipResponse, now: float) -> bool:
        """Send the TU's response in server transaction ``key``; False if it is over."""
        txn = self._txns.get(key)
        if not isinstance(txn, ServerTransaction):
            return False
        sent = txn.respond(response, now)
        self._settle(txn, now)
        return sent

    def send_ack(self, ack: SipRequest, addr: Addr) -> SipRequest:
        """Send the ACK for a 2xx (13.2.2.4: outside any transaction, its own branch).

        Returns the ACK as sent, Via included, for resending on 2xx retransmissions.
        """
        ack = self._with_new_via(ack, addr)
        self.send_stateless(ack, addr)
        return ack

    def _with_new_via(self, request: SipRequest, addr: Addr) -> SipRequest:
        """``request`` under our Via with a fresh branch, and rport (RFC 3581) asked for.

        The Via names the transport ``addr`` is reached by (18.1.1)."""
        via = self._stream_vias[addr.transport] if isinstance(addr, StreamAddr) else self._via
        via = via.with_param("branch", self.make_branch()).with_param("rport")
        if request.has_header("Via"):
            return request.with_top_via(via)
        # A request the TU built has no Via yet: put ours first, where readers look.
        headers = (("Via", str(via)), *request.headers)
        return SipRequest.build(request.method, request.uri_text, headers, request.body)

    def send_stateless(self, message: SipMessage, addr: Addr) -> None:
        """Send ``message`` as it is, outside any transaction."""
        self._out.append((message.serialize(), addr))

    def transport_failed(self, addr: Addr, now: float) -> None:
        """Nothing could be sent to ``addr`` (a connection refused or failed: 8.1.3.1,
        17.1.4): its client transactions still waiting time out now, not at Timer B or F.
        A scan of every transaction: connections fail seldom, and one report covers all
        that were waiting for it."""
        failed = [t for t in self._txns.values() if isinstance(t, ClientTransaction)
                  and t.addr == addr]  # fmt: skip
        for txn in failed:
            txn.transport_failed(now)
            self._settle(txn, now)

    # -- network in ------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        if not data.strip(b"\r\n"):
            return  # RFC 5626 section 4.4.1 keepalive (CRLF) or an empty datagram
        try:
            message = parse_message(data, max_size=self.config.max_message_size)
        except SipError as exc:
            self.refuse(exc, addr)
            return
        self.receive_message(message, addr, now)

    def refuse(self, error: SipError, addr: Addr) -> None:
        """Answer input the parser or a stream framer refused, from what it read.

        ``error.message`` is the header section the parser got through; a
        request among it is answered with the error's status when it can be,
        and the TU hears a ``MalformedMessage`` either way.
        """
        message = error.message
        if isinstance(message, SipRequest):
            self._answer_malformed(message, addr, error)
        else:
            self._events.append(
                MalformedMessage(addr, str(error), False, error.status_code, message)
            )

    def receive_message(self, message: SipRequest | SipResponse, addr: Addr, now: float) -> None:
        """A whole message, from ``receive_datagram`` or a stream framer."""
        if isinstance(message, SipResponse):
            self._receive_response(message, addr, now)
        else:
            self._receive_request(message, addr, now)

    def _answer_malformed(self, request: SipRequest, addr: Addr, exc: SipError) -> None:
        answered = answerable(request)
        if answered:
            reply = response_address(request.top_via, addr, reliable=self._reliable(addr))
            response = make_response(request, exc.status_code, exc.reason, to_tag=self.make_tag())
            self.send_stateless(response, reply)
        self._events.append(MalformedMessage(addr, str(exc), answered, exc.status_code, request))

    def _receive_response(self, response: SipResponse, addr: Addr, now: float) -> None:
        try:
            key = client_key(response)
        except SipError as exc:
            self._events.append(MalformedMessage(addr, str(exc), False, exc.status_code, response))
            return
        txn = self._txns.get(key)
        if not isinstance(txn, ClientTransaction):
            self._events.append(ResponseReceived(response, addr, None))
            return
        txn.receive_response(response, addr, now)
        if key in self._pending_cancel and txn.state is TransactionState.PROCEEDING:
            assert isinstance(txn, InviteClientTransaction)
            self._send_cancel(txn, now)
        self._settle(txn, now)

    def _receive_request(self, request: SipRequest, addr: Addr, now: float) -> None:
        try:
            validate_request(request)
            key = server_key(request)
            request = stamp_via(request, addr)
        except SipError as exc:
            self._answer_malformed(request, addr, exc)
            return
        txn = self._txns.get(key)
        if isinstance(txn, ServerTransaction):
            txn.receive_request(request, addr, now)
            self._settle(txn, now)
        elif request.method == "ACK":
            self._events.append(RequestReceived(request, addr, None))
        else:
            reply = response_address(request.top_via, addr, reliable=self._reliable(addr))
            if request.method == "CANCEL":
                self._receive_cancel(request, key, reply, now)
            else:
                self._new_request(request, key, addr, reply, now)

    def _new_request(
        self, request: SipRequest, key: TransactionKey, addr: Addr, reply: Addr, now: float
    ) -> None:
        if len(self._txns) >= self.config.max_transactions:
            self._answer_malformed(request, addr, SipError("transaction limit", 503))
            return
        merge = self._merge_key(request)
        merged_with = None if merge is None else self._merge.get(merge)
        txn = self._create_server(request, key, reply, now)
        if merged_with is not None and merged_with != key:
            # 8.2.2.2: the same request arrived by another path; answer only one.
            txn.respond(self._response(request, 482, txn), now)
        else:
            if merge is not None:
                self._merge[merge] = key
                self._merge_of[key] = merge
            self._events.append(RequestReceived(request, addr, key))
        self._settle(txn, now)

    def _merge_key(self, request: SipRequest) -> MergeKey | None:
        if request.to.tag is not None:
            return None
        cseq = request.cseq
        return (request.from_.tag or "", request.call_id, cseq.number, cseq.method)

    def _create_server(
        self, request: SipRequest, key: TransactionKey, reply: Addr, now: float
    ) -> ServerTransaction:
        cls = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        config = self.config
        txn = cls(key, request, reply, now, reliable=self._reliable(reply), config=config.timers)
        self._txns[key] = txn
        return txn

    def _response(self, request: SipRequest, status: int, txn: ServerTransaction) -> SipResponse:
        return make_response(request, status, to_tag=self._to_tag(txn))

    def _to_tag(self, txn: ServerTransaction) -> str:
        """The one To tag of every response in ``txn`` but 100 (8.2.6.2), minted once.

        The tag of a response the TU already sent through ``respond`` is kept.
        """
        tag = txn.to_tag
        if tag is None:
            last = txn.last_response
            tag = None if last is None or last.status == 100 else last.to.tag
            tag = txn.to_tag = tag or self.make_tag()
        return tag

    def build_response(
        self,
        key: TransactionKey,
        status: int,
        reason: str | None = None,
        *,
        contact: NameAddr | Uri | str | None = None,
        headers: Iterable[HeaderInput] = (),
        body: bytes = b"",
        content_type: str | ContentType | None = None,
        record_route: bool = False,
    ) -> SipResponse:
        """A response to the request of server transaction ``key``, for ``respond``.

        It carries the transaction's To tag (the same on the 18x and the 200:
        one dialog), or the request's own in a dialog; the other arguments are
        ``make_response``'s. KeyError when ``key`` names no server transaction.
        """
        txn = self._txns.get(key)
        if not isinstance(txn, ServerTransaction):
            raise KeyError(key)
        return make_response(
            txn.request,
            status,
            reason,
            to_tag=None if status == 100 else self._to_tag(txn),
            contact=contact,
            headers=headers,
            body=body,
            content_type=content_type,
            record_route=record_route,
        )

    def _receive_cancel(
        self, cancel: SipRequest, key: TransactionKey, reply: Addr, now: float
    ) -> None:
        invite_key = TransactionKey(Role.SERVER, key.branch, "INVITE", key.sent_by)
        invite = self._txns.get(invite_key)
        txn = self._create_server(cancel, key, reply, now)
        if not isinstance(invite, InviteServerTransaction):
            txn.respond(self._response(cancel, 481, txn), now)
            self._settle(txn, now)
            return
        # 9.2: answer the CANCEL with 200 and, if the INVITE has no final response
        # yet, the INVITE with 487; the TU hears about it either way.
        txn.respond(make_response(cancel, 200, to_tag=self._to_tag(invite)), now)
        if not invite.final_sent:
            invite.respond(self._response(invite.request, 487, invite), now)
        self._events.append(CancelReceived(invite_key, cancel))
        self._settle(txn, now)
        self._settle(invite, now)

    # -- bookkeeping -----------------------------------------------------------------

    def _settle(self, txn: Transaction, now: float) -> None:
        """Move a transaction's output to the endpoint's queues and re-arm its timer."""
        if txn.outbox:
            self._out.extend((m.serialize(), txn.addr) for m in txn.outbox)
            txn.outbox.clear()
        if isinstance(txn, InviteClientTransaction) and txn.needs_cancel:
            txn.needs_cancel = False
            self._send_cancel(txn, now)
        events, txn.events = txn.events, []
        for event in events:
            self._events.append(event)
            if isinstance(event, TransactionTerminated):
                self._forget(event.key)
        if not txn.terminated:
            self._schedule(txn)

    def _forget(self, key: TransactionKey) -> None:
        self._txns.pop(key, None)
        self._pending_cancel.discard(key)
        merge = self._merge_of.pop(key, None)
        if merge is not None and self._merge.get(merge) == key:
            del self._merge[merge]
