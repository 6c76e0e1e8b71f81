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

import smpplib.smpp
from aiosmpplib import DeliverSm as AioDeliverSm
from aiosmpplib import OptionalParam, PhoneNumber, SmppMessage
from aiosmpplib import SubmitSm as AioSubmitSm
from aiosmpplib.state import MESSAGE_STATE, RECEIPTED_MESSAGE_ID, TON

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

# -- (a) submit_sm ---------------------------------------------------------------


def warpd_submit() -> tuple[object, object]:
    pdu = SubmitSm(
        sequence_number=7,
        source_addr_ton=5,
        source_addr=SENDER,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=HANDSET,
        registered_delivery=1,
        short_message=b"Your verification code is 493817. Do not share it.",
    )
    got = decode(encode(pdu))
    assert isinstance(got, SubmitSm)
    return got.destination_addr, got.short_message


def warpd_submit_text() -> tuple[object, object]:
    pdu = SubmitSm(
        sequence_number=7,
        source_addr_ton=5,
        source_addr=SENDER,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=HANDSET,
        registered_delivery=1,
        short_message=encode_gsm7(OTP),
    )
    got = decode(encode(pdu))
    assert isinstance(got, SubmitSm)
    return got.destination_addr, decode_gsm7(got.short_message)


def aiosmpplib_submit() -> tuple[object, object]:
    msg = AioSubmitSm(
        sequence_num=7,
        short_message=OTP,
        source=PhoneNumber(SENDER, ton=TON.ALPHANUMERIC),
        destination=PhoneNumber(HANDSET, ton=TON.INTERNATIONAL),
        registered_delivery=1,
    )
    data = msg.pdu()
    got = AioSubmitSm.from_pdu(data, SmppMessage.parse_header(data[:16]))
    assert isinstance(got, AioSubmitSm)
    return got.destination.number, got.short_message


def smpplib_submit() -> tuple[object, object]:
    msg = smpplib.smpp.make_pdu(
        "submit_sm",
        client=_CLIENT,
        sequence=7,
        source_addr_ton=5,
        source_addr=SENDER,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=HANDSET,
        registered_delivery=1,
        short_message=b"Your verification code is 493817. Do not share it.",
    )
    got = smpplib.smpp.parse_pdu(msg.generate(), client=_CLIENT)
    return got.destination_addr.decode(), got.short_message


# -- (b) deliver_sm receipt ------------------------------------------------------------


def warpd_receipt() -> tuple[object, object]:
    pdu = DeliverSm(
        sequence_number=9,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=HANDSET,
        dest_addr_ton=5,
        destination_addr=SENDER,
        esm_class=0x04,
        short_message=RECEIPT.encode(),
        tlvs=(
            Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, RECEIPT_ID),
            Tlv.u8(Tag.MESSAGE_STATE, MessageState.DELIVERED),
        ),
    )
    got = decode(encode(pdu))
    return tlv_str(got.tlvs, Tag.RECEIPTED_MESSAGE_ID), tlv_int(got.tlvs, Tag.MESSAGE_STATE)


