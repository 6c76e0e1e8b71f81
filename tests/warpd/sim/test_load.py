"""sim-esme against sim-smsc on loopback: receipts, multipart, UCS-2, outcomes, logs, TLS."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import orjson
import pytest

from protocols.smpp.text import decode_text
from tests.warpd.sim.conftest import Start
from tests.warpd.sim.support import load_for
from warpd.sim import run_esme


async def test_a_thousand_messages_each_get_a_matching_receipt(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.002, receipt_delay=0.002)
    summary = await run_esme(load_for(smsc, count=1000, binds=2, window=50))
    assert summary.ok, summary.render()
    assert summary.responses_by_status == {"ESME_ROK": 1000}
    assert summary.receipt_ids_matched == summary.receipts == 1000
    assert summary.unmatched_receipts == summary.receipts_missing == 0
    assert summary.receipts_by_stat == {"DELIVRD": 1000}
    assert summary.submit_to_resp_p50_ms is not None
    assert summary.submit_to_resp_p50_ms >= 2
    assert summary.submit_to_receipt_p99_ms is not None
    assert summary.rate > 0
    assert summary.elapsed_s > 0
    stats = smsc.stats
    assert stats.binds == 2
    assert stats.unbinds == 2  # the load unbinds cleanly at the end
    assert stats.submits_by_status == {"ESME_ROK": 1000}
    assert stats.receipts_sent == stats.receipts_acked == 1000


async def test_receipts_that_do_not_come_in_time_are_reported_missing(start_smsc: Start) -> None:
    smsc = await start_smsc(receipt_delay=5.0)
    summary = await run_esme(load_for(smsc, count=10, receipt_timeout=0.3))
    assert not summary.ok
    assert summary.responses_by_status == {"ESME_ROK": 10}
    assert summary.receipts_missing == 10
    assert summary.receipts == 0
    assert "10 missing" in summary.render()


async def test_without_receipts_nothing_is_waited_for(start_smsc: Start) -> None:
    smsc = await start_smsc()
    summary = await run_esme(load_for(smsc, count=20, receipts=False, registered_delivery=0))
    assert summary.ok
    assert summary.receipts == 0
    assert smsc.stats.receipts_sent == 0  # registered_delivery 0 asks for none


async def test_multipart_ucs2_parts_carry_udh_and_reassemble(
    start_smsc: Start, tmp_path: Path
) -> None:
    text = "Ünïcødé ✓ " * 20  # 200 UCS-2 units: 3 parts of at most 67
    smsc = await start_smsc(log=tmp_path / "smsc.jsonl")
    summary = await run_esme(load_for(smsc, count=10, ucs2=True, multipart=True, text=text))
    assert summary.ok, summary.render()
    assert summary.parts == 30
    assert summary.receipt_ids_matched == 30
    await smsc.stop()
    submits = [
        line
        for line in map(orjson.loads, (tmp_path / "smsc.jsonl").read_bytes().splitlines())
        if line["kind"] == "submit"
    ]
    assert len(submits) == 30
    assert {s["data_coding"] for s in submits} == {8}
    assert {s["esm_class"] for s in submits} == {0x40}
    by_ref: dict[int, dict[int, str]] = {}
    for submit in submits:
        body = bytes.fromhex(submit["body"])
        assert body[:3] == b"\x05\x00\x03"
        assert body[4] == 3
        text_part = decode_text(body[6:], 8)
        assert isinstance(text_part, str)
        by_ref.setdefault(body[3], {})[body[5]] = text_part
    assert len(by_ref) == 10  # one concatenation reference per message
    for parts in by_ref.values():
        assert "".join(parts[i] for i in (1, 2, 3)) == text


async def test_multipart_repeats_a_short_text_into_three_gsm_parts(start_smsc: Start) -> None:
    smsc = await start_smsc()
    summary = await run_esme(load_for(smsc, count=5, multipart=True, text="code 1234"))
    assert summary.ok
    assert summary.parts == 15


async def test_outcome_mix_is_counted_on_both_sides(start_smsc: Start, tmp_path: Path) -> None:
    smsc = await start_smsc(outcomes={"DELIVRD": 0.5, "UNDELIV": 0.5}, seed=7)
    summary = await run_esme(load_for(smsc, count=400, window=50, log=tmp_path / "esme.jsonl"))
    assert summary.ok, summary.render()
    stats = summary.receipts_by_stat
    assert set(stats) == {"DELIVRD", "UNDELIV"}
    assert sum(stats.values()) == 400
    assert 120 < stats["DELIVRD"] < 280
    lines = [orjson.loads(line) for line in (tmp_path / "esme.jsonl").read_bytes().splitlines()]
    receipts = [line for line in lines if line["kind"] == "receipt"]
    resps = [line for line in lines if line["kind"] == "resp"]
    assert len(receipts) == len(resps) == 400
    assert {r["id"] for r in receipts} == {r["id"] for r in resps}
    assert sum(r["stat"] == "UNDELIV" for r in receipts) == stats["UNDELIV"]


async def test_registered_delivery_2_gets_receipts_only_for_failures(start_smsc: Start) -> None:
    smsc = await start_smsc(outcomes={"DELIVRD": 0.5, "UNDELIV": 0.5}, seed=3)
    summary = await run_esme(load_for(smsc, count=100, receipts=False, registered_delivery=2))
    assert summary.responses_by_status == {"ESME_ROK": 100}
    assert smsc.stats.receipts_sent == summary.receipts_by_stat.get("UNDELIV", 0) > 0
    assert "DELIVRD" not in summary.receipts_by_stat


async def test_transmitter_binds_get_receipts_on_a_receiver_bind(start_smsc: Start) -> None:
    smsc = await start_smsc()
    summary = await run_esme(load_for(smsc, count=100, bind="transmitter", binds=2))
    assert summary.ok, summary.render()
    assert smsc.stats.binds == 3  # two transmitters and the receiver


async def test_destination_range_is_cycled(start_smsc: Start, tmp_path: Path) -> None:
    smsc = await start_smsc(log=tmp_path / "smsc.jsonl")
    summary = await run_esme(
        load_for(smsc, count=30, destination="447700900000-447700900009", receipts=False)
    )
    assert summary.ok
    await smsc.stop()
    lines = [orjson.loads(line) for line in (tmp_path / "smsc.jsonl").read_bytes().splitlines()]
    destinations = {line["destination"] for line in lines if line["kind"] == "submit"}
    assert destinations == {f"44770090000{i}" for i in range(10)}


async def test_templated_texts_tell_messages_apart_in_both_logs(
    start_smsc: Start, tmp_path: Path
) -> None:
    smsc = await start_smsc(log=tmp_path / "smsc.jsonl")
    esme_log = tmp_path / "esme.jsonl"
    summary = await run_esme(load_for(smsc, count=20, text="OTP {n:04d}", log=esme_log))
    assert summary.ok
    await smsc.stop()
    carrier = {
        line["id"]: bytes.fromhex(line["body"]).decode()
        for line in map(orjson.loads, (tmp_path / "smsc.jsonl").read_bytes().splitlines())
        if line["kind"] == "submit"
    }
    ours = {
        line["id"]: line["message"]
        for line in map(orjson.loads, esme_log.read_bytes().splitlines())
        if line["kind"] == "resp"
    }
    assert carrier.keys() == ours.keys()
    assert all(carrier[i] == f"OTP {n:04d}" for i, n in ours.items())


async def test_the_offered_rate_is_held(start_smsc: Start) -> None:
    smsc = await start_smsc()
    summary = await run_esme(load_for(smsc, count=100, rate=400.0, receipts=False))
    assert summary.ok
    assert 0.2 <= summary.elapsed_s < 1.0  # 100 messages at 400/s take a quarter second


async def test_a_duration_offers_messages_until_the_time_is_up(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.002)
    summary = await run_esme(load_for(smsc, duration=0.3, rate=200.0, count=5))
    assert summary.ok, summary.render()
    assert 40 <= summary.messages <= 75  # 200/s for 0.3 s; count does not cap it
    assert summary.receipt_ids_matched == summary.messages
    assert smsc.stats.submits == summary.messages


async def test_hold_keeps_idle_binds_open(start_smsc: Start) -> None:
    smsc = await start_smsc()
    task = asyncio.create_task(run_esme(load_for(smsc, count=0, binds=3, hold=1.0)))
    for _ in range(80):
        if smsc.stats.binds == 3:
            break
        await asyncio.sleep(0.01)
    assert smsc.stats.binds == 3
    assert not task.done()
    summary = await task
    assert summary.ok
    assert summary.elapsed_s >= 1.0
    assert smsc.stats.unbinds == 3
    assert summary.submitted == 0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_listener_and_tls_load(start_smsc: Start, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    smsc = await start_smsc(tls_cert=cert, tls_key=key)
    summary = await run_esme(load_for(smsc, count=50, tls=True))
    assert summary.ok, summary.render()
    plain = await run_esme(load_for(smsc, count=1, reconnect_for=0.2))
    assert not plain.ok  # a plain client cannot bind to the TLS port
