"""The simulators' pure parts: ids, outcomes, modes, garbage, plans, summaries, timers."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import cast

import pytest

from protocols.smpp.codec import decode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.framing import PduReader
from protocols.smpp.session_events import SessionConfig
from warpd.sim import EsmeConfig, EsmeLoad, EsmeSummary, Mode, ModeKind, SmscConfig
from warpd.sim.carrier import (
    MessageIds,
    Outcomes,
    garbage_pdu,
    mode_from_json,
    parse_outcomes,
    parse_status,
    status_name,
)
from warpd.sim.esme_link import EsmeLink
from warpd.sim.esme_plan import Plan, parse_destinations
from warpd.sim.messages import address_ton, mo_parts
from warpd.sim.stats import percentile
from warpd.sim.timers import Timers


@pytest.mark.parametrize(("id_format", "first"), [("hex", "ff"), ("dec", "255")])
def test_counting_ids_are_unique_and_formatted(id_format: str, first: str) -> None:
    ids = MessageIds(id_format, 255)
    issued = [ids.next_id() for _ in range(1000)]
    assert issued[0] == first
    assert len(set(issued)) == 1000


def test_uuid_ids() -> None:
    ids = MessageIds("uuid", 0)
    first, second = ids.next_id(), ids.next_id()
    assert first != second
    assert uuid.UUID(first).version == 4


def test_unknown_id_format() -> None:
    with pytest.raises(ValueError, match="id_format"):
        MessageIds("base64", 0)


def test_parse_outcomes() -> None:
    assert parse_outcomes("delivrd=0.9, UNDELIV=0.1") == {"DELIVRD": 0.9, "UNDELIV": 0.1}
    with pytest.raises(ValueError, match="STAT=WEIGHT"):
        parse_outcomes("DELIVRD")
    with pytest.raises(ValueError, match="not a number"):
        parse_outcomes("DELIVRD=lots")


def test_outcomes_follow_their_weights() -> None:
    outcomes = Outcomes({"DELIVRD": 3, "EXPIRED": 1, "REJECTD": 0}, random.Random(1))
    draws = [outcomes.draw()[0] for _ in range(4000)]
    assert set(draws) == {"DELIVRD", "EXPIRED"}  # a zero weight never comes up
    assert 2800 < draws.count("DELIVRD") < 3200


@pytest.mark.parametrize(
    ("weights", "reason"),
    [({}, "at least one"), ({"NOPE": 1}, "unknown receipt stat"), ({"DELIVRD": -1}, ">= 0"),
     ({"DELIVRD": 0}, "sum to zero")],
)  # fmt: skip
def test_bad_outcomes(weights: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Outcomes(weights, random.Random(0))


def test_mode_from_json() -> None:
    mode = mode_from_json({"mode": "drop", "interval": 2, "duration": 10})
    assert mode == Mode(ModeKind.DROP, interval=2, duration=10)
    assert mode_from_json({"mode": "reject", "status": 69}).status == 69
    assert mode_from_json({"mode": "normal"}) == Mode()
    assert mode_from_json({"mode": "throttle", "tps": 10}).tps == 10
    with pytest.raises(ValueError, match="tps must be > 0"):
        mode_from_json({"mode": "throttle", "tps": 0})
    with pytest.raises(ValueError, match="must be > 0"):
        mode_from_json({"mode": "drop", "interval": 0})
    with pytest.raises(ValueError, match="must be a number"):
        mode_from_json({"mode": "slow", "extra_delay": "1s"})
    with pytest.raises(ValueError, match="mode must be one of"):
        mode_from_json({})


def test_parse_and_name_statuses() -> None:
    assert parse_status("esme_rthrottled") == CommandStatus.ESME_RTHROTTLED
    assert parse_status("0x0b") == 0x0B
    assert parse_status(0x45) == 0x45
    for bad in (True, "ESME_NOPE", 1.5):
        with pytest.raises(ValueError, match="unknown command_status"):
            parse_status(bad)
    assert status_name(0) == "ESME_ROK"
    assert status_name(0x400) == "0x00000400"  # a vendor code keeps its number


@pytest.mark.parametrize(("n", "status"), [(1, 0x03), (2, None)])
def test_garbage_is_framed_but_undecodable(n: int, status: int | None) -> None:
    reader = PduReader()
    reader.feed(garbage_pdu(n, bytes(8)))
    frame = reader.next_frame()
    assert frame is not None
    assert reader.buffered == 0
    with pytest.raises(SmppError) as caught:
        decode(frame)
    if status is not None:
        assert caught.value.command_status == status


def test_destinations() -> None:
    numbers = parse_destinations("447700900001, 447700900002")
    assert [numbers.at(i) for i in range(3)] == ["447700900001", "447700900002", "447700900001"]
    span = parse_destinations("0044770-0044772")
    assert [span.at(i) for i in range(4)] == ["0044770", "0044771", "0044772", "0044770"]
    for bad in ("", " , ", "5-1", "12-123", "a-b"):
        with pytest.raises(ValueError, match="destination"):
            parse_destinations(bad)


def test_plan_gives_each_message_its_own_concatenation_reference() -> None:
    plan = Plan(EsmeConfig(multipart=True, text="x", destination="447700900001-447700900002"))
    first, second = plan.parts(0), plan.parts(1)
    assert len(first) == len(second) == 3
    assert [pdu.short_message[3] for pdu in first] == [0, 0, 0]
    assert [pdu.short_message[3] for pdu in second] == [1, 1, 1]
    assert [pdu.short_message[5] for pdu in first] == [1, 2, 3]
    assert {pdu.esm_class for pdu in first} == {0x40}
    assert (first[0].destination_addr, second[0].destination_addr) == (
        "447700900001",
        "447700900002",
    )
    assert first[0].source_addr_ton == 5  # alphanumeric "WARPD"
    assert first[0].dest_addr_ton == 1


def test_a_text_template_numbers_each_message() -> None:
    plan = Plan(EsmeConfig(text="code {n:06d}"))
    assert [plan.parts(i)[0].short_message for i in (0, 42)] == [b"code 000000", b"code 000042"]
    long_plan = Plan(EsmeConfig(text="{n} ", multipart=True))
    assert len(long_plan.parts(7)) == 3
    with pytest.raises(ValueError, match="text template"):
        EsmeConfig(text="code {n} {x}")


def test_plan_single_ucs2_part() -> None:
    (pdu,) = Plan(EsmeConfig(ucs2=True, text="код 1234")).parts(0)
    assert pdu.data_coding == 8
    assert pdu.esm_class == 0
    assert pdu.short_message == "код 1234".encode("utf-16-be")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"bind": "receiver"}, "bind must be"), ({"binds": 0}, ">= 1"), ({"rate": 0}, "rate"),
     ({"registered_delivery": 2}, "registered_delivery 1"), ({"receipt_timeout": 0}, "timeouts"),
     ({"destination": ""}, "destination"), ({"duration": 0}, "duration"),
     ({"hold": -1}, "hold")],
)  # fmt: skip
def test_esme_config_is_validated(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        EsmeConfig(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"response_delay": -1}, "delays"), ({"window": 0}, "window"), ({"id_format": "x"}, "id_"),
     ({"tls_key": "k.pem"}, "together"), ({"outcomes": {"LOST": 1}}, "unknown receipt stat")],
)  # fmt: skip
def test_smsc_config_is_validated(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        SmscConfig(**fields)  # type: ignore[arg-type]


def test_address_ton_and_mo_parts() -> None:
    assert (address_ton("447700900001"), address_ton("12345"), address_ton("ACME")) == (1, 0, 5)
    (single,) = mo_parts("447700900001", "12345", "STOP", 0, 9)
    assert single.short_message == b"STOP"
    assert single.esm_class == 0
    with pytest.raises(ValueError, match="data_coding"):
        mo_parts("1", "2", "x", 4, 0)


def _summary(**fields: object) -> EsmeSummary:
    base: dict[str, object] = {
        "messages": 2, "parts": 2, "submitted": 2, "resubmitted": 0,
        "responses_by_status": {"ESME_ROK": 2}, "timeouts": 0, "receipts_expected": True,
        "receipts": 2, "receipts_by_stat": {"DELIVRD": 2}, "receipt_ids_matched": 2,
        "unmatched_receipts": 0, "duplicate_receipts": 0, "receipts_before_response": 0,
        "receipts_missing": 0, "mo_received": 0, "reconnects": 0,
        "submit_to_resp_p50_ms": 1.0, "submit_to_resp_p99_ms": 2.0,
        "submit_to_receipt_p50_ms": 3.0, "submit_to_receipt_p99_ms": 4.0,
        "elapsed_s": 1.0, "rate": 2.0,
    }  # fmt: skip
    return EsmeSummary(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "ok"),
    [({}, True), ({"responses_by_status": {"ESME_ROK": 1, "ESME_RSYSERR": 1}}, False),
     ({"timeouts": 1}, False), ({"receipts_missing": 1, "receipt_ids_matched": 1}, False),
     ({"unmatched_receipts": 1}, False), ({"errors": ("bind refused",)}, False),
     ({"receipts_expected": False, "receipts": 0, "receipt_ids_matched": 0}, True)],
)  # fmt: skip
def test_summary_ok(fields: dict[str, object], ok: bool) -> None:
    summary = _summary(**fields)
    assert summary.ok is ok
    assert summary.as_dict()["ok"] is ok
    assert ("result     ok" in summary.render()) is ok
    assert '"ok": ' + ("true" if ok else "false") in summary.to_json()


def test_percentile_is_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


async def test_timers_run_due_callbacks_in_order_then_flush_once() -> None:
    loop = asyncio.get_running_loop()
    ran: list[str] = []
    flushes: list[int] = []
    timers = Timers(loop, lambda: flushes.append(len(ran)))
    now = loop.time()
    timers.call_at(now + 0.03, lambda: ran.append("late"))
    timers.call_at(now + 0.01, lambda: ran.append("b"))
    timers.call_at(now + 0.01, lambda: ran.append("c"))  # same deadline: scheduling order
    timers.call_at(now + 0.005, lambda: timers.call_at(loop.time(), lambda: ran.append("now")))
    await asyncio.sleep(0.02)
    # A callback scheduled from a callback runs in the same wake-up once due.
    assert sorted(ran) == ["b", "c", "now"]
    assert ran.index("b") < ran.index("c")
    assert len(timers) == 1
    await asyncio.sleep(0.02)
    assert ran[-1] == "late"
    # One flush per wake-up, not per callback: b and c share a deadline, so no flush
    # comes between them, and five callbacks never make five flushes (a busy box may
    # split the others over separate wake-ups).
    assert ran.index("b") + 1 not in flushes
    assert len(flushes) <= 4
    timers.call_at(loop.time() + 0.01, lambda: ran.append("cleared"))
    timers.clear()
    await asyncio.sleep(0.02)
    assert "cleared" not in ran


async def test_a_burst_of_throttled_answers_is_one_pause() -> None:
    link = EsmeLink(cast(EsmeLoad, None), "transceiver", SessionConfig(), give_up=0.0)
    first = link.throttled(10.0)
    assert first == pytest.approx(10.05)
    assert link.throttled(10.01) == first  # the rest of the window in flight: same pause
    second = link.throttled(10.06)  # refused again after the pause: twice as long
    assert second == pytest.approx(10.16)
    link.accepted()
    assert link.throttled(11.0) == pytest.approx(11.05)
