"""The customer listener's refusals: bind failures, throttling, windows, malformed PDUs."""

from __future__ import annotations

import asyncio
import struct

import pytest

from protocols.record import replace
from protocols.smpp.codec import encode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import (
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    EnquireLink,
    QuerySm,
    SubmitSm,
)

from .conftest import Running
from .helpers import Peer, bind, ledger_matches_balances, submit, wait_for


async def test_wrong_password_and_unknown_user_look_the_same_and_close(warpd: Running) -> None:
    answers = []
    for system_id, password in ((warpd.system_id, "wrong"), ("nobody", warpd.password)):
        peer, resp = await bind(warpd, system_id, password)
        answers.append(resp.command_status)
        assert await peer.closed()
    assert answers == [CommandStatus.ESME_RINVPASWD] * 2


@pytest.mark.parametrize(
    ("change", "cls"),
    [
        ("allowed_ips = '{10.9.9.0/24}'", BindTransceiver),
        ("bind_types = '{receiver}'", BindTransmitter),
        ("enabled = false", BindTransceiver),
        ("tls_required = true", BindTransceiver),
        ("max_binds = 1", None),
    ],
)
async def test_policy_refusals_are_bind_failures_and_close(
    warpd: Running, change: str, cls: type | None
) -> None:
    await warpd.query(f"UPDATE smpp_users SET {change} WHERE system_id = $1", warpd.system_id)
    await asyncio.sleep(1.2)  # two reload intervals: the change applies without a restart
    held = None
    if cls is None:  # the first bind is allowed, the second is one too many
        held, resp = await bind(warpd, warpd.system_id, warpd.password)
        assert resp.command_status == 0
        cls = BindTransceiver
    peer, resp = await bind(warpd, warpd.system_id, warpd.password, cls)
    assert resp.command_status == CommandStatus.ESME_RBINDFAIL
    assert await peer.closed()
    if held is not None:
        held.close()


async def test_suspended_account_cannot_bind(warpd: Running) -> None:
    await warpd.query("UPDATE accounts SET status = 'suspended' WHERE name = 'demo'")
    await asyncio.sleep(1.2)
    peer, resp = await bind(warpd, warpd.system_id, warpd.password)
    assert resp.command_status == CommandStatus.ESME_RBINDFAIL
    assert await peer.closed()


async def test_a_submit_in_the_same_read_as_the_bind_waits_for_the_bind(warpd: Running) -> None:
    peer = await Peer.connect(warpd)
    peer.writer.write(
        encode(
            BindTransceiver(sequence_number=1, system_id=warpd.system_id, password=warpd.password)
        )
        + encode(replace(submit(), sequence_number=2))
    )
    first, second = await peer.read(), await peer.read()
    assert (first.sequence_number, first.command_status) == (1, 0)
    assert (second.sequence_number, second.command_status) == (2, 0)
    peer.close()


async def test_throttled_beyond_the_users_bucket(warpd: Running) -> None:
    await warpd.query(
        "UPDATE smpp_users SET throughput_tps = 2, burst = 5 WHERE system_id = $1", warpd.system_id
    )
    await asyncio.sleep(1.2)
    peer, resp = await bind(warpd, warpd.system_id, warpd.password)
    assert resp.command_status == 0
    for seq in range(1, 21):
        peer.send(replace(submit(), sequence_number=seq))
    statuses = [(await peer.read()).command_status for _ in range(20)]
    assert statuses.count(0) in (5, 6)  # the burst, and maybe one token refilled
    assert statuses.count(CommandStatus.ESME_RTHROTTLED) == 20 - statuses.count(0)
    peer.close()
    await ledger_matches_balances(warpd)


async def test_malformed_pdus_get_nacks_and_the_session_goes_on(warpd: Running) -> None:
    peer, resp = await bind(warpd, warpd.system_id, warpd.password)
    assert resp.command_status == 0
    other, other_resp = await bind(warpd, warpd.system_id, warpd.password)
    assert other_resp.command_status == 0
    # An unknown command_id: generic_nack ESME_RINVCMDID.
    peer.writer.write(struct.pack(">IIII", 16, 0x000000FF, 0, 77))
    nack = await peer.read()
    assert (nack.command_id, nack.command_status, nack.sequence_number) == (
        0x80000000,
        CommandStatus.ESME_RINVCMDID,
        77,
    )
    # A submit_sm whose body is cut short: its own response with an error.
    body = encode(submit())[16:30]
    peer.writer.write(struct.pack(">IIII", 16 + len(body), 0x00000004, 0, 78) + body)
    bad = await peer.read()
    assert bad.sequence_number == 78
    assert bad.command_status != 0
    # Both sessions still work.
    assert (await peer.request(EnquireLink())).command_status == 0
    assert (await peer.request(submit())).command_status == 0
    assert (await other.request(submit())).command_status == 0
    peer.close()
    other.close()


