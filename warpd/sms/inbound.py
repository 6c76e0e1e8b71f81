"""What carriers send us: delivery receipts and MO, each stored before it is answered.

A receipt is matched to our part by the carrier's id (the receipted_message_id
TLV, else the Appendix B ``id:``), settled in the journal, and only then is the
carrier's deliver_sm answered: a crash before that makes the carrier send it
again, never lose it. Intermediate receipts (ENROUTE, ACCEPTD) change nothing.
An MO goes to the account its MO route names, parts as they came; STOP and
START keep that account's opt-out list.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from protocols.smpp.constants import MessageState
from protocols.smpp.dlr import FINAL_STATES, STATE_BY_STAT, ReceiptError, parse_receipt
from protocols.smpp.flags import esm_udhi, is_status_report
from protocols.smpp.pdu import DataSm, DeliverSm, Pdu
from protocols.smpp.text import TextError, decode_text
from protocols.smpp.tlv import Tag, tlv_bytes, tlv_int, tlv_str
from warpd.routing.mo import MoDecision, opt_out_keyword, route_mo
from warpd.sms.carrier_ids import carrier_id
from warpd.sms.catalog import Catalog, Connector
from warpd.sms.journal import CarrierReceipt, Journal, MoReceived
from warpd.sms.stats import SmsStats

STATE_NAMES = {
    MessageState.DELIVERED: "delivered",
    MessageState.EXPIRED: "expired",
    MessageState.DELETED: "deleted",
    MessageState.UNDELIVERABLE: "undeliverable",
    MessageState.UNKNOWN: "unknown",
    MessageState.REJECTED: "rejected",
    MessageState.SKIPPED: "rejected",
}


class CarrierInbound:
    def __init__(
        self,
        journal: Journal,
        opt_outs: set[tuple[int, str]],
        stats: SmsStats,
        *,
        instance_id: str,
        delivery_ttl: timedelta,
        lease: timedelta,
    ) -> None:
        self.catalog = Catalog()
        self._journal = journal
        self._opt_outs = opt_outs
        self._stats = stats
        self._instance = instance_id
        self._ttl = delivery_ttl
        self._lease = lease
        self.unreadable = 0
        self.mo = 0

    def __call__(self, connector: Connector, pdu: Pdu) -> asyncio.Future[None] | None:
        assert isinstance(pdu, DeliverSm | DataSm)
        if is_status_report(pdu.esm_class):
            return self._receipt(connector, pdu)
        return self._mo(connector, pdu)

    def _receipt(
        self, connector: Connector, pdu: DeliverSm | DataSm
    ) -> asyncio.Future[None] | None:
        body = _body(pdu)
        tlv_id = tlv_str(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID)
        tlv_state = tlv_int(pdu.tlvs, Tag.MESSAGE_STATE)
        if tlv_id and tlv_state in _TLV_STATES:
            # The TLVs say which message and how it ended (SMPP 3.4 5.3.2.12,
            # 5.3.2.35): only the error code is left in the text.
            state = _TLV_STATES[tlv_state]
            found = _ERR.search(body)
            error = found[1].decode() if found else None
            key = carrier_id(tlv_id, connector.dlr_id_format, resp=True)
            return self._settle(connector, key, state, error=error, stat=None)
        try:
            receipt = parse_receipt(body) if body else None
        except ReceiptError:
            receipt = None
        if tlv_id:
            key = carrier_id(tlv_id, connector.dlr_id_format, resp=True)
        elif receipt is not None:
            key = carrier_id(receipt.message_id, connector.dlr_id_format, resp=False)
        else:
            # No id anywhere: nothing to settle. Answer so the carrier does not
            # resend it forever, and count it.
            self.unreadable += 1
            return None
        final = _state(tlv_state, receipt)
        if final is None or final not in FINAL_STATES:
            return None
        return self._settle(
            connector, key, final, error=receipt.err if receipt else None,
            stat=receipt.stat if receipt else None,
        )  # fmt: skip

    def _settle(
        self, connector: Connector, key: str, state: MessageState, *, error: str | None,
        stat: str | None,
    ) -> asyncio.Future[None] | None:  # fmt: skip
        name = STATE_NAMES[state]
        self._stats.receipts[connector.id, name] += 1
        entry = CarrierReceipt(
            connector.id,
            key,
            name,
            int(error) if error and error.isdigit() else None,
            {"stat": stat, "err": error},
        )
        return self._journal.add_and_wait(entry)

    def _mo(self, connector: Connector, pdu: DeliverSm | DataSm) -> asyncio.Future[None] | None:
        body = _body(pdu)
        text = _text(body, pdu.data_coding, pdu.esm_class)
        source = pdu.source_addr.removeprefix("+")
        destination = pdu.destination_addr.removeprefix("+")
        decision = route_mo(self.catalog.routing, destination=destination, text=text)
        mo_id = uuid.uuid4()
        now = datetime.now(UTC)
        account_id = decision.account_id if decision is not None else None
        record = (
            mo_id,
            connector.id,
            tlv_str(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID),
            account_id,
            decision.route_id if decision is not None else None,
            source,
            destination,
            pdu.esm_class,
            pdu.data_coding,
            body,
            b"",
            "received" if decision else "unrouted",
        )
        self.mo += 1
        opt_out = None
        deliveries: list[tuple[Any, ...]] = []
        if decision is not None:
            keyword = opt_out_keyword(text)
            if keyword in ("stop", "start"):
                opt_out = (keyword, decision.account_id, source)
                if keyword == "stop":
                    self._opt_outs.add((decision.account_id, source))
                else:
                    self._opt_outs.discard((decision.account_id, source))
            event = {
                "type": "mo",
                "id": str(mo_id),
                "account_id": decision.account_id,
                "from": source,
                "to": destination,
                "text": text,
                "data_coding": pdu.data_coding,
                "received_at": now.isoformat(),
                "smpp": {
                    "source_addr": pdu.source_addr,
                    "source_ton": pdu.source_addr_ton,
                    "source_npi": pdu.source_addr_npi,
                    "destination_addr": pdu.destination_addr,
                    "dest_ton": pdu.dest_addr_ton,
                    "dest_npi": pdu.dest_addr_npi,
                    "esm_class": pdu.esm_class,
                    "data_coding": pdu.data_coding,
                    "body": body.hex(),
                },
            }
            deliveries = self._mo_targets(decision, mo_id, event, now)
        return self._journal.add_and_wait(MoReceived(record, tuple(deliveries), opt_out))

    def _mo_targets(
        self, decision: MoDecision, mo_id: uuid.UUID, event: dict[str, Any], now: datetime
    ) -> list[tuple[Any, ...]]:
        account_id, via, webhook_id = decision.account_id, decision.deliver_via, decision.webhook_id
        expires = now + self._ttl
        if via == "webhook":
            return [
                (
                    account_id,
                    "mo",
                    None,
                    mo_id,
                    "webhook",
                    None,
                    webhook_id,
                    None,
                    event,
                    expires,
                    None,
                    None,
                )
            ]
        users = [
            u
            for u in self.catalog.smpp_users.values()
            if u.account_id == account_id and u.enabled and u.bind_types & _RECEIVING
        ]
        if not users:
            return []
        user = min(users, key=lambda u: u.id)
        return [
            (
                account_id,
                "mo",
                None,
                mo_id,
                "smpp",
                user.id,
                None,
                None,
                event,
                expires,
                None,
                None,
            )
        ]


_RECEIVING = frozenset({"receiver", "transceiver"})
_TLV_STATES = {int(state): state for state in STATE_NAMES}
_ERR = re.compile(rb"(?i)\berr:\s*([0-9]+)")


def _body(pdu: DeliverSm | DataSm) -> bytes:
    payload = tlv_bytes(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
    if payload is not None:
        return payload
    return pdu.short_message if isinstance(pdu, DeliverSm) else b""


def _text(body: bytes, data_coding: int, esm_class: int) -> str:
    if esm_udhi(esm_class) and body:
        body = body[1 + body[0] :]
    try:
        text = decode_text(body, data_coding)
    except TextError:
        return ""
    return text if isinstance(text, str) else ""


def _state(tlv_state: int | None, receipt: Any) -> MessageState | None:
    if tlv_state is not None:
        try:
            return MessageState(tlv_state)
        except ValueError:
            pass
    if receipt is None:
        return None
    if receipt.stat is not None:
        return STATE_BY_STAT.get(receipt.stat.upper())
    return receipt.state if isinstance(receipt.state, MessageState) else None
