"""What the SMS core's glue needs from the session (issue 8, "as an independent SMSC").

A bind decided before what follows it, failed binds that close, responses that
are never answered and always settle their request, a response that cannot be
encoded no longer owed, ``may_send``, ``WindowOpen``, the bind's facts on
``Bound`` and sc_interface_version only for a 3.4 peer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.codec import encode
from protocols.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import (
    PDU_CLASSES,
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    bind_response,
    make_response,
)
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import (
    BindRequested,
    Bound,
    Closed,
    NotAllowed,
    PduReceived,
    PduRejected,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
    StrayResponse,
    Unbound,
    WindowFull,
    WindowOpen,
)
from protocols.smpp.session_state import BindState, Role
from protocols.smpp.tlv import Tag, Tlv
from tests.protocols.smpp.test_session import NO_TIMERS, bound_pair, drain, pump, wire

S = CommandStatus
BIND = BindTransceiver(sequence_number=1, system_id="cust", password="pw")
SUBMIT = SubmitSm(sequence_number=2, destination_addr="447700900123", short_message=b"hi")


def smsc(config: SessionConfig = NO_TIMERS) -> SmppSession:
    return SmppSession(Role.SMSC, config, now=0)


def frame(command_id: int, body: bytes, *, seq: int, status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


# -- 1. a bind is decided before anything after it -------------------------------


def test_bind_and_submit_in_one_read_wait_for_the_bind_resp() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + encode(SUBMIT), 0)
    assert session.data_to_send() == b""  # the submit is not refused before the bind_resp
    (requested,) = drain(session)
    assert requested == BindRequested(BIND)
    assert session.owed == 1  # the bind: the glue can pause reading on it
    session.receive_data(encode(EnquireLink(sequence_number=3)), 0)  # still held
    assert session.data_to_send() == b""
    assert drain(session) == []
    session.send(bind_response(BIND, S.ESME_ROK, "warpd"), 1)
    resp, link = wire(session)
    assert isinstance(resp, BindTransceiverResp)
    assert resp.command_status == 0
    assert link == EnquireLinkResp(sequence_number=3)
    assert drain(session) == [Bound(BindState.BOUND_TRX, "cust", 0x34, "", ""), PduReceived(SUBMIT)]
    session.send(make_response(SUBMIT, message_id="m1"), 1)
    assert wire(session) == [SubmitSmResp(sequence_number=2, message_id="m1")]


def test_failed_bind_discards_what_followed_it() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + encode(SUBMIT) + encode(EnquireLink(sequence_number=3)), 0)
    drain(session)
    session.send(bind_response(BIND, S.ESME_RINVPASWD, "warpd"), 0)
    (resp,) = wire(session)
    assert resp.command_status == S.ESME_RINVPASWD
    assert drain(session) == [Closed("bind refused with status 0x0000000e")]
    session.receive_data(encode(SUBMIT), 0)
    assert session.data_to_send() == b""
    assert drain(session) == []


def test_bind_refused_with_generic_nack_closes_too() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + encode(SUBMIT), 0)
    drain(session)
    session.send(GenericNack(sequence_number=1, command_status=S.ESME_RSYSERR), 0)
    assert [type(p) for p in wire(session)] == [GenericNack]
    assert session.state is BindState.CLOSED
    # Even a generic_nack without a status refuses the bind.
    session = smsc()
    session.receive_data(encode(BIND), 0)
    session.send(GenericNack(sequence_number=1), 0)
    assert session.state is BindState.CLOSED


def test_unrelated_response_during_bind_keeps_holding() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + encode(SUBMIT), 0)
    drain(session)
    session.send(SubmitSmResp(sequence_number=1), 0)  # the glue's mistake: not the bind_resp
    session.send(EnquireLinkResp(sequence_number=9), 0)  # another seq, same story
    assert session.state is BindState.OPEN
    assert drain(session) == []
    session.send(bind_response(BIND, 0, "warpd"), 0)
    assert [type(e) for e in drain(session)] == [Bound, PduReceived]


def test_bind_then_unbind_in_one_read() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + encode(Unbind(sequence_number=2)), 0)
    drain(session)
    session.send(bind_response(BIND, 0, "warpd"), 0)
    assert [type(p) for p in wire(session)] == [BindTransceiverResp, UnbindResp]
    assert [type(e) for e in drain(session)] == [Bound, Unbound, Closed]


def test_held_bytes_with_a_broken_length_are_handled_after_the_bind() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + struct.pack(">IIII", 8, 4, 0, 5), 0)
    assert session.data_to_send() == b""
    drain(session)
    session.send(bind_response(BIND, 0, "warpd"), 0)
    resp, nack = wire(session)
    assert isinstance(resp, BindTransceiverResp)
    assert nack == GenericNack(sequence_number=5, command_status=S.ESME_RINVCMDLEN)
    assert session.state is BindState.CLOSED


@given(st.integers(0, 200), st.integers(0, 200))
def test_any_split_of_bind_and_traffic_gives_the_same_answers(cut1: int, cut2: int) -> None:
    stream = (
        encode(BIND)
        + encode(SUBMIT)
        + encode(EnquireLink(sequence_number=3))
        + encode(replace_seq(SUBMIT, 4))
    )
    cut1, cut2 = sorted((cut1 % len(stream), cut2 % len(stream)))

    def run(chunks: list[bytes]) -> tuple[bytes, list[object]]:
        session = smsc()
        out = b""
        events: list[object] = []
        for chunk in chunks:
            session.receive_data(chunk, 0)
            out += session.data_to_send()
            for event in drain(session):
                events.append(event)
                if isinstance(event, BindRequested):
                    assert out == b""  # nothing answered before the bind_resp
                    session.send(bind_response(BIND, 0, "warpd"), 0)
                    out += session.data_to_send()
                    events.extend(drain(session))
        return out, events

    assert run([stream[:cut1], stream[cut1:cut2], stream[cut2:]]) == run([stream])


def replace_seq(pdu: SubmitSm, seq: int) -> SubmitSm:
    return SubmitSm(sequence_number=seq, destination_addr=pdu.destination_addr, short_message=b"x")


# -- 2. a bind the codec refuses is answered, then the session closes ---------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"s" * 20 + b"\x00pw\x00\x00\x34\x00\x00\x00", S.ESME_RINVSYSID),
        (b"cust\x00" + b"p" * 12 + b"\x00\x00\x34\x00\x00\x00", S.ESME_RINVPASWD),
    ],
)
def test_bind_refused_by_the_codec_closes(body: bytes, status: int) -> None:
    session = smsc()
    bad = frame(CommandId.BIND_TRANSMITTER, body, seq=7)
    session.receive_data(bad + encode(BindTransmitter(sequence_number=8, system_id="cust")), 0)
    assert wire(session) == [BindTransmitterResp(sequence_number=7, command_status=status)]
    rejected, closed = drain(session)
    assert isinstance(rejected, PduRejected)
    assert rejected.error.command_status == status
    assert closed == Closed(f"bind refused with status 0x{status:08x}")
    assert session.state is BindState.CLOSED  # the second bind is never read


def test_malformed_bind_while_bound_is_answered_and_the_bind_kept() -> None:
    _esme, session = bound_pair()
    session.receive_data(frame(CommandId.BIND_TRANSMITTER, b"s" * 20, seq=7), 0)
    (answer,) = wire(session)
    assert answer.command_status == S.ESME_RINVSYSID
    assert session.state is BindState.BOUND_TRX


# -- 3. a response is never answered --------------------------------------------------


@pytest.mark.parametrize("command_id", [0x80000666, 0x8000000A, 0xFFFFFFFF])
def test_unknown_response_command_id_is_rejected_silently(command_id: int) -> None:
    _esme, session = bound_pair()
    request = session.send(DeliverSm(short_message=b"mo"), 0)
    session.data_to_send()
    session.receive_data(frame(command_id, b"", seq=request.sequence_number), 0)
    assert session.data_to_send() == b""
    (event,) = drain(session)
    assert isinstance(event, PduRejected)
    assert (event.error.command_id, event.error.command_status) == (command_id, S.ESME_RINVCMDID)
    assert session.window_free == NO_TIMERS.window - 1  # not a response to our deliver_sm
    assert session.state is BindState.BOUND_TRX


# -- 4. a malformed response settles its request -------------------------------------


def test_malformed_deliver_sm_resp_settles_with_the_decode_status() -> None:
    _esme, session = bound_pair()
    receipt = session.send(DeliverSm(esm_class=4, short_message=b"id:1 stat:DELIVRD"), 0)
    session.data_to_send()
    unterminated = b"x" * 70  # message_id: no NUL within 65 octets
    session.receive_data(
        frame(CommandId.DELIVER_SM_RESP, unterminated, seq=receipt.sequence_number), 1
    )
    assert session.data_to_send() == b""  # never answered
    rejected, settled = drain(session)
    assert isinstance(rejected, PduRejected)
    assert settled == ResponseReceived(
        receipt,
        GenericNack(sequence_number=receipt.sequence_number, command_status=S.ESME_RINVMSGID),
    )
    assert session.window_free == NO_TIMERS.window
    assert session.get_timer() is None  # no response timer left: nothing is re-sent


def test_malformed_response_keeps_its_own_error_status() -> None:
    esme, _smsc = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    esme.data_to_send()
    esme.receive_data(
        frame(CommandId.SUBMIT_SM_RESP, b"\xff" * 70, seq=submit.sequence_number, status=0x45), 0
    )
    _rejected, settled = drain(esme)
    assert settled == ResponseReceived(
        submit, GenericNack(sequence_number=submit.sequence_number, command_status=0x45)
    )


def test_malformed_generic_nack_settles_too() -> None:
    esme, _smsc = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    esme.data_to_send()
    broken_tlv = b"\x04\x24\x00\x09ab"  # message_payload claims 9 octets, has 2
    esme.receive_data(
        frame(CommandId.GENERIC_NACK, broken_tlv, seq=submit.sequence_number, status=3), 0
    )
    _rejected, settled = drain(esme)
    assert isinstance(settled, ResponseReceived)
    assert settled.response.command_status == 3


def test_malformed_response_matching_nothing_is_only_reported() -> None:
    esme, _smsc = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    esme.data_to_send()
    for seq, command_id in (
        (submit.sequence_number + 1, CommandId.SUBMIT_SM_RESP),  # nothing outstanding
        (submit.sequence_number, CommandId.QUERY_SM_RESP),  # not submit_sm's response
    ):
        esme.receive_data(frame(command_id, b"\xff" * 70, seq=seq), 0)
        assert [type(e) for e in drain(esme)] == [PduRejected]
    assert esme.window_free == NO_TIMERS.window - 1
    esme.receive_data(encode(SubmitSmResp(sequence_number=submit.sequence_number)), 0)
    assert [type(e) for e in drain(esme)] == [ResponseReceived]


def test_malformed_bind_resp_fails_the_bind() -> None:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    bind = esme.send(BindTransmitter(system_id="cust"), 0)
    esme.data_to_send()
    esme.receive_data(
        frame(CommandId.BIND_TRANSMITTER_RESP, b"s" * 20, seq=bind.sequence_number), 0
    )
    rejected, settled, closed = drain(esme)
    assert isinstance(rejected, PduRejected)
    assert settled == ResponseReceived(
        bind, GenericNack(sequence_number=bind.sequence_number, command_status=S.ESME_RINVSYSID)
    )
    assert isinstance(closed, Closed)


def test_malformed_answer_to_our_enquire_link_keeps_the_link() -> None:
    config = SessionConfig(enquire_link_interval=30, session_init_timeout=None)
    esme, _smsc = bound_pair(config=config)
    esme.handle_timer(30)
    (probe,) = wire(esme)
    esme.receive_data(
        frame(CommandId.ENQUIRE_LINK_RESP, b"\x00\x01", seq=probe.sequence_number), 31
    )
    assert [type(e) for e in drain(esme)] == [PduRejected]
    assert esme.get_timer() == 61  # settled: the next probe, not a dead-link close


# -- 5. a response that fails to encode is not owed -----------------------------------


def test_unencodable_response_raises_and_is_not_owed() -> None:
    esme, session = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    pump(esme, session, 0)
    drain(session)
    session.receive_data(encode(Unbind(sequence_number=99)), 0)
    assert session.data_to_send() == b""  # draining: the submit is owed
    with pytest.raises(SmppError) as info:
        session.send(make_response(submit, message_id="m" * 70), 1)
    assert info.value.command_status == S.ESME_RINVMSGID
    assert session.owed == 0
    assert wire(session) == [UnbindResp(sequence_number=99)]  # no wait for the drain time
    assert drain(session)[-2:] == [Unbound(), Closed("unbound by the peer")]


def test_unencodable_response_while_bound_only_raises() -> None:
    esme, session = bound_pair()
    submit = esme.send(SubmitSm(), 0)
    pump(esme, session, 0)
    drain(session)
    with pytest.raises(SmppError):
        session.send(make_response(submit, message_id="m" * 70), 1)
    assert session.owed == 0
    assert session.state is BindState.BOUND_TRX


def test_unencodable_bind_resp_closes() -> None:
    session = smsc()
    session.receive_data(encode(BIND) + encode(SUBMIT), 0)
    drain(session)
    with pytest.raises(SmppError):
        session.send(bind_response(BIND, 0, "w" * 20), 0)
    assert session.data_to_send() == b""
    assert drain(session) == [Closed("the bind_resp could not be encoded")]


# -- 6. may_send and WindowOpen ----------------------------------------------------------


def test_may_send_follows_role_state_and_bind() -> None:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    assert esme.may_send(CommandId.BIND_TRANSCEIVER)
    assert esme.may_send(CommandId.ENQUIRE_LINK)
    assert not esme.may_send(CommandId.SUBMIT_SM)
    esme.send(BindTransceiver(), 0)
    assert not esme.may_send(CommandId.BIND_TRANSMITTER)  # one bind at a time
    receiver, smsc_side = bound_pair(BindReceiver)
    assert not receiver.may_send(CommandId.SUBMIT_SM)
    assert smsc_side.may_send(CommandId.DELIVER_SM)
    assert not smsc_side.may_send(CommandId.SUBMIT_SM)
    assert smsc_side.may_send(CommandId.SUBMIT_SM_RESP)
    smsc_side.close()
    assert not smsc_side.may_send(CommandId.DELIVER_SM)
    assert not smsc_side.may_send(CommandId.DELIVER_SM_RESP)


def _states() -> list[Callable[[], SmppSession]]:
    def unbinding() -> SmppSession:
        esme, _ = bound_pair()
        esme.send(Unbind(), 0)
        return esme

    def binding() -> SmppSession:
        esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
        esme.send(BindTransmitter(), 0)
        return esme

    def closed() -> SmppSession:
        esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
        esme.close()
        return esme

    makers: list[Callable[[], SmppSession]] = [
        lambda: SmppSession(Role.ESME, NO_TIMERS, now=0),
        smsc,
        binding,
        unbinding,
        closed,
    ]
    for bind in (BindTransmitter, BindReceiver, BindTransceiver):
        makers.append(lambda bind=bind: bound_pair(bind)[0])
        makers.append(lambda bind=bind: bound_pair(bind)[1])
    return makers


STATES = _states()
REQUESTS = sorted(
    (cls for cid, cls in PDU_CLASSES.items() if not cid & RESPONSE_BIT), key=lambda c: c.command_id
)


@given(st.sampled_from(range(len(STATES))), st.sampled_from(REQUESTS))
def test_may_send_agrees_with_send(maker: int, cls: type[Pdu]) -> None:
    session = STATES[maker]()
    allowed = session.may_send(cls.command_id)
    try:
        session.send(cls(), 0)
    except NotAllowed:
        assert not allowed
    except (WindowFull, SmppError):  # the window, or a field an empty PDU lacks
        assert allowed
    else:
        assert allowed


def test_window_open_on_full_to_free_only() -> None:
    config = SessionConfig(window=2, enquire_link_interval=None, session_init_timeout=None)
    esme, session = bound_pair(config=config)
    a = esme.send(SubmitSm(), 0)
    b = esme.send(SubmitSm(), 0)
    pump(esme, session, 0)
    session.send(make_response(a), 0)
    pump(esme, session, 0)
    first = drain(esme)
    assert [type(e) for e in first] == [ResponseReceived, WindowOpen]
    session.send(make_response(b), 0)
    pump(esme, session, 0)
    assert [type(e) for e in drain(esme)] == [ResponseReceived]  # it was not full


def test_window_open_after_a_timeout() -> None:
    config = SessionConfig(
        window=1, response_timeout=5, enquire_link_interval=None, session_init_timeout=None
    )
    esme, _smsc = bound_pair(config=config)
    drain(esme)
    submit = esme.send(SubmitSm(), 0)
    esme.handle_timer(5)
    assert drain(esme) == [ResponseTimeout(submit), WindowOpen()]
    assert esme.window_free == 1


def test_no_window_open_once_unbinding() -> None:
    config = SessionConfig(window=1, enquire_link_interval=None, session_init_timeout=None)
    esme, _smsc = bound_pair(config=config)
    submit = esme.send(SubmitSm(), 0)
    esme.send(Unbind(), 0)
    esme.receive_data(encode(make_response(submit)), 0)
    assert [type(e) for e in drain(esme)] == [ResponseReceived]
    esme.handle_timer(NO_TIMERS.response_timeout)  # the unbind times out: nothing to reopen
    assert WindowOpen() not in drain(esme)


def test_window_open_not_for_a_stray() -> None:
    config = SessionConfig(window=1, enquire_link_interval=None, session_init_timeout=None)
    esme, _smsc = bound_pair(config=config)
    submit = esme.send(SubmitSm(), 0)
    esme.receive_data(encode(DeliverSmResp(sequence_number=submit.sequence_number)), 0)
    assert [type(e) for e in drain(esme)] == [StrayResponse]


# -- 7. the bind's facts on Bound --------------------------------------------------------


def _bind_with(request: Pdu, response_tlvs: tuple[Tlv, ...] | None) -> tuple[Bound, Bound]:
    esme = SmppSession(Role.ESME, NO_TIMERS, now=0)
    session = smsc()
    esme.send(request, 0)
    pump(esme, session, 0)
    (requested,) = drain(session)
    assert isinstance(requested, BindRequested)
    fields = {} if response_tlvs is None else {"tlvs": response_tlvs}
    session.send(make_response(requested.pdu, system_id="warpd", **fields), 0)
    pump(esme, session, 0)
    (smsc_bound,) = drain(session)
    _resp, esme_bound = drain(esme)
    assert isinstance(smsc_bound, Bound)
    assert isinstance(esme_bound, Bound)
    return smsc_bound, esme_bound


def test_bound_carries_the_bind_of_a_33_esme() -> None:
    request = BindReceiver(
        system_id="cust", system_type="OTP", interface_version=0x33, address_range="^447"
    )
    smsc_bound, esme_bound = _bind_with(request, None)
    assert smsc_bound == Bound(BindState.BOUND_RX, "cust", 0x33, "OTP", "^447")
    # No sc_interface_version in our bind_resp to a 3.3 ESME: it reads 0x33.
    assert esme_bound == Bound(BindState.BOUND_RX, "warpd", 0x33, "OTP", "^447")


def test_bound_on_the_esme_reads_sc_interface_version() -> None:
    request = BindTransmitter(system_id="cust", interface_version=0x34)
    _smsc_bound, esme_bound = _bind_with(request, None)
    assert esme_bound.interface_version == 0x34
    version_50 = (Tlv.u8(Tag.SC_INTERFACE_VERSION, 0x50),)
    _smsc_bound, esme_bound = _bind_with(request, version_50)
    assert esme_bound.interface_version == 0x50


# -- 8. sc_interface_version only for a 3.4 peer and a successful bind -------------------


@pytest.mark.parametrize(
    ("version", "status", "tlvs"),
    [
        (0x34, S.ESME_ROK, (Tlv(Tag.SC_INTERFACE_VERSION, b"\x34"),)),
        (0x50, S.ESME_ROK, (Tlv(Tag.SC_INTERFACE_VERSION, b"\x34"),)),
        (0x33, S.ESME_ROK, ()),
        (0x00, S.ESME_ROK, ()),
        (0x34, S.ESME_RINVPASWD, ()),
    ],
)
def test_bind_response_tlvs(version: int, status: int, tlvs: tuple[Tlv, ...]) -> None:
    request = BindTransmitter(sequence_number=5, interface_version=version)
    answer = bind_response(request, status, "warpd")
    assert answer == BindTransmitterResp(
        sequence_number=5, command_status=status, system_id="warpd", tlvs=tlvs
    )
    assert make_response(request, status, system_id="warpd") == answer


def test_bind_response_classes_follow_the_request() -> None:
    assert isinstance(bind_response(BindReceiver(), 0, "w"), PDU_CLASSES[0x80000001])
    assert isinstance(bind_response(BindTransceiver(), 0, "w"), BindTransceiverResp)
    # A 3.3 bind_resp is the bare body on the wire: 16 + "w\0".
    assert len(encode(bind_response(BindTransceiver(interface_version=0x33), 0, "w"))) == 18
