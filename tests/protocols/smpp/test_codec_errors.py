"""Every decoding and encoding refusal maps to the SMPP answer the peer should get.

SMPP 3.4 section 5.1.3 (command_status), section 4 field limits, smpp.md
section 1 (framing). Each case checks the status, the header the session
needs to answer, and what the session would send (error_response).
"""

from __future__ import annotations

import enum
import struct

import pytest

from protocols.smpp import codec
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.errors import SmppError, SmppFramingError, SmppUnknownCommand
from protocols.smpp.pdu import (
    AlertNotification,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    DataSmResp,
    DeliverSm,
    DistributionList,
    EnquireLink,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    UnsuccessSme,
    error_response,
    generic_nack,
    is_response,
    make_response,
)
from protocols.smpp.tlv import Tag, Tlv

S = CommandStatus


def frame(command_id: int, body: bytes, seq: int = 5, status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


def sm_body(
    *,
    service_type: bytes = b"\0",
    source: bytes = b"1\0",
    destination: bytes = b"2\0",
    schedule: bytes = b"\0",
    validity: bytes = b"\0",
    message: bytes = b"hi",
    sm_length: int | None = None,
    tail: bytes = b"",
) -> bytes:
    length = len(message) if sm_length is None else sm_length
    return (
        service_type
        + b"\x01\x01"
        + source
        + b"\x01\x01"
        + destination
        + b"\x00\x00\x00"
        + schedule
        + validity
        + b"\x01\x00\x00\x00"
        + bytes((length,))
        + message
        + tail
    )


def refused(data: bytes) -> SmppError:
    with pytest.raises(SmppError) as info:
        codec.decode(data)
    return info.value


def test_well_formed_sm_body_helper_decodes() -> None:
    assert codec.decode(frame(CommandId.SUBMIT_SM, sm_body())) == SubmitSm(
        sequence_number=5,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="1",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="2",
        registered_delivery=1,
        short_message=b"hi",
    )


# -- framing -----------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x10", b"\x00" * 15])
def test_shorter_than_a_header_is_a_framing_error(data: bytes) -> None:
    error = refused(data)
    assert isinstance(error, SmppFramingError)
    assert error.stream_unusable
    assert error.command_status == S.ESME_RINVCMDLEN
    assert error_response(error) == GenericNack(command_status=S.ESME_RINVCMDLEN)


def test_command_length_disagreeing_with_the_frame_is_a_framing_error() -> None:
    data = frame(CommandId.ENQUIRE_LINK, b"", seq=9)[:-1] + b"\x09\x00"
    error = refused(data)
    assert isinstance(error, SmppFramingError)
    assert (error.command_status, error.sequence_number) == (S.ESME_RINVCMDLEN, 9)
    assert error_response(error) == generic_nack(9, S.ESME_RINVCMDLEN)


@pytest.mark.parametrize("command_id", [0x0, 0x0A, 0x111, 0x7FFFFFFF])
def test_unknown_command_id_asks_for_generic_nack_with_the_same_sequence(command_id: int) -> None:
    error = refused(frame(command_id, b"whatever", seq=1234))
    assert isinstance(error, SmppUnknownCommand)
    assert not error.stream_unusable
    assert (error.command_status, error.sequence_number) == (S.ESME_RINVCMDID, 1234)
    assert error_response(error) == GenericNack(
        sequence_number=1234, command_status=S.ESME_RINVCMDID
    )


@pytest.mark.parametrize("command_id", [0x80000015 | 0x100, 0x8000000A, 0xFFFFFFFF])
def test_unknown_response_command_id_is_never_answered(command_id: int) -> None:
    error = refused(frame(command_id, b"whatever", seq=1234))
    assert isinstance(error, SmppUnknownCommand)
    assert (error.command_id, error.sequence_number) == (command_id, 1234)
    assert error_response(error) is None  # bit 31: a response, even one SMPP lacks


# -- mandatory fields ----------------------------------------------------------------


SM_CASES = {
    "sm_length beyond the body": (sm_body(sm_length=50), S.ESME_RINVMSGLEN),
    "sm_length 255": (sm_body(message=b"x" * 255), S.ESME_RINVMSGLEN),
    "short_message and message_payload": (
        sm_body(tail=b"\x04\x24\x00\x01x"),
        S.ESME_RINVMSGLEN,
    ),
    "service_type too long": (sm_body(service_type=b"ABCDEF\0"), S.ESME_RINVSERTYP),
    "source_addr too long": (sm_body(source=b"1" * 21 + b"\0"), S.ESME_RINVSRCADR),
    "destination_addr too long": (sm_body(destination=b"2" * 21 + b"\0"), S.ESME_RINVDSTADR),
    "malformed schedule_delivery_time": (
        sm_body(schedule=b"2611212010000X4+\0"),
        S.ESME_RINVSCHED,
    ),
    "schedule_delivery_time too long": (sm_body(schedule=b"1" * 17 + b"\0"), S.ESME_RINVSCHED),
    "malformed validity_period": (sm_body(validity=b"000001000000000Z\0"), S.ESME_RINVEXPIRY),
    "short validity_period": (sm_body(validity=b"0000010\0"), S.ESME_RINVEXPIRY),
    "truncated TLV header": (sm_body(tail=b"\x02\x0c\x00"), S.ESME_RINVOPTPARSTREAM),
    "TLV past the end": (sm_body(tail=b"\x02\x0c\x00\x09\x00"), S.ESME_RINVOPTPARSTREAM),
    "known TLV with a bad length": (sm_body(tail=b"\x04\x27\x00\x02\x00\x02"), S.ESME_RINVPARLEN),
}


@pytest.mark.parametrize("command_id", [CommandId.SUBMIT_SM, CommandId.DELIVER_SM])
@pytest.mark.parametrize("case", sorted(SM_CASES))
def test_short_message_pdu_field_errors(case: str, command_id: int) -> None:
    body, status = SM_CASES[case]
    error = refused(frame(command_id, body, seq=77))
    assert not error.stream_unusable
    assert (error.command_status, error.sequence_number, error.command_id) == (
        status,
        77,
        command_id,
    )
    answer = error_response(error)
    assert answer is not None
    assert answer.command_id == command_id | 0x80000000
    assert (answer.sequence_number, answer.command_status) == (77, status)


def test_unterminated_source_addr_at_end_of_body() -> None:
    error = refused(frame(CommandId.SUBMIT_SM, b"\0\x01\x01" + b"123"))
    assert error.command_status == S.ESME_RINVSRCADR


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5])
def test_body_ending_inside_fixed_fields_is_rinvcmdlen_but_not_fatal(cut: int) -> None:
    body = sm_body(message=b"")
    error = refused(frame(CommandId.SUBMIT_SM, body[:-cut]))
    assert error.command_status == S.ESME_RINVCMDLEN
    assert not error.stream_unusable


