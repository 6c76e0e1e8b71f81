"""smpplib and aiosmpplib, written by others, bind to warpd, send, and get receipts with our ids."""

from __future__ import annotations

import asyncio
import time
import uuid

import smpplib.client
import smpplib.consts
import smpplib.gsm

from protocols.smpp.dlr import parse_receipt

from .conftest import Running
from .helpers import ledger_matches_balances


def smpplib_session(
    warpd: Running, texts: list[str], expect_receipts: int
) -> tuple[list[str], list[str]]:
    """Send each text (split by smpplib itself when long); return our ids and the receipt ids."""
    host, port = warpd.smpp
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
    ids: list[str] = []
    receipts: list[str] = []

    def sent(pdu: object) -> None:
        ids.append(pdu.message_id.decode())  # type: ignore[attr-defined]

    def received(pdu: object) -> None:
        receipt = parse_receipt(pdu.short_message)  # type: ignore[attr-defined]
        receipts.append(receipt.message_id)

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    client.connect()
    try:
        client.bind_transceiver(system_id=warpd.system_id, password=warpd.password)
        for text in texts:
            parts, coding, esm_class = smpplib.gsm.make_parts(text)
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                    source_addr="BANK",
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                    destination_addr="447700900123",
                    short_message=part,
                    data_coding=coding,
                    esm_class=esm_class,
                    registered_delivery=True,
                )
        deadline = time.monotonic() + 15
        while (len(receipts) < expect_receipts or len(ids) < expect_receipts) and (
            time.monotonic() < deadline
        ):
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return ids, receipts


async def test_smpplib_single_multipart_gsm7_and_ucs2(warpd: Running) -> None:
    long_gsm7 = "Your one-time code is 481516. " * 8  # 240 characters: two parts
    ucs2 = "Ваш код: 2342 — не сообщайте его никому"  # Cyrillic: UCS-2, one part
    long_ucs2 = "Код подтверждения 777. " * 4  # 92 UCS-2 characters: two parts
    ids, receipts = await asyncio.to_thread(
        smpplib_session, warpd, ["OTP 123456", long_gsm7, ucs2, long_ucs2], 6
    )
    assert len(ids) == 6
    for message_id in ids:
        uuid.UUID(message_id)  # our ids, not the carrier's
    assert sorted(receipts) == sorted(ids)
    rows = await warpd.query("SELECT data_coding, esm_class, state FROM messages")
    assert len(rows) == 6
    assert {r["state"] for r in rows} == {"delivered"}
    assert sum(1 for r in rows if r["data_coding"] == 8) == 3
    assert sum(1 for r in rows if r["esm_class"] & 0x40) == 4  # smpplib's UDH parts
    assert await warpd.value("SELECT count(*) FROM ledger WHERE kind = 'sms_charge'") == 6
    await ledger_matches_balances(warpd)


async def test_aiosmpplib_sends_and_gets_receipts(warpd: Running) -> None:
    from aiosmpplib import ESME, PhoneNumber, SubmitSm
    from aiosmpplib.broker import SimpleBroker
    from aiosmpplib.hook import AbstractHook

    host, port = warpd.smpp
    responses: list[str] = []
    receipts: list[str] = []

    class Hook(AbstractHook):  # type: ignore[misc]
        async def sending(self, smpp_message: object, pdu: bytes, client_id: str) -> None:
            pass

        async def received(self, smpp_message: object, pdu: bytes, client_id: str) -> None:
            name = type(smpp_message).__name__
            if name == "SubmitSmResp":
                responses.append(smpp_message.message_id)  # type: ignore[attr-defined]
            elif name == "DeliverSm":
                receipts.append(parse_receipt(smpp_message.short_message).message_id)  # type: ignore[attr-defined]

        async def send_error(self, smpp_message: object, error: Exception, client_id: str) -> None:
            pass

    broker = SimpleBroker()
    esme = ESME(
        smsc_host=host,
        smsc_port=port,
        system_id=warpd.system_id,
        password=warpd.password,
        broker=broker,
        hook=Hook(),
    )
    task = asyncio.create_task(esme.start())
    try:
        for n in range(5):
            await broker.enqueue(
                SubmitSm(
                    short_message=f"code {n}",
                    source=PhoneNumber("BANK"),
                    destination=PhoneNumber("+447700900123"),
                    log_id=f"m{n}",
                    registered_delivery=True,
                )
            )
        async with asyncio.timeout(15):
            while len(receipts) < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await esme.stop()
        task.cancel()
    assert len(responses) == 5
    assert sorted(receipts) == sorted(responses)
    await ledger_matches_balances(warpd)
