"""Transaction state machines driven directly with a fake clock (RFC 3261 17, RFC 6026).

Each timer's firing times are checked against the RFC's schedule for UDP and for
a reliable transport; every (state, input) entry of every table is exercised.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.sip.message import SipMessage, SipRequest, SipResponse, make_response
from protocols.sip.timers import TimerConfig, TimerName
from protocols.sip.transaction import (
    Input,
    RequestReceived,
    ResponseReceived,
    Role,
    Transaction,
    TransactionKey,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    ack_for_non_2xx,
    cancel_for,
    response_input,
)
from protocols.sip.txn_client import InviteClientTransaction, NonInviteClientTransaction
from protocols.sip.txn_server import InviteServerTransaction, NonInviteServerTransaction

S = TransactionState
T = TimerName
CONFIG = TimerConfig()
PEER = ("192.0.2.1", 5060)


def request(method: str = "INVITE", route: bool = False) -> SipRequest:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKx1"),
        ("Max-Forwards", "70"),
        ("From", "<sip:a@a>;tag=f1"),
        ("To", "<sip:b@b>"),
        ("Call-ID", "cid"),
        ("CSeq", f"7 {method}"),
    ]
    if route:
        headers += [("Route", "<sip:p1;lr>"), ("Route", "<sip:p2;lr>")]
    return SipRequest.build(method, "sip:b@b", headers)


def reply(req: SipRequest, status: int) -> SipResponse:
    return make_response(req, status, to_tag=None if status == 100 else "t9")


def key(method: str, role: Role = Role.CLIENT) -> TransactionKey:
    return TransactionKey(role, "z9hG4bKx1", method)


def ict(reliable: bool = False) -> InviteClientTransaction:
    return InviteClientTransaction(
        key("INVITE"), request(), PEER, 0.0, reliable=reliable, config=CONFIG
    )


def nict(reliable: bool = False) -> NonInviteClientTransaction:
    req = request("OPTIONS")
    return NonInviteClientTransaction(
        key("OPTIONS"), req, PEER, 0.0, reliable=reliable, config=CONFIG
    )


def ist(reliable: bool = False) -> InviteServerTransaction:
    k = key("INVITE", Role.SERVER)
    return InviteServerTransaction(k, request(), PEER, 0.0, reliable=reliable, config=CONFIG)


def nist(reliable: bool = False) -> NonInviteServerTransaction:
    k = key("OPTIONS", Role.SERVER)
    return NonInviteServerTransaction(
        k, request("OPTIONS"), PEER, 0.0, reliable=reliable, config=CONFIG
    )


def drive(txn: Transaction, until: float) -> list[tuple[float, str]]:
    """Fire timers up to ``until``; (time, first line) of each message sent."""
    sent: list[tuple[float, str]] = []
    txn.outbox.clear()
    while (due := txn.get_timer()) is not None and due <= until:
        txn.handle_timer(due)
        sent += [(due, first_line(m)) for m in txn.outbox]
        txn.outbox.clear()
    return sent


def first_line(message: SipMessage) -> str:
    return message.serialize().split(b"\r\n", 1)[0].decode()


def times(sent: list[tuple[float, str]]) -> list[float]:
    return [t for t, _ in sent]


# -- timer schedules -----------------------------------------------------------------


def test_timer_a_doubles_until_timer_b() -> None:
    txn = ict()
    assert txn.outbox == [txn.request]
    sent = drive(txn, 100)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert txn.events == [TransactionTimeout(txn.key, T.B), TransactionTerminated(txn.key)]
    assert txn.terminated
    assert txn.get_timer() is None


def test_reliable_invite_client_has_no_timer_a() -> None:
    txn = ict(reliable=True)
    assert txn.get_timer() == 32.0
    assert drive(txn, 100) == []
    assert TransactionTimeout(txn.key, T.B) in txn.events


def test_timer_e_caps_at_t2_and_f_at_64_t1() -> None:
    txn = nict()
    sent = drive(txn, 100)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert txn.events[0] == TransactionTimeout(txn.key, T.F)


def test_timer_e_every_t2_in_proceeding() -> None:
    txn = nict()
    txn.receive_response(reply(txn.request, 100), PEER, 0.2)
    assert txn.state is S.PROCEEDING
    assert times(drive(txn, 10)) == [0.5, 4.5, 8.5]


def test_timer_g_doubles_capped_until_h() -> None:
    txn = ist()
    assert txn.respond(reply(txn.request, 486), 0.0)
    assert txn.state is S.COMPLETED
    sent = drive(txn, 100)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(line == "SIP/2.0 486 Busy Here" for _, line in sent)
    assert txn.events[0] == TransactionTimeout(txn.key, T.H)


def test_reliable_invite_server_no_g_and_immediate_confirmed_end() -> None:
    txn = ist(reliable=True)
    txn.respond(reply(txn.request, 486), 0.0)
    assert txn.get_timer() == 32.0  # Timer H only
    txn.receive_request(ack_for_non_2xx(txn.request, reply(txn.request, 486)), PEER, 1.0)
    assert txn.terminated  # Timer I is zero over a reliable transport


@pytest.mark.parametrize(("reliable", "end"), [(False, 32.0), (True, None)])
def test_timer_d(reliable: bool, end: float | None) -> None:
    txn = ict(reliable)
    txn.receive_response(reply(txn.request, 404), PEER, 0.0)
    if end is None:
        assert txn.terminated
    else:
        assert txn.get_timer() == end
        drive(txn, end)
        assert txn.terminated


@pytest.mark.parametrize(("reliable", "end"), [(False, 5.0), (True, None)])
def test_timer_k(reliable: bool, end: float | None) -> None:
    txn = nict(reliable)
    txn.receive_response(reply(txn.request, 200), PEER, 0.0)
    assert txn.state is (S.TERMINATED if end is None else S.COMPLETED)
    assert txn.get_timer() == end


@pytest.mark.parametrize(("reliable", "end"), [(False, 32.0), (True, None)])
def test_timer_j(reliable: bool, end: float | None) -> None:
    txn = nist(reliable)
    txn.respond(reply(txn.request, 200), 0.0)
    assert txn.get_timer() == end
    assert txn.terminated is (end is None)


@pytest.mark.parametrize(("reliable", "end"), [(False, 5.0), (True, None)])
def test_timer_i(reliable: bool, end: float | None) -> None:
    txn = ist(reliable)
    txn.respond(reply(txn.request, 500), 0.0)
    txn.receive_request(ack_for_non_2xx(txn.request, reply(txn.request, 500)), PEER, 0.0)
    assert txn.get_timer() == end
    drive(txn, 10)
    assert txn.terminated


def test_timers_l_and_m_accepted_state() -> None:
    server = ist()
    server.respond(reply(server.request, 200), 0.0)
    assert server.state is S.ACCEPTED
    assert server.get_timer() == 32.0
    client = ict()
    client.receive_response(reply(client.request, 200), PEER, 0.0)
    assert client.state is S.ACCEPTED
    assert client.get_timer() == 32.0
    drive(server, 32)
    drive(client, 32)
    assert server.terminated
    assert client.terminated


def test_trying_sent_after_200ms_only_if_tu_silent() -> None:
    silent = ist()
    assert drive(silent, 0.2) == [(0.2, "SIP/2.0 100 Trying")]
    quick = ist()
    quick.respond(reply(quick.request, 180), 0.1)
    assert drive(quick, 0.3) == []


def test_timer_c_asks_for_cancel_then_b_ends() -> None:
    txn = ict()
    txn.receive_response(reply(txn.request, 100), PEER, 0.1)
    assert txn.get_timer() == pytest.approx(180.1)
    txn.receive_response(reply(txn.request, 100), PEER, 10)  # a 100 does not restart C
    assert txn.get_timer() == pytest.approx(180.1)
    txn.receive_response(reply(txn.request, 180), PEER, 20)  # a 180 does
    assert txn.get_timer() == 200
    drive(txn, 200)
    assert txn.needs_cancel
    assert txn.state is S.PROCEEDING
    drive(txn, 232)
    assert TransactionTimeout(txn.key, T.B) in txn.events


# -- INVITE client -------------------------------------------------------------------


def test_invite_client_non_2xx_acked_inside_with_route_and_tag() -> None:
    txn = InviteClientTransaction(
        key("INVITE"), request(route=True), PEER, 0.0, reliable=False, config=CONFIG
    )
    txn.outbox.clear()
    busy = reply(txn.request, 486)
    txn.receive_response(busy, PEER, 1.0)
    (ack,) = txn.outbox
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK"
    assert ack.uri_text == txn.request.uri_text
    assert ack.top_via.branch == "z9hG4bKx1"
    assert len(ack.via) == 1
    assert ack.to.tag == "t9"
    assert ack.header_values("Route") == ("<sip:p1;lr>", "<sip:p2;lr>")
    assert (ack.cseq.number, ack.cseq.method) == (7, "ACK")
    assert txn.events == [ResponseReceived(busy, PEER, txn.key)]
    # A retransmitted 486 is ACKed again and not passed up.
    txn.events.clear()
    txn.receive_response(busy, PEER, 2.0)
    assert len(txn.outbox) == 2
    assert txn.events == []


def test_invite_client_accepted_passes_every_2xx() -> None:
    txn = ict()
    ok = reply(txn.request, 200)
    txn.receive_response(ok, PEER, 0.0)
    txn.receive_response(ok, PEER, 0.6)
    assert [type(e) for e in txn.events] == [ResponseReceived, ResponseReceived]
    assert len(txn.outbox) == 1  # the INVITE only: a 2xx is ACKed by the TU
    txn.receive_response(reply(txn.request, 180), PEER, 0.7)  # ignored in Accepted
    assert len(txn.events) == 2


def test_invite_client_ignores_1xx_after_final() -> None:
    txn = ict()
    txn.receive_response(reply(txn.request, 404), PEER, 0.0)
    events = list(txn.events)
    txn.receive_response(reply(txn.request, 180), PEER, 0.1)
    txn.receive_response(reply(txn.request, 200), PEER, 0.1)
    assert txn.events == events


# -- non-INVITE client ----------------------------------------------------------------


def test_non_invite_client_final_from_trying_and_proceeding() -> None:
    for first in (None, 180):
        txn = nict()
        if first is not None:
            txn.receive_response(reply(txn.request, first), PEER, 0.1)
        txn.receive_response(reply(txn.request, 404), PEER, 0.2)
        assert txn.state is S.COMPLETED
        txn.receive_response(reply(txn.request, 200), PEER, 0.3)  # absorbed
        statuses = [e.response.status for e in txn.events if isinstance(e, ResponseReceived)]
        assert statuses == ([] if first is None else [first]) + [404]


def test_non_invite_client_timeout_from_proceeding() -> None:
    txn = nict()
    txn.receive_response(reply(txn.request, 100), PEER, 0.1)
    drive(txn, 40)
    assert TransactionTimeout(txn.key, T.F) in txn.events


# -- INVITE server --------------------------------------------------------------------


def test_invite_server_retransmissions_get_last_response() -> None:
    txn = ist()
    txn.receive_request(txn.request, PEER, 0.05)  # nothing sent yet: nothing to resend
    assert txn.outbox == []
    ringing = reply(txn.request, 180)
    txn.respond(ringing, 0.1)
    txn.receive_request(txn.request, PEER, 0.5)
    assert txn.outbox == [ringing, ringing]
    assert txn.respond(reply(txn.request, 183), 0.6)
    txn.respond(reply(txn.request, 404), 1.0)
    txn.outbox.clear()
    txn.receive_request(txn.request, PEER, 1.2)
    assert [first_line(m) for m in txn.outbox] == ["SIP/2.0 404 Not Found"]
    # After the final response the TU can no longer answer.
    assert not txn.respond(reply(txn.request, 200), 1.3)


def test_invite_server_accepted() -> None:
    txn = ist()
    invite = txn.request
    ok = reply(invite, 200)
    assert txn.respond(ok, 0.0)
    with pytest.raises(ValueError, match="Accepted"):  # let go: the TU has answered
        _ = txn.request
    assert txn.to_tag == ok.to.tag
    assert txn.respond(ok, 0.5)  # the TU's 2xx retransmission goes out
    assert txn.outbox == [ok, ok]
    txn.receive_request(invite, PEER, 0.6)  # INVITE retransmission absorbed
    assert txn.outbox == [ok, ok]
    ack = SipRequest.build(
        "ACK",
        "sip:b@b",
        [("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx1"), ("CSeq", "7 ACK")],
    )
    txn.receive_request(ack, ("192.0.2.7", 5062), 0.7)
    assert txn.events == [RequestReceived(ack, ("192.0.2.7", 5062), None)]
    assert not txn.respond(reply(invite, 486), 0.8)


def test_invite_server_confirmed_absorbs_acks() -> None:
    txn = ist()
    busy = reply(txn.request, 486)
    txn.respond(busy, 0.0)
    ack = ack_for_non_2xx(txn.request, busy)
    txn.receive_request(ack, PEER, 0.1)
    assert txn.state is S.CONFIRMED
    txn.outbox.clear()
    txn.receive_request(ack, PEER, 0.2)
    txn.receive_request(txn.request, PEER, 0.2)
    assert txn.outbox == []
    assert txn.events == []


# -- non-INVITE server ----------------------------------------------------------------


def test_non_invite_server_flow() -> None:
    txn = nist()
    txn.receive_request(txn.request, PEER, 0.1)  # Trying: absorbed silently
    assert txn.outbox == []
    assert txn.respond(reply(txn.request, 100), 0.2)
    assert txn.state is S.PROCEEDING
    txn.receive_request(txn.request, PEER, 0.3)
    assert [first_line(m) for m in txn.outbox] == ["SIP/2.0 100 Trying"] * 2
    assert txn.respond(reply(txn.request, 183), 0.35)
    assert txn.respond(reply(txn.request, 200), 0.4)
    assert not txn.respond(reply(txn.request, 500), 0.5)
    txn.outbox.clear()
    txn.receive_request(txn.request, PEER, 0.6)
    assert [first_line(m) for m in txn.outbox] == ["SIP/2.0 200 OK"]
    drive(txn, 40)
    assert txn.events == [TransactionTerminated(txn.key)]


def test_non_invite_server_final_from_proceeding() -> None:
    txn = nist()
    txn.respond(reply(txn.request, 180), 0.0)
    txn.respond(reply(txn.request, 404), 0.0)
    assert txn.state is S.COMPLETED


# -- builders and inputs ---------------------------------------------------------------


def test_cancel_for_copies_the_invite_identity() -> None:
    inv = request(route=True)
    cancel = cancel_for(inv)
    assert cancel.method == "CANCEL"
    assert cancel.uri_text == inv.uri_text
    assert cancel.top_via == inv.top_via
    assert cancel.to.tag is None
    assert (cancel.cseq.number, cancel.cseq.method) == (7, "CANCEL")
    assert cancel.header_values("Route") == inv.header_values("Route")


@pytest.mark.parametrize(
    ("status", "tu", "expected"),
    [
        (100, False, Input.RECV_1XX),
        (299, False, Input.RECV_2XX),
        (300, False, Input.RECV_FINAL),
        (183, True, Input.TU_1XX),
        (200, True, Input.TU_2XX),
        (699, True, Input.TU_FINAL),
    ],
)
def test_response_input(status: int, tu: bool, expected: Input) -> None:
    assert response_input(status, from_tu=tu) is expected


CLIENT_STEPS = st.lists(
    st.one_of(
        st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 500, 603]),
        st.floats(min_value=0.0, max_value=40.0),
    ),
    max_size=25,
)


@pytest.mark.parametrize("make", [ict, nict])
@given(steps=CLIENT_STEPS, reliable=st.booleans())
def test_client_random_inputs_end_by_timers(
    make: object, steps: list[int | float], reliable: bool
) -> None:
    txn = make(reliable)  # type: ignore[operator]
    now = 0.0
    for step in steps:
        if isinstance(step, int):
            txn.receive_response(reply(txn.request, step), PEER, now)
        else:
            now += step
            txn.handle_timer(now)
    drive(txn, now + 400)
    assert txn.terminated
    assert sum(isinstance(e, TransactionTerminated) for e in txn.events) == 1


SERVER_STEPS = st.lists(
    st.one_of(
        st.sampled_from([100, 180, 200, 404, 486, 500, "request", "ack"]),
        st.floats(min_value=0.0, max_value=40.0),
    ),
    max_size=25,
)


@pytest.mark.parametrize("make", [ist, nist])
@given(steps=SERVER_STEPS, reliable=st.booleans())
def test_server_random_inputs_end_by_timers(
    make: object, steps: list[object], reliable: bool
) -> None:
    txn = make(reliable)  # type: ignore[operator]
    request = txn.request  # an Accepted INVITE transaction no longer holds it
    now = 0.0
    for step in steps:
        if isinstance(step, int):
            txn.respond(reply(request, step), now)
        elif step == "request":
            txn.receive_request(request, PEER, now)
        elif step == "ack":
            txn.receive_request(ack_for_non_2xx(request, reply(request, 404)), PEER, now)
        else:
            assert isinstance(step, float)
            now += step
            txn.handle_timer(now)
    # The TU always answers in the end; then the timers finish the transaction.
    txn.respond(reply(request, 500), now)
    drive(txn, now + 400)
    assert txn.terminated
    assert sum(isinstance(e, TransactionTerminated) for e in txn.events) == 1
