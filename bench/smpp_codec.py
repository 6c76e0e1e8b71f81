"""SMPP PDU codec benchmark: warpd's codec against aiosmpplib's and smpplib's, same run.

Run: ``.venv/bin/python -m bench.smpp_codec [--seconds 1.0]``

Each round does the same work on every side: build the PDU object, encode it
to bytes, decode the bytes back into an object (and read the fields a
consumer needs). A second table times encode+decode of an object built once,
on every side alike (aiosmpplib's ``msg.pdu()`` + ``from_pdu``), to show the
codec apart from record construction. Workloads:

(a) submit_sm: an OTP in GSM 03.38 text from an alphanumeric sender to an
    E.164 number, registered_delivery=1;
(b) deliver_sm delivery receipt: Appendix B text, receipted_message_id and
    message_state TLVs (read back after decoding).

aiosmpplib's SubmitSm/DeliverSm take and return *text* (GSM7 encoding happens
inside ``pdu()``/``from_pdu``), so "warpd + GSM7" adds warpd's own
``text.encode_gsm7``/``decode_gsm7`` to match it; smpplib works on octets
like warpd's codec. Every side's output is checked before timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import smpplib.command
import smpplib.smpp
from aiosmpplib import DeliverSm as AioDeliverSm
from aiosmpplib import OptionalParam, PhoneNumber, SmppMessage
from aiosmpplib import SubmitSm as AioSubmitSm
from aiosmpplib.state import MESSAGE_STATE, RECEIPTED_MESSAGE_ID, TON

from bench import struct_codec
from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import DeliverSm, SubmitSm
from protocols.smpp.text import decode_gsm7, encode_gsm7
from protocols.smpp.tlv import Tag, Tlv, tlv_int, tlv_str

OTP = "Your verification code is 493817. Do not share it."
SENDER = "Acme"
HANDSET = "447700900123"
RECEIPT_ID = "0A1B2C3D4E"
RECEIPT = (
    f"id:{RECEIPT_ID} sub:001 dlvrd:001 submit date:2403051407 done date:2403051408 "
    "stat:DELIVRD err:000 text:Your verification c"
)


class _SmpplibClient:
    """smpplib asks a client for sequence numbers, even while parsing."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_CLIENT = _SmpplibClient()

# -- the messages, built alike on every side --------------------------------------------
#
# Each side has a builder and a round trip (encode, decode, read the fields a
# consumer needs). The first table times round(build()), the second times
# round() of an object built once, so both measure the very same message.


def build_warpd_submit(short_message: bytes = OTP.encode()) -> SubmitSm:
    return SubmitSm(
        sequence_number=7,
        source_addr_ton=5,
        source_addr=SENDER,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=HANDSET,
        registered_delivery=1,
        short_message=short_message,
    )


def build_aio_submit() -> AioSubmitSm:
    return AioSubmitSm(
        sequence_num=7,
        short_message=OTP,
        source=PhoneNumber(SENDER, ton=TON.ALPHANUMERIC),
        destination=PhoneNumber(HANDSET, ton=TON.INTERNATIONAL),
        registered_delivery=1,
    )


def build_smpplib_submit() -> smpplib.command.Command:
    return smpplib.smpp.make_pdu(
        "submit_sm",
        client=_CLIENT,
        sequence=7,
        source_addr_ton=5,
        source_addr=SENDER,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=HANDSET,
        registered_delivery=1,
        short_message=OTP.encode(),
    )


# Module-level ints, as aiosmpplib's constants are: on Python 3.11 reading an
# IntEnum member costs ~0.1 us, which a consumer's hot loop hoists likewise.
_RECEIPTED_MESSAGE_ID = int(Tag.RECEIPTED_MESSAGE_ID)
_MESSAGE_STATE = int(Tag.MESSAGE_STATE)
_DELIVERED = int(MessageState.DELIVERED)


def build_warpd_receipt() -> DeliverSm:
    return DeliverSm(
        sequence_number=9,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=HANDSET,
        dest_addr_ton=5,
        destination_addr=SENDER,
        esm_class=0x04,
        short_message=RECEIPT.encode(),
        tlvs=(
            Tlv.c_octet_string(_RECEIPTED_MESSAGE_ID, RECEIPT_ID),
            Tlv.u8(_MESSAGE_STATE, _DELIVERED),
        ),
    )


def build_aio_receipt() -> AioDeliverSm:
    return AioDeliverSm(
        sequence_num=9,
        short_message=RECEIPT,
        source=PhoneNumber(HANDSET, ton=TON.INTERNATIONAL),
        destination=PhoneNumber(SENDER, ton=TON.ALPHANUMERIC),
        esm_class=0x04,
        optional_params=[
            OptionalParam(RECEIPTED_MESSAGE_ID, RECEIPT_ID),
            OptionalParam(MESSAGE_STATE, 2),
        ],
    )


def build_smpplib_receipt() -> smpplib.command.Command:
    return smpplib.smpp.make_pdu(
        "deliver_sm",
        client=_CLIENT,
        sequence=9,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=HANDSET,
        dest_addr_ton=5,
        destination_addr=SENDER,
        esm_class=0x04,
        short_message=RECEIPT.encode(),
        receipted_message_id=RECEIPT_ID,
        message_state=2,
    )