BIND = CommandId.BIND_TRANSMITTER


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"x" * 16 + b"\0pw\0\0\x34\0\0\0", S.ESME_RINVSYSID),
        (b"sys\0" + b"p" * 9 + b"\0\0\x34\0\0\0", S.ESME_RINVPASWD),
        (b"sys\0pw\0" + b"t" * 13 + b"\0\x34\0\0\0", S.ESME_RINVSYSTYP),
        (b"sys\0pw\0\0\x34\0\0" + b"r" * 41 + b"\0", S.ESME_RBINDFAIL),
        (b"sys\0pw\0\0\x34\0", S.ESME_RINVCMDLEN),
    ],
)
def test_bind_field_errors(body: bytes, status: int) -> None:
    error = refused(frame(BIND, body, seq=3))
    assert error.command_status == status
    answer = error_response(error)
    assert answer is not None
    assert (answer.command_id, answer.command_status) == (CommandId.BIND_TRANSMITTER_RESP, status)


def test_message_id_too_long() -> None:
    error = refused(frame(CommandId.QUERY_SM, b"m" * 65 + b"\0\x01\x01x\0"))
    assert error.command_status == S.ESME_RINVMSGID


def test_query_sm_resp_bad_final_date() -> None:
    error = refused(frame(CommandId.QUERY_SM_RESP, b"id\0notatime\0\x02\x00"))
    assert error.command_status == S.ESME_RQUERYFAIL
    assert error_response(error) is None  # a response is never answered


