"""The simulator as independent SMPP clients see it: smpplib binds, submits, gets receipts and
MO; a refused bind is answered and the connection closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import smpplib.client
import smpplib.exceptions

from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.dlr import parse_receipt
from protocols.smpp.errors import SmppError
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
)
from tests.warpd.sim.conftest import Start
from tests.warpd.sim.support import load_for
from warpd.sim import EsmeConfig, run_esme


def _client(port: int) -> smpplib.client.Client:
    return smpplib.client.Client("127.0.0.1", port, timeout=3, allow_unknown_opt_params=True)


def _keeper(into: list[Any]) -> Callable[..., None]:
    def keep(pdu: Any) -> None:  # smpplib passes the PDU as the keyword ``pdu``
        into.append(pdu)

    return keep


def _read_until(client: smpplib.client.Client, done: Any, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        client.read_once()


async def test_smpplib_submits_and_gets_a_receipt_with_the_resp_id(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.01, receipt_delay=0.01, id_format="dec")
    sent: list[str] = []
    received: list[Any] = []

    def session() -> None:
        client = _client(smsc.port)
        client.set_message_sent_handler(lambda pdu: sent.append(pdu.message_id.decode()))
        client.set_message_received_handler(_keeper(received))
        client.connect()
        try:
            client.bind_transceiver(system_id="sim", password="sim")
            client.send_message(
                source_addr_ton=5,
                source_addr="ACME",
                dest_addr_ton=1,
                destination_addr="447700900123",
                short_message=b"Your code is 493817",
                registered_delivery=1,
            )
            _read_until(client, lambda: sent and received)
            client.unbind()
        finally:
            client.disconnect()

    await asyncio.to_thread(session)
    assert len(sent) == 1
    assert sent[0].isdigit()
    assert len(received) == 1
    receipt = received[0]
    assert receipt.command == "deliver_sm"
    assert receipt.esm_class == 0x04  # SMSC delivery receipt
    assert receipt.source_addr.decode() == "447700900123"  # addresses swapped
    assert receipt.destination_addr.decode() == "ACME"
    assert receipt.receipted_message_id.decode() == sent[0]
    parsed = parse_receipt(receipt.short_message)
    assert parsed.message_id == sent[0]
    assert parsed.stat == "DELIVRD"
    assert parsed.text == "Your code is 493817"
    assert smsc.stats.receipts_acked == 1


async def test_mo_reaches_a_bound_receiver_in_parts(start_smsc: Start) -> None:
    smsc = await start_smsc()
    received: list[Any] = []
    bound = asyncio.Event()
    loop = asyncio.get_running_loop()

    def receiver() -> None:
        client = _client(smsc.port)
        client.set_message_received_handler(_keeper(received))
        client.connect()
        try:
            client.bind_receiver(system_id="sim", password="sim")
            loop.call_soon_threadsafe(bound.set)
            _read_until(client, lambda: len(received) >= 4)
        finally:
            client.disconnect()

    thread = asyncio.create_task(asyncio.to_thread(receiver))
    await asyncio.wait_for(bound.wait(), 3)
    await asyncio.wait_for(smsc.send_mo("447700900123", "12345", "STOP"), 3)
    long_text = "Привет! " * 20  # 160 UCS-2 units: three parts of at most 67
    await asyncio.wait_for(smsc.send_mo("447700900123", "12345", long_text, data_coding=8), 3)
    await thread
    assert smsc.stats.mo_sent == smsc.stats.mo_acked == 4
    assert [pdu.short_message for pdu in received[:1]] == [b"STOP"]
    assert received[0].source_addr.decode() == "447700900123"
    assert received[0].destination_addr.decode() == "12345"
    parts = received[1:]
    assert len(parts) == 3
    assert {pdu.data_coding for pdu in parts} == {8}
    assert all(pdu.esm_class & 0x40 for pdu in parts)
    text = b"".join(pdu.short_message[6:] for pdu in parts).decode("utf-16-be")
    assert text == long_text


async def test_mo_waits_in_the_outbox_until_a_receiver_binds(start_smsc: Start) -> None:
    smsc = await start_smsc()
    futures = smsc.queue_mo("447700900123", "12345", "HELP")
    await asyncio.sleep(0.05)
    assert not futures[0].done()
    summary = await run_esme(load_for(smsc, count=1))
    assert summary.mo_received == 1
    assert futures[0].done()


async def test_smpplib_with_a_wrong_password_is_refused(start_smsc: Start) -> None:
    smsc = await start_smsc()

    def bind() -> int:
        client = _client(smsc.port)
        client.connect()
        try:
            client.bind_transceiver(system_id="sim", password="wrong")
        except smpplib.exceptions.PDUError as exc:
            return int(exc.args[1])
        finally:
            client.disconnect()
        return 0

    assert await asyncio.to_thread(bind) == CommandStatus.ESME_RINVPASWD
    assert smsc.stats.binds_refused == 1


async def test_a_refused_bind_is_answered_then_the_connection_closed(start_smsc: Start) -> None:
    smsc = await start_smsc()
    reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
    try:
        writer.write(encode(BindTransceiver(sequence_number=7, system_id="sim", password="x")))
        async with asyncio.timeout(3):
            data = await reader.read()  # to EOF: the simulator closes after answering
    finally:
        writer.close()
    frames = PduReader()
    frames.feed(data)
    answers = [decode(frame) for frame in frames]
    assert len(answers) == 1
    answer = answers[0]
    assert isinstance(answer, BindTransceiverResp)
    assert answer.sequence_number == 7
    assert answer.command_status == CommandStatus.ESME_RINVPASWD
    assert answer.tlvs == ()  # no sc_interface_version on a refusal


async def test_the_load_reports_a_refused_bind(start_smsc: Start) -> None:
    smsc = await start_smsc()
    summary = await run_esme(load_for(smsc, password="wrong", count=5))
    assert not summary.ok
    assert summary.errors == ("transceiver bind refused: ESME_RINVPASWD",)
    assert summary.submitted == 0
    assert summary.reconnects == 0  # a refusal is final


async def test_a_bind_and_a_submit_in_one_read_are_answered_in_order(start_smsc: Start) -> None:
    smsc = await start_smsc()
    reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
    try:
        writer.write(
            encode(BindTransceiver(sequence_number=1, system_id="sim", password="sim"))
            + encode(SubmitSm(sequence_number=2, destination_addr="447700900001"))
        )
        frames = PduReader()
        answers: list[Any] = []
        async with asyncio.timeout(3):
            while len(answers) < 2:
                frames.feed(await reader.read(4096))
                answers += [decode(frame) for frame in frames]
    finally:
        writer.close()
    assert isinstance(answers[0], BindTransceiverResp)
    assert answers[0].command_status == 0
    assert isinstance(answers[1], SubmitSmResp)
    assert answers[1].command_status == 0
    assert answers[1].message_id


async def test_a_temporarily_refused_receipt_is_sent_again(start_smsc: Start) -> None:
    smsc = await start_smsc()
    received: list[Any] = []

    def answer(pdu: Any) -> int | None:  # smpplib: the return value is the command_status
        received.append(pdu)
        return CommandStatus.ESME_RX_T_APPN if len(received) == 1 else None

    def session() -> None:
        client = _client(smsc.port)
        client.set_message_received_handler(answer)
        client.connect()
        try:
            client.bind_transceiver(system_id="sim", password="sim")
            client.send_message(destination_addr="447700900123", short_message=b"hi",
                                registered_delivery=1)  # fmt: skip
            _read_until(client, lambda: len(received) >= 2)
        finally:
            client.disconnect()

    await asyncio.to_thread(session)
    assert len(received) == 2
    assert received[0].receipted_message_id == received[1].receipted_message_id
    assert smsc.stats.receipts_sent == smsc.stats.receipts_resent == 1
    assert smsc.stats.receipts_acked == 1
    assert smsc.stats.receipts_refused == 0


async def test_a_permanently_refused_mo_is_not_retried(start_smsc: Start) -> None:
    smsc = await start_smsc()
    received: list[Any] = []
    bound = asyncio.Event()
    loop = asyncio.get_running_loop()

    def refuse(pdu: Any) -> int:
        received.append(pdu)
        return CommandStatus.ESME_RX_P_APPN

    def receiver() -> None:
        client = _client(smsc.port)
        client.set_message_received_handler(refuse)
        client.connect()
        try:
            client.bind_receiver(system_id="sim", password="sim")
            loop.call_soon_threadsafe(bound.set)
            _read_until(client, lambda: bool(received), seconds=2)
        finally:
            client.disconnect()

    thread = asyncio.create_task(asyncio.to_thread(receiver))
    await asyncio.wait_for(bound.wait(), 3)
    with pytest.raises(SmppError) as refused:
        await asyncio.wait_for(smsc.send_mo("447700900123", "12345", "JOIN"), 3)
    await thread
    assert refused.value.command_status == CommandStatus.ESME_RX_P_APPN
    assert smsc.stats.receipts_refused == 1
    assert smsc.stats.mo_acked == 0


async def test_an_unanswered_deliver_sm_times_out_and_goes_out_again(start_smsc: Start) -> None:
    smsc = await start_smsc(deliver_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
    frames = PduReader()
    deliveries: list[Any] = []
    try:
        writer.write(encode(BindReceiver(sequence_number=1, system_id="sim", password="sim")))
        receipt_id = smsc.send_receipt_for_unknown()
        async with asyncio.timeout(3):
            while len(deliveries) < 2:  # the first is never answered
                frames.feed(await reader.read(4096))
                deliveries += [p for p in map(decode, frames) if isinstance(p, DeliverSm)]
        writer.write(encode(DeliverSmResp(sequence_number=deliveries[1].sequence_number)))
        await writer.drain()
        await _settle(lambda: smsc.stats.receipts_acked == 1)
    finally:
        writer.close()
    first, second = deliveries[:2]
    assert second.sequence_number != first.sequence_number
    assert first.short_message == second.short_message
    assert receipt_id.encode() in first.short_message
    assert smsc.stats.receipts_resent == 1


async def _settle(predicate: Callable[[], bool]) -> None:
    for _ in range(300):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def test_a_bind_answered_with_generic_nack_is_a_refusal() -> None:
    async def nack(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = PduReader()
        frames.feed(await reader.read(4096))
        for frame in frames:
            writer.write(encode(GenericNack(sequence_number=decode(frame).sequence_number)))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(nack, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        summary = await run_esme(EsmeConfig(port=port, system_id="x", count=1))
    finally:
        server.close()
    assert summary.errors == ("transceiver bind refused: generic_nack",)
    assert summary.reconnects == 0
