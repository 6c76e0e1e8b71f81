"""The sans-I/O SMPP session (protocols/smpp/session.py), ESME and SMSC pumped in memory."""

from __future__ import annotations

import struct

import pytest
import smpplib.smpp

from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    make_response,
)
from protocols.smpp.session import MAX_SEQUENCE_NUMBER, SmppSession
from protocols.smpp.session_events import (
    BindRequested,
    Bound,
    Closed,
    Event,
    NotAllowed,
    PduReceived,
    PduRejected,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
    StrayResponse,
    Unbound,
    WindowFull,
)
from protocols.smpp.session_state import BindState, Role

NO_TIMERS = SessionConfig(enquire_link_interval=None, session_init_timeout=None)


def pump(a: SmppSession, b: SmppSession, now: float) -> None:
    """Move bytes both ways until neither side has anything to say."""
    for _ in range(100):
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_b and not to_a:
            return
        if to_b:
            b.receive_data(to_b, now)
        if to_a:
            a.receive_data(to_a, now)
    raise AssertionError("the sessions kept talking")


def drain(session: SmppSession) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def wire(session: SmppSession) -> list[Pdu]:
    """The PDUs a session queued, decoded."""
    reader = PduReader()
    reader.feed(session.data_to_send())
    out = []
    while (pdu := reader.next_pdu()) is not None:
        out.append(pdu)
    return out


def bound_pair(
    bind: type[Pdu] = BindTransceiver, config: SessionConfig = NO_TIMERS, now: float = 0.0
) -> tuple[SmppSession, SmppSession]:
    esme = SmppSession(Role.ESME, config, now=now)
    smsc = SmppSession(Role.SMSC, config, now=now)
    esme.send(bind(system_id="cust", password="pw"), now)
    pump(esme, smsc, now)
    (requested,) = drain(smsc)
    assert isinstance(requested, BindRequested)
    smsc.send(make_response(requested.pdu, system_id="warpd"), now)
    pump(esme, smsc, now)
    assert drain(smsc) == [Bound(smsc.state, "cust", 0x34, "", "")]
    events = drain(esme)
    assert isinstance(events[0], ResponseReceived)
    assert events[1] == Bound(esme.state, "warpd", 0x34, "", "")
    return esme, smsc


@pytest.mark.parametrize(
    ("bind", "state"),
    [
        (BindTransmitter, BindState.BOUND_TX),
        (BindReceiver, BindState.BOUND_RX),
        (BindTransceiver, BindState.BOUND_TRX),
    ],
)
def test_bind_each_kind(bind: type[Pdu], state: BindState) -> None:
    esme, smsc = bound_pair(bind)
    assert esme.state is state
    assert smsc.state is state


def test_submit_and_out_of_order_responses() -> None:
    esme, smsc = bound_pair()
    first = esme.send(SubmitSm(destination_addr="1", short_message=b"a"), 1.0)
    second = esme.send(SubmitSm(destination_addr="2", short_message=b"b"), 1.0)
    assert second.sequence_number == first.sequence_number + 1
    pump(esme, smsc, 1.0)
    got = [e.pdu for e in drain(smsc) if isinstance(e, PduReceived)]
    assert got == [first, second]
    assert smsc.owed == 2
    smsc.send(make_response(second, message_id="B"), 1.1)
    smsc.send(make_response(first, message_id="A"), 1.2)
    assert smsc.owed == 0
    pump(esme, smsc, 1.2)
    events = drain(esme)
    assert events == [
        ResponseReceived(
            second, SubmitSmResp(sequence_number=second.sequence_number, message_id="B")
        ),
        ResponseReceived(
            first, SubmitSmResp(sequence_number=first.sequence_number, message_id="A")
        ),
    ]
    assert esme.window_free == NO_TIMERS.window


def test_deliver_sm_to_receiver() -> None:
    esme, smsc = bound_pair(BindReceiver)
    dlr = smsc.send(DeliverSm(esm_class=0x04, short_message=b"id:1 stat:DELIVRD"), 0)
    pump(esme, smsc, 0)
    assert drain(esme) == [PduReceived(dlr)]
    esme.send(make_response(dlr), 0)
    pump(esme, smsc, 0)
    assert drain(smsc) == [
        ResponseReceived(dlr, DeliverSmResp(sequence_number=dlr.sequence_number))
    ]