def test_submit_multi_errors() -> None:
    head = b"\0\x01\x01src\0"
    tail = b"\0" * 9 + b"\x00"
    assert refused(frame(CommandId.SUBMIT_MULTI, head + b"\x00" + tail)).command_status == (
        S.ESME_RINVNUMDESTS
    )
    assert refused(frame(CommandId.SUBMIT_MULTI, head + b"\x01\x03" + tail)).command_status == (
        S.ESME_RINVDESTFLAG
    )
    long_dl = b"\x01\x02" + b"d" * 21 + b"\0"
    assert refused(frame(CommandId.SUBMIT_MULTI, head + long_dl + tail)).command_status == (
        S.ESME_RINVDLNAME
    )
    long_sme = b"\x01\x01\x01\x01" + b"4" * 21 + b"\0"
    assert refused(frame(CommandId.SUBMIT_MULTI, head + long_sme + tail)).command_status == (
        S.ESME_RINVDSTADR
    )


def test_submit_multi_resp_truncated_error_status_code() -> None:
    body = b"id\0\x01\x01\x01447\0\x00\x00"
    error = refused(frame(CommandId.SUBMIT_MULTI_RESP, body))
    assert error.command_status == S.ESME_RINVCMDLEN


def test_alert_notification_has_no_answer() -> None:
    error = refused(frame(CommandId.ALERT_NOTIFICATION, b"\x01\x01" + b"9" * 70))
    assert error.command_status == S.ESME_RINVSRCADR
    assert error_response(error) is None


def test_header_only_body_on_a_request_is_not_tolerated() -> None:
    error = refused(frame(CommandId.SUBMIT_SM, b""))
    assert error.command_status == S.ESME_RINVSERTYP


def test_unknown_values_pass_through() -> None:
    pdu = codec.decode(frame(CommandId.SUBMIT_SM, sm_body(), status=0x12345678))
    assert pdu.command_status == 0x12345678
    data = frame(CommandId.SUBMIT_SM_RESP, b"", status=0x400)
    assert codec.decode(data) == SubmitSmResp(sequence_number=5, command_status=0x400)


# -- encoding ------------------------------------------------------------------


ENCODE_CASES: dict[str, tuple[Pdu, int]] = {
    "source_addr too long": (SubmitSm(source_addr="1" * 21), S.ESME_RINVSRCADR),
    "destination_addr not latin-1": (DeliverSm(destination_addr="☎"), S.ESME_RINVDSTADR),
    "NUL inside a C-octet string": (SubmitSm(service_type="a\0b"), S.ESME_RINVSERTYP),
    "short_message too long": (SubmitSm(short_message=b"x" * 255), S.ESME_RINVMSGLEN),
    "short_message and message_payload": (
        DeliverSm(short_message=b"x", tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"y"),)),
        S.ESME_RINVMSGLEN,
    ),
    "malformed schedule": (SubmitSm(schedule_delivery_time="tomorrow"), S.ESME_RINVSCHED),
    "malformed validity": (SubmitSm(validity_period="000001000000000X"), S.ESME_RINVEXPIRY),
    "TON out of range": (SubmitSm(source_addr_ton=256), S.ESME_RSYSERR),
    "negative sequence number": (SubmitSm(sequence_number=-1), S.ESME_RSYSERR),
    "sequence number beyond 32 bits": (EnquireLink(sequence_number=1 << 32), S.ESME_RSYSERR),
    "bind addr_ton out of range": (BindTransmitter(addr_ton=300), S.ESME_RSYSERR),
    "system_id too long": (BindTransceiver(system_id="s" * 16), S.ESME_RINVSYSID),
    "password not latin-1": (Outbind(password="пароль"), S.ESME_RINVPASWD),
    "no destinations": (SubmitMulti(), S.ESME_RINVNUMDESTS),
    "255 destinations": (
        SubmitMulti(dest_address=(SmeAddress(),) * 255),
        S.ESME_RINVNUMDESTS,
    ),
    "dl_name too long": (
        SubmitMulti(dest_address=(DistributionList("d" * 21),)),
        S.ESME_RINVDLNAME,
    ),
    "256 unsuccess_sme": (
        SubmitMultiResp(unsuccess_sme=(UnsuccessSme(),) * 256),
        S.ESME_RINVNUMDESTS,
    ),
    "error_status_code beyond 32 bits": (
        SubmitMultiResp(unsuccess_sme=(UnsuccessSme(error_status_code=1 << 32),)),
        S.ESME_RSYSERR,
    ),
    "TLV value too long": (
        QuerySm(tlvs=(Tlv(0x1400, b"x" * 0x10000),)),
        S.ESME_RINVPARLEN,
    ),
    "TLV tag beyond 16 bits": (QuerySm(tlvs=(Tlv(0x10000, b""),)), S.ESME_RINVOPTPARAMVAL),
    "TLV tag not an integer": (QuerySm(tlvs=(Tlv(1.5, b""),)), S.ESME_RSYSERR),  # type: ignore[arg-type]
    "Integer(1) given as text": (SubmitSm(esm_class="@"), S.ESME_RSYSERR),  # type: ignore[arg-type]
    "C-octet string given as bytes": (DeliverSm(source_addr=b"1"), S.ESME_RINVSRCADR),  # type: ignore[arg-type]
    "esme_addr too long": (AlertNotification(esme_addr="9" * 65), S.ESME_RINVDSTADR),
}