async def test_bad_destination_and_insufficient_funds_are_refused(warpd: Running) -> None:
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    bad = await peer.request(submit(to="12"))
    assert bad.command_status == CommandStatus.ESME_RINVDSTADR
    await warpd.query(
        "INSERT INTO ledger (account_id, amount_micros, kind, note)"
        " SELECT id, -balance_micros + 4000, 'adjustment', 'test: leave 0.004' FROM accounts"
        " WHERE name = 'demo'"
    )
    await asyncio.sleep(1.2)  # the balance reload
    broke = await peer.request(submit())
    assert broke.command_status == 0x401  # README: insufficient funds
    assert await warpd.value("SELECT count(*) FROM messages") == 0
    peer.close()
    await ledger_matches_balances(warpd)


async def test_query_and_cancel_from_the_store(warpd: Running) -> None:
    sms = warpd.daemon.sms
    assert sms is not None
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    resp = await peer.request(submit())
    message_id = resp.message_id  # type: ignore[attr-defined]
    await wait_for(lambda: not sms.dispatcher.held, what="message sent")
    await asyncio.sleep(0.5)
    query = await peer.request(QuerySm(message_id=message_id, source_addr="BANK"))
    assert query.command_status == 0
    assert query.message_state in (1, 2)  # type: ignore[attr-defined]
    # Sent already: too late to cancel.
    cancel = await peer.request(CancelSm(message_id=message_id, source_addr="BANK"))
    assert cancel.command_status == CommandStatus.ESME_RCANCELFAIL
    # A scheduled message has not gone anywhere: cancelled, and refunded.
    scheduled = await peer.request(
        SubmitSm(
            source_addr="BANK",
            dest_addr_ton=1,
            destination_addr="447700900124",
            short_message=b"later",
            schedule_delivery_time="000001000000000R",
        )
    )
    later_id = scheduled.message_id  # type: ignore[attr-defined]
    cancel = await peer.request(CancelSm(message_id=later_id, source_addr="BANK"))
    assert cancel.command_status == 0
    assert (
        await warpd.value("SELECT state FROM messages WHERE id = $1::uuid", later_id) == "deleted"
    )
    assert (
        await warpd.value(
            "SELECT count(*) FROM ledger WHERE message_id = $1::uuid AND kind = 'sms_refund'",
            later_id,
        )
        == 1
    )
    unknown = await peer.request(QuerySm(message_id="not-an-id", source_addr="BANK"))
    assert unknown.command_status == CommandStatus.ESME_RINVMSGID
    peer.close()
    await ledger_matches_balances(warpd)


async def test_data_sm_and_submit_multi_are_accepted(warpd: Running) -> None:
    from protocols.smpp.pdu import DataSm, SmeAddress, SubmitMulti
    from protocols.smpp.tlv import Tag, Tlv

    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    data = await peer.request(
        DataSm(
            source_addr="BANK",
            dest_addr_ton=1,
            destination_addr="447700900201",
            registered_delivery=1,
            tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"code by data_sm"),),
        )
    )
    assert data.command_status == 0
    multi = await peer.request(
        SubmitMulti(
            source_addr="BANK",
            dest_address=(
                SmeAddress(1, 1, "447700900202"),
                SmeAddress(1, 1, "447700900203"),
                SmeAddress(1, 1, "12"),
            ),
            short_message=b"to three",
            registered_delivery=1,
        )
    )
    assert multi.command_status == 0
    assert [u.destination_addr for u in multi.unsuccess_sme] == ["12"]  # type: ignore[attr-defined]
    receipts = await peer.deliveries(3)
    assert len(receipts) == 3
    rows = await warpd.query(
        "SELECT destination_addr, body FROM messages ORDER BY destination_addr"
    )
    assert [(r[0], bytes(r[1])) for r in rows] == [
        ("447700900201", b"code by data_sm"),
        ("447700900202", b"to three"),
        ("447700900203", b"to three"),
    ]
    peer.close()
