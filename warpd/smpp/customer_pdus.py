"""Customer PDUs <-> the SMS core: a submit as a Submission, a delivery as a deliver_sm."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.dlr import format_receipt, receipt_tlvs
from protocols.smpp.errors import SmppError
from protocols.smpp.flags import ESM_CLASS_TYPE_RECEIPT
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitMulti, SubmitSm
from protocols.smpp.time_format import parse_smpp_time
from protocols.smpp.tlv import Tag, Tlv, encode_tlvs, tlv_bytes
from warpd.sms.catalog import SmppUser
from warpd.sms.model import Refused, Submission

# TLVs the core handles itself rather than relaying upstream as they came.
_CONSUMED = frozenset({Tag.MESSAGE_PAYLOAD, Tag.RECEIPTED_MESSAGE_ID, Tag.MESSAGE_STATE})
_STATES = {
    "delivered": MessageState.DELIVERED,
    "expired": MessageState.EXPIRED,
    "deleted": MessageState.DELETED,
    "undeliverable": MessageState.UNDELIVERABLE,
    "rejected": MessageState.REJECTED,
    "unknown": MessageState.UNKNOWN,
    "failed": MessageState.UNDELIVERABLE,
}


def submission_from(
    pdu: SubmitSm | DataSm | SubmitMulti,
    user: SmppUser,
    now: datetime,
    *,
    dest: tuple[str, int, int] | None = None,
) -> Submission:
    """Raises Refused for times that do not parse."""
    payload = tlv_bytes(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
    if isinstance(pdu, DataSm):
        body, schedule, validity = payload or b"", "", ""
    else:
        body = pdu.short_message or payload or b""
        schedule, validity = pdu.schedule_delivery_time, pdu.validity_period
    if dest is None:
        assert not isinstance(pdu, SubmitMulti)
        dest = (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi)
    try:
        schedule_at = parse_smpp_time(schedule, now, command_status=CommandStatus.ESME_RINVSCHED)
        expires_at = parse_smpp_time(validity, now)
    except SmppError as exc:
        code = "invalid_schedule" if exc.command_status == CommandStatus.ESME_RINVSCHED else None
        raise Refused(code or "invalid_expiry", str(exc)) from None
    relayed = tuple(t for t in pdu.tlvs if t.tag not in _CONSUMED)
    return Submission(
        account_id=user.account_id,
        channel="smpp",
        source_addr=pdu.source_addr,
        destination_addr=dest[0],
        body=body,
        data_coding=pdu.data_coding,
        esm_class=pdu.esm_class,
        registered_delivery=pdu.registered_delivery,
        source_ton=pdu.source_addr_ton,
        source_npi=pdu.source_addr_npi,
        dest_ton=dest[1],
        dest_npi=dest[2],
        tlvs=encode_tlvs(relayed) if relayed else b"",
        smpp_user_id=user.id,
        schedule_at=schedule_at if schedule_at is not None and schedule_at > now else None,
        expires_at=expires_at,
    )


def deliver_sm_for(payload: dict[str, Any]) -> DeliverSm:
    """The deliver_sm a receipt or MO event becomes on a customer's RX/TRX bind."""
    smpp = payload["smpp"]
    if payload["type"] == "mo":
        return DeliverSm(
            source_addr_ton=smpp["source_ton"],
            source_addr_npi=smpp["source_npi"],
            source_addr=smpp["source_addr"],
            dest_addr_ton=smpp["dest_ton"],
            dest_addr_npi=smpp["dest_npi"],
            destination_addr=smpp["destination_addr"],
            esm_class=smpp["esm_class"],
            data_coding=smpp["data_coding"],
            short_message=bytes.fromhex(smpp["body"]),
        )
    state = _STATES.get(payload["state"], MessageState.UNKNOWN)
    submitted = datetime.fromisoformat(payload["submitted_at"])
    done = datetime.fromisoformat(payload["done_at"])
    error = int(payload.get("error_code") or 0)
    text = format_receipt(
        payload["message_id"],
        state,
        submit_date=submitted,
        done_date=done,
        text=smpp["text"],
        err=error if 0 <= error <= 999 else 999,
    )
    tlvs: tuple[Tlv, ...] = receipt_tlvs(payload["message_id"], state).tlvs()
    return DeliverSm(
        source_addr_ton=smpp["source_ton"],
        source_addr_npi=smpp["source_npi"],
        source_addr=smpp["source_addr"],
        dest_addr_ton=smpp["dest_ton"],
        dest_addr_npi=smpp["dest_npi"],
        destination_addr=smpp["destination_addr"],
        esm_class=ESM_CLASS_TYPE_RECEIPT,
        short_message=text.encode("ascii", "replace"),
        tlvs=tlvs,
    )