@pytest.mark.parametrize("case", sorted(ENCODE_CASES))
def test_encode_refuses(case: str) -> None:
    pdu, status = ENCODE_CASES[case]
    with pytest.raises(SmppError) as info:
        codec.encode(pdu)
    assert info.value.command_status == status


class _ServiceType(str, enum.Enum):  # noqa: UP042 (StrEnum's __str__ is its text)
    CMT = "CMT"


class _Text(str):
    def __str__(self) -> str:
        return "not what goes on the wire"


def test_str_subclasses_are_encoded_by_their_text() -> None:
    # %s formatting would write __str__ (the enum's "_ServiceType.CMT"), not the text.
    odd = SubmitSm(service_type=_ServiceType.CMT, source_addr=_Text("1"), destination_addr="2")
    plain = SubmitSm(service_type="CMT", source_addr="1", destination_addr="2")
    assert codec.encode(odd) == codec.encode(plain) == codec._encode_with_layout(odd)


class _Tagged(SubmitSm):
    note: str = ""


def test_a_subclass_keeps_its_own_fields_off_the_wire() -> None:
    tagged = _Tagged(source_addr="1", note="internal", sequence_number=3)
    wire = codec.encode(tagged)
    assert wire == codec.encode(SubmitSm(source_addr="1", sequence_number=3))
    failed = type("_FailedResp", (SubmitSmResp,), {"__annotations__": {"note": "str"}, "note": ""})
    assert len(codec.encode(failed(sequence_number=1, command_status=8, note="x"))) == 16


def test_error_response_keeps_a_body_that_carries_something() -> None:
    with_id = DataSmResp(sequence_number=1, command_status=S.ESME_RDELIVERYFAILURE, message_id="x")
    assert codec.decode(codec.encode(with_id)) == with_id
    assert len(codec.encode(with_id)) == 18
    bare = SubmitSmResp(sequence_number=1, command_status=S.ESME_RSUBMITFAIL)
    assert len(codec.encode(bare)) == 16
    ok_empty = SubmitSmResp(sequence_number=1)
    assert len(codec.encode(ok_empty)) == 17


# -- responses -------------------------------------------------------------------


def test_make_response_echoes_the_sequence_number() -> None:
    request = SubmitSm(sequence_number=41, destination_addr="1")
    assert make_response(request, message_id="m1") == SubmitSmResp(
        sequence_number=41, message_id="m1"
    )
    assert make_response(request, S.ESME_RTHROTTLED) == SubmitSmResp(
        sequence_number=41, command_status=S.ESME_RTHROTTLED
    )


def test_bind_response_announces_smpp_34() -> None:
    answer = make_response(BindTransceiver(sequence_number=1), system_id="warpd")
    assert isinstance(answer, BindTransceiverResp)
    assert answer.get_tlv(Tag.SC_INTERFACE_VERSION) == Tlv(Tag.SC_INTERFACE_VERSION, b"\x34")
    assert make_response(BindTransceiver(), S.ESME_RINVPASWD).tlvs == ()
    assert make_response(BindTransceiver(), tlvs=()).tlvs == ()


def test_requests_without_a_response() -> None:
    for request in (Outbind(sequence_number=3), AlertNotification(sequence_number=3)):
        with pytest.raises(SmppError) as info:
            make_response(request)
        assert info.value.command_status == S.ESME_RINVCMDID
        assert info.value.sequence_number == 3


def test_is_response() -> None:
    assert is_response(GenericNack())
    assert is_response(SubmitSmResp())
    assert not is_response(SubmitSm())
    assert SubmitSm().get_tlv(Tag.MESSAGE_STATE) is None


def test_with_header_keeps_what_is_known() -> None:
    error = SmppError(S.ESME_RSYSERR, "x", sequence_number=1, command_id=2)
    assert error.with_header(3, 4) is error
    assert (error.command_id, error.sequence_number) == (2, 1)
