"""NgClient against a real rtpengine: ping, a relayed call with its stats,
error replies, retransmission with the same cookie, timeouts, stray replies."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest

from media.client import NgClient
from media.errors import NgSendError, NgTimeout
from media.metrics import NgMetrics
from protocols.ng.errors import NgError
from protocols.ng.messages import (
    Answer,
    Delete,
    Ice,
    ListCalls,
    Offer,
    Ping,
    Query,
    Statistics,
)
from protocols.ng.replies import Result, decode_reply
from tests.media.conftest import RtpEngineDaemon
from tests.media.helpers import HOST, media_port, open_endpoint, open_proxy, rtp, sdp

PROXY_PORT = 22235
PACKETS = 20


def fresh_call_id() -> str:
    return f"test-{secrets.token_hex(6)}@{HOST}"


def sample(metrics: NgMetrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_ping(rtpengine: RtpEngineDaemon) -> None:
    async with NgClient(*rtpengine.address) as client:
        await client.ping()
        reply = await client.request(Ping())
    assert reply.result is Result.PONG


async def test_offer_answer_delete_relays_media_and_reports_counts(
    rtpengine: RtpEngineDaemon,
) -> None:
    caller, callee = await open_endpoint(), await open_endpoint()
    call_id = fresh_call_id()
    try:
        async with NgClient(*rtpengine.address) as client:
            offered = await client.request(
                Offer(call_id=call_id, from_tag="caller", sdp=sdp(caller.port), ice=Ice.REMOVE)
            )
            assert offered.sdp is not None
            answered = await client.request(
                Answer(call_id=call_id, from_tag="caller", to_tag="callee", sdp=sdp(callee.port))
            )
            assert answered.sdp is not None
            # The callee sends to the port in the offer rtpengine gave it, the
            # caller to the port in the answer: both are rtpengine's, not the peer's.
            to_caller = (HOST, media_port(offered.sdp))
            to_callee = (HOST, media_port(answered.sdp))
            assert {to_caller[1], to_callee[1]}.isdisjoint({caller.port, callee.port})
            for seq in range(PACKETS):
                caller.send(rtp(seq, 0x1111), to_callee)
                packet, _ = await callee.recv()
                assert packet == rtp(seq, 0x1111)
                callee.send(rtp(seq, 0x2222), to_caller)
                packet, _ = await caller.recv()
                assert packet == rtp(seq, 0x2222)
            listed = await client.request(ListCalls())
            assert call_id in listed.calls
            deleted = await client.request(
                Delete(call_id=call_id, from_tag="caller", delete_delay=0)
            )
    finally:
        caller.close()
        callee.close()
    assert deleted.result is Result.OK
    stats = deleted.stats
    assert stats is not None
    assert stats.rtp.packets == 2 * PACKETS
    assert stats.rtp.bytes == 2 * PACKETS * len(rtp(0, 0))
    assert stats.rtp.errors == 0
    assert stats.created is not None
    by_ssrc = {s.ssrc: s.counters.packets for s in stats.streams if not s.rtcp}
    assert by_ssrc == {0x1111: PACKETS, 0x2222: PACKETS}
    assert {s.tag for s in stats.streams} == {"caller", "callee"}


async def test_query_reports_a_live_call(rtpengine: RtpEngineDaemon) -> None:
    call_id = fresh_call_id()
    async with NgClient(*rtpengine.address) as client:
        await client.request(Offer(call_id=call_id, from_tag="a", sdp=sdp(4000)))
        queried = await client.request(Query(call_id=call_id))
        await client.request(Delete(call_id=call_id, delete_delay=0))
    assert queried.stats is not None
    assert queried.stats.rtp.packets == 0


async def test_statistics_reply_is_kept_raw(rtpengine: RtpEngineDaemon) -> None:
    async with NgClient(*rtpengine.address) as client:
        reply = await client.request(Statistics())
    assert isinstance(reply.raw["statistics"], dict)


async def test_error_reply_raises_ng_error_with_reason(rtpengine: RtpEngineDaemon) -> None:
    metrics = NgMetrics()
    async with NgClient(*rtpengine.address, name="a", metrics=metrics.instance("a")) as client:
        with pytest.raises(NgError, match="Unknown call-id") as caught:
            await client.request(
                Answer(call_id=fresh_call_id(), from_tag="x", to_tag="y", sdp=sdp(4000))
            )
        with pytest.raises(NgError, match="Call-ID not found or tags didn't match"):
            await client.request(Delete(call_id=fresh_call_id(), flags=("fatal",)))
        # Without "fatal" an unknown call is ok plus a warning.
        reply = await client.request(Delete(call_id=fresh_call_id()))
    assert caught.value.reason == "Unknown call-id"
    assert not caught.value.is_overload
    assert reply.warning is not None
    assert (
        sample(metrics, "warpd_rtpengine_errors_total", {"instance": "a", "kind": "error_reply"})
        == 2
    )


def test_malformed_requests_get_an_error_reply(rtpengine: RtpEngineDaemon) -> None:
    # Raw datagrams, because the client cannot produce these: rtpengine's
    # answers to them must still decode into typed replies.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.settimeout(2)
        raw.connect(rtpengine.address)
        raw.send(b"bad1 notbencode")
        cookie, reply = decode_reply(raw.recv(65535))
        raw.send(b'json1 {"command":"ping"}')
        json_cookie, pong = decode_reply(raw.recv(65535))
        raw.send(b"bad2 d7:command7:unknowne")
        _, unknown = decode_reply(raw.recv(65535))
    assert (cookie, reply.result, reply.error_reason) == (
        b"bad1",
        Result.ERROR,
        "Invalid NG data format",
    )
    assert (json_cookie, pong.result) == (b"json1", Result.PONG)
    assert unknown.error_reason == "Unrecognized command"


async def test_requests_go_as_json_with_json_replies(rtpengine: RtpEngineDaemon) -> None:
    proxy = await open_proxy(PROXY_PORT, rtpengine.address, drop_reply=lambda n: False)
    call_id = fresh_call_id()
    try:
        async with NgClient(HOST, PROXY_PORT) as client:
            offer = await client.request(Offer(call_id=call_id, from_tag="a", sdp=sdp(4004)))
            queried = await client.request(Query(call_id=call_id))
            await client.request(Delete(call_id=call_id, delete_delay=0))
    finally:
        proxy.close()
    assert all(request.split(b" ", 1)[1].startswith(b"{") for request in proxy.requests)
    assert all(reply.split(b" ", 1)[1].startswith(b"{") for reply in proxy.replies)
    assert offer.sdp is not None
    assert media_port(offer.sdp) > 0
    assert queried.stats is not None
    assert queried.stats.streams


async def test_sdp_that_is_not_utf8_goes_as_bencode(rtpengine: RtpEngineDaemon) -> None:
    proxy = await open_proxy(PROXY_PORT, rtpengine.address, drop_reply=lambda n: False)
    call_id = fresh_call_id()
    odd = sdp(4006).replace(b"s=-", b"s=caf\xe9")
    try:
        async with NgClient(HOST, PROXY_PORT) as client:
            offer = await client.request(Offer(call_id=call_id, from_tag="a", sdp=odd))
            await client.request(Delete(call_id=call_id, delete_delay=0))
    finally:
        proxy.close()
    assert proxy.requests[0].split(b" ", 1)[1].startswith(b"d")
    assert proxy.requests[1].split(b" ", 1)[1].startswith(b"{")
    assert offer.sdp is not None
    assert b"s=caf\xe9" in offer.sdp


async def test_an_rtpengine_without_json_gets_bencode(rtpengine: RtpEngineDaemon) -> None:
    proxy = await open_proxy(
        PROXY_PORT, rtpengine.address, drop_reply=lambda n: False, refuse_json=True
    )
    call_id = fresh_call_id()
    try:
        async with NgClient(HOST, PROXY_PORT) as client:
            offer = await client.request(Offer(call_id=call_id, from_tag="a", sdp=sdp(4008)))
            await client.request(Delete(call_id=call_id, delete_delay=0))
            assert not client.speaks_json
    finally:
        proxy.close()
    bodies = [request.split(b" ", 1)[1][:1] for request in proxy.requests]
    # One refused JSON offer, then bencode only: the delete is not tried in JSON.
    assert bodies == [b"{", b"d", b"d"]
    assert offer.result is Result.OK


async def test_dropped_reply_is_retransmitted_with_same_cookie(
    rtpengine: RtpEngineDaemon,
) -> None:
    proxy = await open_proxy(PROXY_PORT, rtpengine.address, drop_reply=lambda n: n == 0)
    metrics = NgMetrics()
    call_id = fresh_call_id()
    try:
        async with NgClient(
            HOST, PROXY_PORT, name="p", timeout=0.1, attempts=3, metrics=metrics.instance("p")
        ) as client:
            reply = await client.request(Offer(call_id=call_id, from_tag="a", sdp=sdp(4002)))
            await client.request(Delete(call_id=call_id, delete_delay=0))
    finally:
        proxy.close()
    offer_sends = proxy.requests[:2]
    assert offer_sends[0] == offer_sends[1]  # same bytes, same cookie
    # rtpengine's cookie cache answered the duplicate without re-running it.
    assert proxy.replies[0] == proxy.replies[1]
    assert reply.result is Result.OK
    assert reply.sdp is not None
    assert sample(metrics, "warpd_rtpengine_retransmissions_total", {"instance": "p"}) == 1
    # Karn's rule: the retransmitted offer gives no round-trip sample.
    rtt = {"instance": "p", "command": "offer"}
    assert sample(metrics, "warpd_rtpengine_round_trip_seconds_count", rtt) == 0


async def test_no_reply_raises_timeout_after_all_attempts(rtpengine: RtpEngineDaemon) -> None:
    proxy = await open_proxy(PROXY_PORT, rtpengine.address, drop_reply=lambda n: True)
    metrics = NgMetrics()
    try:
        async with NgClient(
            HOST, PROXY_PORT, name="p", timeout=0.05, attempts=3, metrics=metrics.instance("p")
        ) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(NgTimeout):
                await client.request(Ping())
            elapsed = loop.time() - started
            assert client.in_flight == 0
    finally:
        proxy.close()
    assert len(proxy.requests) == 3
    assert len(set(proxy.requests)) == 1
    assert 0.14 <= elapsed < 1.0  # 3 x 50 ms, less the loop clock granularity
    assert (
        sample(metrics, "warpd_rtpengine_errors_total", {"instance": "p", "kind": "timeout"}) == 1
    )


async def test_reply_with_unknown_cookie_is_dropped(rtpengine: RtpEngineDaemon) -> None:
    proxy = await open_proxy(PROXY_PORT, rtpengine.address, drop_reply=lambda n: n == 0)
    metrics = NgMetrics()
    try:
        async with NgClient(
            HOST, PROXY_PORT, name="p", timeout=0.2, metrics=metrics.instance("p")
        ) as client:
            task = asyncio.create_task(client.request(Ping()))
            async with asyncio.timeout(2):
                await proxy.replied.wait()
            # A stray pong for a cookie nobody asked for must not complete the ping.
            proxy.inject(b"warpd_00000000_999 d6:result4:ponge")
            reply = await task
    finally:
        proxy.close()
    assert reply.result is Result.PONG
    assert len(proxy.requests) == 2  # it still had to retransmit
    kind = {"instance": "p", "kind": "unknown_cookie"}
    assert sample(metrics, "warpd_rtpengine_errors_total", kind) == 1


async def test_closed_port_fails_fast_with_send_error() -> None:
    # Nothing listens on this ng port: the connected socket gets ICMP
    # port unreachable, and the request fails before its first timeout.
    async with NgClient(HOST, 22238, timeout=5.0) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(NgSendError):
            await client.request(Ping())
        assert loop.time() - started < 2.0


async def test_closed_client_refuses_requests() -> None:
    client = NgClient(HOST, 22238)
    with pytest.raises(NgSendError):
        await client.request(Ping())


async def test_concurrent_requests_each_get_their_own_reply(rtpengine: RtpEngineDaemon) -> None:
    async with NgClient(*rtpengine.address) as client:
        call_ids = [fresh_call_id() for _ in range(30)]
        offers = [Offer(call_id=c, from_tag="a", sdp=sdp(5000 + i)) for i, c in enumerate(call_ids)]
        replies = await asyncio.gather(*(client.request(o) for o in offers))
        ports = {media_port(r.sdp or b"") for r in replies}
        await asyncio.gather(*(client.request(Delete(call_id=c, delete_delay=0)) for c in call_ids))
        assert client.in_flight == 0
    assert len(ports) == 30  # every call got its own rtpengine port


def test_client_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="attempts"):
        NgClient(HOST, 1, attempts=0)
    with pytest.raises(ValueError, match="instance_prefix"):
        NgClient(HOST, 1, instance_prefix="a b")