def test_submit_in_open_state_gets_rinvbndsts() -> None:
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    smsc.receive_data(encode(SubmitSm(sequence_number=7, short_message=b"x")), 0)
    assert wire(smsc) == [
        SubmitSmResp(sequence_number=7, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]
    (event,) = drain(smsc)
    assert isinstance(event, PduRejected)
    assert smsc.state is BindState.OPEN


def test_submit_on_receiver_bind_gets_rinvbndsts() -> None:
    esme, smsc = bound_pair(BindReceiver)
    with pytest.raises(NotAllowed):
        esme.send(SubmitSm(), 0)
    smsc.receive_data(encode(SubmitSm(sequence_number=9)), 0)
    assert wire(smsc) == [
        SubmitSmResp(sequence_number=9, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_deliver_sm_to_transmitter_bind_refused_both_ways() -> None:
    esme, smsc = bound_pair(BindTransmitter)
    with pytest.raises(NotAllowed):
        smsc.send(DeliverSm(), 0)
    esme.receive_data(encode(DeliverSm(sequence_number=3)), 0)
    assert wire(esme) == [
        DeliverSmResp(sequence_number=3, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_bind_while_bound_gets_ralybnd() -> None:
    _esme, smsc = bound_pair()
    smsc.receive_data(encode(BindTransmitter(sequence_number=50, system_id="x")), 0)
    (answer,) = wire(smsc)
    assert answer.command_id == CommandId.BIND_TRANSMITTER_RESP
    assert answer.command_status == CommandStatus.ESME_RALYBND
    assert smsc.state is BindState.BOUND_TRX


def test_second_bind_waits_for_the_first_then_gets_ralybnd() -> None:
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    smsc.receive_data(encode(BindTransmitter(sequence_number=1)), 0)
    smsc.receive_data(encode(BindReceiver(sequence_number=2)), 0)
    assert smsc.data_to_send() == b""  # nothing is answered before the first bind_resp
    (requested,) = drain(smsc)
    assert isinstance(requested, BindRequested)
    smsc.send(make_response(requested.pdu), 0)
    first, second = wire(smsc)
    assert (first.sequence_number, first.command_status) == (1, 0)
    assert (second.sequence_number, second.command_status) == (2, CommandStatus.ESME_RALYBND)
    assert smsc.state is BindState.BOUND_TX


def test_bind_refused_then_closed() -> None:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    esme.send(BindTransmitter(system_id="cust", password="bad"), 0)
    pump(esme, smsc, 0)
    (requested,) = drain(smsc)
    assert isinstance(requested, BindRequested)
    smsc.send(make_response(requested.pdu, CommandStatus.ESME_RINVPASWD), 0)
    assert smsc.state is BindState.CLOSED
    assert drain(smsc) == [Closed("bind refused with status 0x0000000e")]
    pump(esme, smsc, 0)
    events = drain(esme)
    assert isinstance(events[0], ResponseReceived)
    assert events[0].response.command_status == CommandStatus.ESME_RINVPASWD
    assert isinstance(events[1], Closed)
    assert esme.state is BindState.CLOSED
    with pytest.raises(NotAllowed):
        esme.send(EnquireLink(), 0)
    esme.receive_data(b"ignored after close", 0)
    assert esme.get_timer() is None


def test_bind_answered_by_generic_nack_closes() -> None:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    bind = esme.send(BindTransmitter(), 0)
    esme.data_to_send()
    esme.receive_data(
        encode(GenericNack(sequence_number=bind.sequence_number, command_status=3)), 0
    )
    assert esme.state is BindState.CLOSED


def test_only_one_bind_at_a_time() -> None:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    esme.send(BindTransmitter(), 0)
    with pytest.raises(NotAllowed, match="already in progress"):
        esme.send(BindReceiver(), 0)


def test_window_full_then_frees() -> None:
    config = SessionConfig(window=2, enquire_link_interval=None, session_init_timeout=None)
    esme, smsc = bound_pair(config=config)
    a = esme.send(SubmitSm(), 0)
    esme.send(SubmitSm(), 0)
    assert esme.window_free == 0
    with pytest.raises(WindowFull) as info:
        esme.send(SubmitSm(), 0)
    assert info.value.command_status == CommandStatus.ESME_RMSGQFUL
    esme.send(EnquireLink(), 0)  # session management is not windowed
    pump(esme, smsc, 0)
    smsc.send(make_response(a), 0)
    pump(esme, smsc, 0)
    assert esme.window_free == 1
    esme.send(SubmitSm(), 0)


def test_response_timeout() -> None:
    config = SessionConfig(
        response_timeout=5, enquire_link_interval=None, session_init_timeout=None
    )
    esme, _smsc = bound_pair(config=config)
    drain(esme)
    request = esme.send(QuerySm(message_id="1"), 10)
    assert esme.get_timer() == 15
    esme.handle_timer(14.9)
    assert drain(esme) == []
    esme.handle_timer(15)
    assert drain(esme) == [ResponseTimeout(request)]
    assert esme.window_free == config.window
    assert esme.state is BindState.BOUND_TRX
    # A late response is a stray now.
    esme.receive_data(encode(make_response(request, message_id="1")), 16)
    assert [type(e) for e in drain(esme)] == [StrayResponse]


def test_mismatched_response_is_stray_and_request_stays_outstanding() -> None:
    esme, _smsc = bound_pair()
    request = esme.send(SubmitSm(), 0)
    esme.receive_data(encode(DeliverSmResp(sequence_number=request.sequence_number)), 0)
    assert [type(e) for e in drain(esme)] == [StrayResponse]
    assert esme.window_free == NO_TIMERS.window - 1


def test_enquire_link_on_idle_and_dead_link() -> None:
    config = SessionConfig(enquire_link_interval=30, response_timeout=10, session_init_timeout=None)
    esme, _smsc = bound_pair(config=config)
    assert esme.get_timer() == 30
    esme.handle_timer(29)
    assert esme.data_to_send() == b""
    esme.handle_timer(30)
    (probe,) = wire(esme)
    assert isinstance(probe, EnquireLink)
    assert esme.get_timer() == 40  # now only the response deadline
    esme.handle_timer(35)
    # The peer answers: the session consumes it silently and re-arms.
    esme.receive_data(encode(EnquireLinkResp(sequence_number=probe.sequence_number)), 36)
    assert drain(esme) == []
    assert esme.get_timer() == 66
    esme.handle_timer(66)
    wire(esme)
    esme.handle_timer(76)
    (closed,) = drain(esme)
    assert isinstance(closed, Closed)
    assert "enquire_link" in closed.reason


def test_enquire_link_always_answered_by_session() -> None:
    esme, smsc = bound_pair()
    esme.send(EnquireLink(), 0)
    pump(esme, smsc, 0)
    assert drain(smsc) == []
    assert [type(e) for e in drain(esme)] == [ResponseReceived]
    fresh = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    fresh.receive_data(encode(EnquireLink(sequence_number=4)), 0)
    assert wire(fresh) == [EnquireLinkResp(sequence_number=4)]


def test_inactivity_unbinds() -> None:
    config = SessionConfig(
        inactivity_timeout=60, enquire_link_interval=20, session_init_timeout=None
    )
    esme, smsc = bound_pair(config=config)
    # enquire_link traffic keeps the link alive but does not count as activity.
    for t in (20.0, 40.0):
        esme.handle_timer(t)
        pump(esme, smsc, t)
    assert esme.get_timer() == 60
    esme.handle_timer(60)
    assert esme.state is BindState.UNBOUND
    pump(esme, smsc, 60)
    assert drain(esme)[-2:] == [Unbound(), Closed("unbound")]
    assert smsc.state is BindState.CLOSED
    assert drain(smsc) == [Unbound(), Closed("unbound by the peer")]


def test_session_init_timeout() -> None:
    smsc = SmppSession(Role.SMSC, SessionConfig(session_init_timeout=30), now=100)
    assert smsc.get_timer() == 130
    smsc.handle_timer(129)
    assert smsc.state is BindState.OPEN
    smsc.handle_timer(130)
    assert smsc.state is BindState.CLOSED
    (closed,) = drain(smsc)
    assert "session_init" in closed.reason
    smsc.handle_timer(200)  # nothing more


def test_a_bind_in_time_is_decided_however_long_the_glue_takes() -> None:
    # The ESME bound within session_init_timer; checking its password (scrypt,
    # a database) may take longer, and the timer must not close it meanwhile.
    smsc = SmppSession(Role.SMSC, SessionConfig(session_init_timeout=1), now=0)
    smsc.receive_data(encode(BindTransceiver(sequence_number=1, system_id="a")), 0.5)
    (requested,) = drain(smsc)
    assert isinstance(requested, BindRequested)
    assert smsc.get_timer() is None
    smsc.handle_timer(5)
    assert smsc.state is BindState.OPEN
    smsc.send(make_response(requested.pdu), 5)
    assert smsc.state is BindState.BOUND_TRX


def test_unbind_from_esme() -> None:
    esme, smsc = bound_pair()
    esme.send(Unbind(), 0)
    assert esme.state is BindState.UNBOUND
    with pytest.raises(NotAllowed):
        esme.send(SubmitSm(), 0)
    pump(esme, smsc, 0)
    assert drain(smsc) == [Unbound(), Closed("unbound by the peer")]
    events = drain(esme)
    assert events[-2:] == [Unbound(), Closed("unbound")]


def test_unbind_from_smsc_drains_owed_responses_first() -> None:
    esme, smsc = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    pump(esme, smsc, 0)
    drain(smsc)
    smsc.receive_data(encode(Unbind(sequence_number=99)), 0)
    # The submit is still owed: no unbind_resp yet, and new requests are refused.
    assert smsc.data_to_send() == b""
    assert smsc.state is BindState.UNBOUND
    smsc.receive_data(encode(SubmitSm(sequence_number=100)), 0)
    assert wire(smsc)[0].command_status == CommandStatus.ESME_RINVBNDSTS
    smsc.send(make_response(submit, message_id="m1"), 1)
    assert [type(p) for p in wire(smsc)] == [SubmitSmResp, UnbindResp]
    assert smsc.state is BindState.CLOSED


def test_unbind_drain_deadline() -> None:
    esme, smsc = bound_pair()
    esme.send(SubmitSm(), 0)
    pump(esme, smsc, 0)
    smsc.receive_data(encode(Unbind(sequence_number=99)), 5)
    assert smsc.get_timer() == 5 + NO_TIMERS.response_timeout
    smsc.handle_timer(5 + NO_TIMERS.response_timeout)
    assert wire(smsc) == [UnbindResp(sequence_number=99)]
    assert smsc.state is BindState.CLOSED


def test_unbind_unanswered_closes_and_reports_unacknowledged() -> None:
    config = SessionConfig(
        response_timeout=5, enquire_link_interval=None, session_init_timeout=None
    )
    esme, _smsc = bound_pair(config=config)
    submit = esme.send(SubmitSm(), 0)
    esme.send(Unbind(), 1)
    esme.handle_timer(5)  # the submit times out first
    esme.handle_timer(6)
    events = drain(esme)
    assert events[-2:] == [ResponseTimeout(Unbind(sequence_number=3)), Closed("Unbind unanswered")]
    assert ResponseTimeout(submit) in events


def test_both_sides_unbind_at_once() -> None:
    esme, smsc = bound_pair()
    esme.send(Unbind(), 0)
    smsc.send(Unbind(), 0)
    pump(esme, smsc, 0)
    assert esme.state is BindState.CLOSED
    assert smsc.state is BindState.CLOSED


def test_connection_lost_reports_unacknowledged() -> None:
    esme, _smsc = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    esme.send(EnquireLink(), 0)
    esme.close()
    assert drain(esme) == [Closed("connection lost", (submit,))]
    esme.close()
    assert drain(esme) == []


def test_unknown_command_gets_generic_nack_with_same_sequence() -> None:
    _esme, smsc = bound_pair()
    smsc.receive_data(struct.pack(">IIII", 16, 0x00000666, 0, 4242), 0)
    assert wire(smsc) == [
        GenericNack(sequence_number=4242, command_status=CommandStatus.ESME_RINVCMDID)
    ]
    assert smsc.state is BindState.BOUND_TRX


def test_bad_command_length_nacks_then_closes() -> None:
    _esme, smsc = bound_pair()
    smsc.receive_data(struct.pack(">IIII", 8, 4, 0, 5), 0)
    assert wire(smsc) == [
        GenericNack(sequence_number=5, command_status=CommandStatus.ESME_RINVCMDLEN)
    ]
    assert smsc.state is BindState.CLOSED


def test_decode_error_gets_matching_response() -> None:
    _esme, smsc = bound_pair()
    good = encode(SubmitSm(sequence_number=8, short_message=b"abc"))
    bad = good[:-4]  # body cut short
    bad = struct.pack(">I", len(bad)) + bad[4:]
    smsc.receive_data(bad, 0)
    (answer,) = wire(smsc)
    assert answer.command_id == CommandId.SUBMIT_SM_RESP
    assert answer.sequence_number == 8
    assert answer.command_status != 0


def test_outbind_reaches_esme_glue() -> None:
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    smsc.send(Outbind(system_id="s"), 0)
    pump(esme, smsc, 0)
    (event,) = drain(esme)
    assert isinstance(event, PduReceived)
    assert isinstance(event.pdu, Outbind)
    assert esme.owed == 0  # outbind has no response


def test_request_without_response_refused_silently() -> None:
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    smsc.receive_data(encode(Outbind(sequence_number=1)), 0)
    assert smsc.data_to_send() == b""
    assert [type(e) for e in drain(smsc)] == [PduRejected]


def test_sequence_numbers_wrap() -> None:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0, first_sequence_number=MAX_SEQUENCE_NUMBER)
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    bind = esme.send(BindTransmitter(), 0)
    assert bind.sequence_number == MAX_SEQUENCE_NUMBER
    pump(esme, smsc, 0)
    (requested,) = drain(smsc)
    smsc.send(make_response(requested.pdu), 0)
    pump(esme, smsc, 0)
    assert esme.send(SubmitSm(), 0).sequence_number == 1
    with pytest.raises(ValueError, match="sequence"):
        SmppSession(Role.ESME, now=0, first_sequence_number=0)


def test_sequence_skips_numbers_still_outstanding() -> None:
    esme, _smsc = bound_pair()
    held = esme.send(SubmitSm(), 0)
    esme._requests._next = held.sequence_number  # as after a full wrap
    assert esme.send(SubmitSm(), 0).sequence_number == held.sequence_number + 1


def test_garbage_bytes_answered_not_crashing() -> None:
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    smsc.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0)
    (nack,) = wire(smsc)
    assert nack.command_id == CommandId.GENERIC_NACK
    assert nack.command_status == CommandStatus.ESME_RINVCMDLEN
    assert smsc.state is BindState.CLOSED


def test_byte_by_byte_gives_same_events() -> None:
    _esme, smsc = bound_pair()
    data = b"".join(
        encode(SubmitSm(sequence_number=i, short_message=b"x" * i)) for i in range(1, 6)
    )
    for i in range(len(data)):
        smsc.receive_data(data[i : i + 1], 0)
    assert [e.pdu.sequence_number for e in drain(smsc) if isinstance(e, PduReceived)] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_send_refuses_closed_and_bad_fields() -> None:
    esme, _smsc = bound_pair()
    with pytest.raises(SmppError) as info:
        esme.send(SubmitSm(source_addr="x" * 30), 0)
    assert info.value.command_status == CommandStatus.ESME_RINVSRCADR
    assert esme.window_free == NO_TIMERS.window  # nothing was recorded
    assert decode(encode(CancelSm(sequence_number=1))).sequence_number == 1


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="window"):
        SessionConfig(window=0)
    with pytest.raises(ValueError, match="timers"):
        SessionConfig(inactivity_timeout=0)


class _SmpplibClient:
    """The two attributes smpplib's PDU factory reads from its client."""

    sequence = 1

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def test_smpplib_client_pdus_against_our_smsc() -> None:
    """smpplib (an independent ESME) builds the requests and parses our answers."""
    client = _SmpplibClient()
    bind = smpplib.smpp.make_pdu("bind_transceiver", client=client, system_id="cust", password="pw")
    submit = smpplib.smpp.make_pdu(
        "submit_sm",
        client=client,
        source_addr="Acme",
        destination_addr="447700900123",
        short_message=b"hello",
        registered_delivery=1,
    )
    smsc = SmppSession(Role.SMSC, NO_TIMERS, now=0)
    smsc.receive_data(bind.generate(), 0)
    (requested,) = drain(smsc)
    assert isinstance(requested, BindRequested)
    assert isinstance(requested.pdu, BindTransceiver)
    assert (requested.pdu.system_id, requested.pdu.password) == ("cust", "pw")
    smsc.send(make_response(requested.pdu, system_id="warpd"), 0)
    answer = smpplib.smpp.parse_pdu(smsc.data_to_send(), client=client)
    assert (answer.command, answer.status, answer.system_id) == (
        "bind_transceiver_resp",
        0,
        b"warpd",
    )
    drain(smsc)
    smsc.receive_data(submit.generate(), 0)
    (received,) = drain(smsc)
    assert isinstance(received, PduReceived)
    assert isinstance(received.pdu, SubmitSm)
    assert received.pdu.destination_addr == "447700900123"
    assert received.pdu.short_message == b"hello"
    smsc.send(make_response(received.pdu, message_id="m-1"), 0)
    answer = smpplib.smpp.parse_pdu(smsc.data_to_send(), client=client)
    assert (answer.command, answer.sequence, answer.message_id) == (
        "submit_sm_resp",
        submit.sequence,
        b"m-1",
    )