def build_struct_submit() -> dict[str, object]:
    return {
        "sequence_number": 7,
        "service_type": "",
        "source_addr_ton": 5,
        "source_addr_npi": 0,
        "source_addr": SENDER,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": HANDSET,
        "esm_class": 0,
        "protocol_id": 0,
        "priority_flag": 0,
        "registered_delivery": 1,
        "data_coding": 0,
        "short_message": OTP.encode(),
        "tlvs": [],
    }


def build_struct_receipt() -> dict[str, object]:
    return {
        "sequence_number": 9,
        "service_type": "",
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": HANDSET,
        "dest_addr_ton": 5,
        "dest_addr_npi": 0,
        "destination_addr": SENDER,
        "esm_class": 0x04,
        "protocol_id": 0,
        "priority_flag": 0,
        "registered_delivery": 0,
        "data_coding": 0,
        "short_message": RECEIPT.encode(),
        "tlvs": [(0x001E, RECEIPT_ID.encode() + b"\x00"), (0x0427, b"\x02")],
    }


def warpd_submit_round(pdu: SubmitSm) -> tuple[object, object]:
    got = decode(encode(pdu))
    assert isinstance(got, SubmitSm)
    return got.destination_addr, got.short_message


def aio_submit_round(msg: AioSubmitSm) -> tuple[object, object]:
    data = msg.pdu()
    got = AioSubmitSm.from_pdu(data, SmppMessage.parse_header(data[:16]))
    assert isinstance(got, AioSubmitSm)
    return got.destination.number, got.short_message


def smpplib_submit_round(msg: smpplib.command.Command) -> tuple[object, object]:
    got = smpplib.smpp.parse_pdu(msg.generate(), client=_CLIENT)
    return got.destination_addr.decode(), got.short_message


def struct_submit_round(pdu: dict[str, object]) -> tuple[object, object]:
    got = struct_codec.decode(struct_codec.encode(4, pdu))
    return got["destination_addr"], got["short_message"]


def struct_receipt_round(pdu: dict[str, object]) -> tuple[object, object]:
    got = struct_codec.decode(struct_codec.encode(5, pdu))
    tlvs = dict(got["tlvs"])
    return tlvs[0x001E][:-1].decode(), tlvs[0x0427][0]


def warpd_receipt_round(pdu: DeliverSm) -> tuple[object, object]:
    got = decode(encode(pdu))
    return tlv_str(got.tlvs, _RECEIPTED_MESSAGE_ID), tlv_int(got.tlvs, _MESSAGE_STATE)


def aio_receipt_round(msg: AioDeliverSm) -> tuple[object, object]:
    data = msg.pdu()
    got = AioDeliverSm.from_pdu(data, SmppMessage.parse_header(data[:16]))
    assert isinstance(got, AioDeliverSm)
    params = {p.tag: p.value for p in got.optional_params or []}
    return params[RECEIPTED_MESSAGE_ID], params[MESSAGE_STATE]


def smpplib_receipt_round(msg: smpplib.command.Command) -> tuple[object, object]:
    got = smpplib.smpp.parse_pdu(msg.generate(), client=_CLIENT)
    return got.receipted_message_id.decode(), got.message_state


# -- first table: build+encode+decode --------------------------------------------------


def warpd_submit() -> tuple[object, object]:
    return warpd_submit_round(build_warpd_submit())


def warpd_submit_text() -> tuple[object, object]:
    destination, short_message = warpd_submit_round(build_warpd_submit(encode_gsm7(OTP)))
    assert isinstance(short_message, bytes)
    return destination, decode_gsm7(short_message)


def aiosmpplib_submit() -> tuple[object, object]:
    return aio_submit_round(build_aio_submit())


def struct_submit() -> tuple[object, object]:
    return struct_submit_round(build_struct_submit())


def smpplib_submit() -> tuple[object, object]:
    return smpplib_submit_round(build_smpplib_submit())


def warpd_receipt() -> tuple[object, object]:
    return warpd_receipt_round(build_warpd_receipt())


def aiosmpplib_receipt() -> tuple[object, object]:
    return aio_receipt_round(build_aio_receipt())


def struct_receipt() -> tuple[object, object]:
    return struct_receipt_round(build_struct_receipt())


def smpplib_receipt() -> tuple[object, object]:
    return smpplib_receipt_round(build_smpplib_receipt())


# -- second table: encode+decode of an object built once --------------------------------

_WARPD_SUBMIT = build_warpd_submit()
_AIO_SUBMIT = build_aio_submit()
_SMPPLIB_SUBMIT = build_smpplib_submit()
_WARPD_RECEIPT = build_warpd_receipt()
_AIO_RECEIPT = build_aio_receipt()
_SMPPLIB_RECEIPT = build_smpplib_receipt()
_STRUCT_SUBMIT = build_struct_submit()
_STRUCT_RECEIPT = build_struct_receipt()