def aiosmpplib_receipt() -> tuple[object, object]:
    msg = AioDeliverSm(
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
    data = msg.pdu()
    got = AioDeliverSm.from_pdu(data, SmppMessage.parse_header(data[:16]))
    assert isinstance(got, AioDeliverSm)
    params = {p.tag: p.value for p in got.optional_params or []}
    return params[RECEIPTED_MESSAGE_ID], params[MESSAGE_STATE]


def smpplib_receipt() -> tuple[object, object]:
    msg = smpplib.smpp.make_pdu(
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
    got = smpplib.smpp.parse_pdu(msg.generate(), client=_CLIENT)
    return got.receipted_message_id.decode(), got.message_state


# -- encode+decode of an object built once (second table) -----------------------------

_WARPD_SUBMIT = SubmitSm(
    sequence_number=7,
    source_addr_ton=5,
    source_addr=SENDER,
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr=HANDSET,
    registered_delivery=1,
    short_message=OTP.encode(),
)
_AIO_SUBMIT = AioSubmitSm(
    sequence_num=7,
    short_message=OTP,
    source=PhoneNumber(SENDER, ton=TON.ALPHANUMERIC),
    destination=PhoneNumber(HANDSET, ton=TON.INTERNATIONAL),
    registered_delivery=1,
)
_SMPPLIB_SUBMIT = smpplib.smpp.make_pdu(
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
_WARPD_RECEIPT = DeliverSm(
    sequence_number=9,
    source_addr_ton=1,
    source_addr_npi=1,
    source_addr=HANDSET,
    dest_addr_ton=5,
    destination_addr=SENDER,
    esm_class=0x04,
    short_message=RECEIPT.encode(),
    tlvs=(
        Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, RECEIPT_ID),
        Tlv.u8(Tag.MESSAGE_STATE, MessageState.DELIVERED),
    ),
)
_AIO_RECEIPT = AioDeliverSm(
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
_SMPPLIB_RECEIPT = smpplib.smpp.make_pdu(
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


def warpd_submit_codec() -> tuple[object, object]:
    got = decode(encode(_WARPD_SUBMIT))
    assert isinstance(got, SubmitSm)
    return got.destination_addr, got.short_message


def aiosmpplib_submit_codec() -> tuple[object, object]:
    data = _AIO_SUBMIT.pdu()
    got = AioSubmitSm.from_pdu(data, SmppMessage.parse_header(data[:16]))
    assert isinstance(got, AioSubmitSm)
    return got.destination.number, got.short_message


def smpplib_submit_codec() -> tuple[object, object]:
    got = smpplib.smpp.parse_pdu(_SMPPLIB_SUBMIT.generate(), client=_CLIENT)
    return got.destination_addr.decode(), got.short_message


def warpd_receipt_codec() -> tuple[object, object]:
    got = decode(encode(_WARPD_RECEIPT))
    return tlv_str(got.tlvs, Tag.RECEIPTED_MESSAGE_ID), tlv_int(got.tlvs, Tag.MESSAGE_STATE)


def aiosmpplib_receipt_codec() -> tuple[object, object]:
    data = _AIO_RECEIPT.pdu()
    got = AioDeliverSm.from_pdu(data, SmppMessage.parse_header(data[:16]))
    assert isinstance(got, AioDeliverSm)
    params = {p.tag: p.value for p in got.optional_params or []}
    return params[RECEIPTED_MESSAGE_ID], params[MESSAGE_STATE]


def smpplib_receipt_codec() -> tuple[object, object]:
    got = smpplib.smpp.parse_pdu(_SMPPLIB_RECEIPT.generate(), client=_CLIENT)
    return got.receipted_message_id.decode(), got.message_state


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


WORKLOADS: dict[str, dict[str, Callable[[], tuple[object, object]]]] = {
    "submit_sm (GSM text, registered_delivery=1)": {
        "warpd codec": warpd_submit,
        "warpd codec + GSM7 text": warpd_submit_text,
        "aiosmpplib 0.7.4 (text in/out)": aiosmpplib_submit,
        "smpplib 2.2.4": smpplib_submit,
    },
    "deliver_sm receipt (receipted_message_id, message_state)": {
        "warpd codec": warpd_receipt,
        "aiosmpplib 0.7.4": aiosmpplib_receipt,
        "smpplib 2.2.4": smpplib_receipt,
    },
}


CODEC_WORKLOADS: dict[str, dict[str, Callable[[], tuple[object, object]]]] = {
    "submit_sm (GSM text, registered_delivery=1)": {
        "warpd codec": warpd_submit_codec,
        "aiosmpplib 0.7.4 (text in/out)": aiosmpplib_submit_codec,
        "smpplib 2.2.4": smpplib_submit_codec,
    },
    "deliver_sm receipt (receipted_message_id, message_state)": {
        "warpd codec": warpd_receipt_codec,
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