def warpd_submit_codec() -> tuple[object, object]:
    return warpd_submit_round(_WARPD_SUBMIT)


def aiosmpplib_submit_codec() -> tuple[object, object]:
    return aio_submit_round(_AIO_SUBMIT)


def struct_submit_codec() -> tuple[object, object]:
    return struct_submit_round(_STRUCT_SUBMIT)


def struct_receipt_codec() -> tuple[object, object]:
    return struct_receipt_round(_STRUCT_RECEIPT)


def smpplib_submit_codec() -> tuple[object, object]:
    return smpplib_submit_round(_SMPPLIB_SUBMIT)


def warpd_receipt_codec() -> tuple[object, object]:
    return warpd_receipt_round(_WARPD_RECEIPT)


def aiosmpplib_receipt_codec() -> tuple[object, object]:
    return aio_receipt_round(_AIO_RECEIPT)


def smpplib_receipt_codec() -> tuple[object, object]:
    return smpplib_receipt_round(_SMPPLIB_RECEIPT)


# -- harness -----------------------------------------------------------------------


def rate(work: Callable[[], tuple[object, object]], seconds: float) -> float:
    """Rounds per second over about ``seconds``."""
    rounds = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(100):
            work()
        rounds += 100
        now = time.perf_counter()
        if now >= deadline:
            return rounds / (now - started)


def best_rates(
    sides: dict[str, Callable[[], tuple[object, object]]], seconds: float
) -> dict[str, float]:
    """Best rate per side over five interleaved passes.

    Taking turns within each pass means a burst of load from elsewhere on the
    machine hits every side alike, so the ratios stay meaningful.
    """
    best = dict.fromkeys(sides, 0.0)
    for _ in range(PASSES):
        for label, work in sides.items():
            best[label] = max(best[label], rate(work, seconds / PASSES))
    return best


PASSES = 5


#: bench/struct_codec.py: the issue's own yardstick, without validation or typed records.
STRUCT = "struct codec, no validation (issue 3's yardstick)"

WORKLOADS: dict[str, dict[str, Callable[[], tuple[object, object]]]] = {
    "submit_sm (GSM text, registered_delivery=1)": {
        "warpd codec": warpd_submit,
        "warpd codec + GSM7 text": warpd_submit_text,
        STRUCT: struct_submit,
        "aiosmpplib 0.7.4 (text in/out)": aiosmpplib_submit,
        "smpplib 2.2.4": smpplib_submit,
    },
    "deliver_sm receipt (receipted_message_id, message_state)": {
        "warpd codec": warpd_receipt,
        STRUCT: struct_receipt,
        "aiosmpplib 0.7.4": aiosmpplib_receipt,
        "smpplib 2.2.4": smpplib_receipt,
    },
}


CODEC_WORKLOADS: dict[str, dict[str, Callable[[], tuple[object, object]]]] = {
    "submit_sm (GSM text, registered_delivery=1)": {
        "warpd codec": warpd_submit_codec,
        STRUCT: struct_submit_codec,
        "aiosmpplib 0.7.4 (text in/out)": aiosmpplib_submit_codec,
        "smpplib 2.2.4": smpplib_submit_codec,
    },
    "deliver_sm receipt (receipted_message_id, message_state)": {
        "warpd codec": warpd_receipt_codec,
        STRUCT: struct_receipt_codec,
        "aiosmpplib 0.7.4": aiosmpplib_receipt_codec,
        "smpplib 2.2.4": smpplib_receipt_codec,
    },
}

EXPECTED: dict[str, tuple[object, object]] = {
    "submit_sm (GSM text, registered_delivery=1)": (HANDSET, OTP),
    "deliver_sm receipt (receipted_message_id, message_state)": (RECEIPT_ID, 2),
}


def check() -> None:
    """Every side must produce the same values before anything is timed."""
    for workloads in (WORKLOADS, CODEC_WORKLOADS):
        for name, sides in workloads.items():
            for label, work in sides.items():
                got = work()
                normalised = tuple(v.decode() if isinstance(v, bytes) else v for v in got)
                assert normalised == EXPECTED[name], (name, label, got)


def table(
    workloads: dict[str, dict[str, Callable[[], tuple[object, object]]]],
    what: str,
    seconds: float,
) -> None:
    print(f"| workload | implementation | PDUs/s ({what}) | vs aiosmpplib | vs smpplib |")
    print("|---|---|---:|---:|---:|")
    for name, sides in workloads.items():
        rates = best_rates(sides, seconds)
        aio = next(r for label, r in rates.items() if label.startswith("aiosmpplib"))
        smpplib_rate = next(r for label, r in rates.items() if label.startswith("smpplib"))
        for label, value in rates.items():
            print(
                f"| {name} | {label} | {value:,.0f} | {value / aio:.1f}x | "
                f"{value / smpplib_rate:.1f}x |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per row")
    args = parser.parse_args()
    check()
    table(WORKLOADS, "build+encode+decode", args.seconds)
    print()
    table(CODEC_WORKLOADS, "encode+decode of a prebuilt object", args.seconds)


if __name__ == "__main__":
    main()
