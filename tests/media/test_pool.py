"""RtpEnginePool against two real rtpengine daemons: weighted hash pick,
stickiness of later requests, failover on a stopped or full instance, probes
before re-use, and the monitor."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from media.client import NgClient
from media.errors import NoRtpEngine, RtpEngineUnavailable
from media.pool import InstanceState, PoolSettings, RtpEngineAddress, RtpEnginePool
from protocols.ng.errors import NgError
from protocols.ng.messages import Answer, Delete, ListCalls, Offer, Query
from tests.media.conftest import RtpEngineDaemon, media, port
from tests.media.helpers import HOST, sdp

FAST = PoolSettings(timeout=0.05, attempts=2, disable_seconds=0.3, ping_interval=0.05)
Pair = tuple[RtpEngineDaemon, RtpEngineDaemon]


def addresses(
    pair: Sequence[RtpEngineDaemon], weights: Sequence[int] = (1, 1)
) -> list[RtpEngineAddress]:
    return [
        RtpEngineAddress(name, HOST, daemon.ng_port, weight)
        for name, daemon, weight in zip("ab", pair, weights, strict=True)
    ]


def picks(call_id: str, weights: Sequence[int]) -> int:
    """The index the documented rule picks: crc32(call-id) % sum(weights)."""
    point = zlib.crc32(call_id.encode()) % sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    raise AssertionError


_serial = itertools.count()


def call_id_for(index: int, weights: Sequence[int] = (1, 1)) -> str:
    while True:
        call_id = f"pool-{next(_serial)}@{HOST}"
        if picks(call_id, weights) == index:
            return call_id


def offer(call_id: str) -> Offer:
    return Offer(call_id=call_id, from_tag="caller", sdp=sdp(7000))


def answer(call_id: str) -> Answer:
    return Answer(call_id=call_id, from_tag="caller", to_tag="callee", sdp=sdp(7002))


async def calls_on(daemon: RtpEngineDaemon) -> set[str]:
    async with NgClient(*daemon.address) as client:
        return set((await client.request(ListCalls(limit=1000))).calls)


async def wait_for_state(pool: RtpEnginePool, name: str, state: InstanceState) -> None:
    async with asyncio.timeout(3):
        while pool.states()[name] is not state:  # noqa: ASYNC110 (state has no event)
            await asyncio.sleep(0.02)


def sample(pool: RtpEnginePool, name: str, labels: dict[str, str]) -> float:
    value = pool.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
async def pool(rtpengine_pair: Pair) -> AsyncIterator[RtpEnginePool]:
    pool = RtpEnginePool(addresses(rtpengine_pair), FAST)
    await pool.open()
    yield pool
    pool.close()


async def test_calls_follow_weights_and_later_requests_stick(rtpengine_pair: Pair) -> None:
    weights = (3, 1)
    pool = RtpEnginePool(addresses(rtpengine_pair, weights), FAST)
    await pool.open()
    call_ids = [f"weighted-{n}@{HOST}" for n in range(60)]
    try:
        for call_id in call_ids:
            await pool.offer(offer(call_id))
        placed = {call_id: pool.instance_of(call_id) for call_id in call_ids}
        on_a, on_b = await calls_on(rtpengine_pair[0]), await calls_on(rtpengine_pair[1])
        # An answer on the wrong instance would fail with "Unknown call-id".
        for call_id in call_ids:
            await pool.answer(answer(call_id))
            assert (await pool.query(Query(call_id=call_id))).stats is not None
            await pool.delete(Delete(call_id=call_id, delete_delay=0))
            assert pool.instance_of(call_id) is None
    finally:
        pool.close()
    assert placed == {c: "ab"[picks(c, weights)] for c in call_ids}
    assert on_a == {c for c, name in placed.items() if name == "a"}
    assert on_b == {c for c, name in placed.items() if name == "b"}
    counts = Counter(placed.values())
    assert counts["a"] > counts["b"] > 0


async def test_stopped_instance_is_skipped_then_probed_back(
    pool: RtpEnginePool, rtpengine_pair: Pair
) -> None:
    first, _ = rtpengine_pair
    first.stop()
    moved = call_id_for(0)
    await pool.offer(offer(moved))
    assert pool.instance_of(moved) == "b"
    assert pool.states()["a"] is InstanceState.DOWN
    assert sample(pool, "warpd_rtpengine_up", {"instance": "a"}) == 0
    # While disabled, "a" is not even tried.
    sent_to_a = sample(
        pool, "warpd_rtpengine_requests_total", {"instance": "a", "command": "offer"}
    )
    await pool.offer(offer(call_id_for(0)))
    assert (
        sample(pool, "warpd_rtpengine_requests_total", {"instance": "a", "command": "offer"})
        == sent_to_a
    )
    first.start()
    await asyncio.sleep(FAST.disable_seconds + 0.05)
    # The next new call does not wait for "a": it goes to "b" while "a" is pinged.
    meanwhile = call_id_for(0)
    await pool.offer(offer(meanwhile))
    assert pool.instance_of(meanwhile) == "b"
    await wait_for_state(pool, "a", InstanceState.UP)
    back = call_id_for(0)
    await pool.offer(offer(back))
    assert pool.instance_of(back) == "a"
    assert pool.states()["a"] is InstanceState.UP
    assert sample(pool, "warpd_rtpengine_requests_total", {"instance": "a", "command": "ping"}) == 1
    # The call that moved stays on "b" for its re-offer and answer.
    await pool.offer(offer(moved))
    await pool.answer(answer(moved))
    assert pool.instance_of(moved) == "b"
    assert moved in await calls_on(rtpengine_pair[1])


async def test_full_instance_passes_the_offer_on(tmp_path: Path) -> None:
    # A real overload: "a" may hold one session only.
    full = RtpEngineDaemon(
        tmp_path / "full", port(22233), port(22243), media(900), media(1099),
        ("--max-sessions=1",),
    )  # fmt: skip
    spare = RtpEngineDaemon(tmp_path / "spare", port(22234), port(22244), media(1100), media(1299))
    full.start()
    spare.start()
    pool = RtpEnginePool(addresses((full, spare)), FAST)
    await pool.open()
    try:
        first, second = call_id_for(0), call_id_for(0)
        await pool.offer(offer(first))
        await pool.offer(offer(second))
        assert (pool.instance_of(first), pool.instance_of(second)) == ("a", "b")
        assert pool.states()["a"] is InstanceState.UP  # full is not down
        kind = {"instance": "a", "kind": "overload"}
        assert sample(pool, "warpd_rtpengine_errors_total", kind) == 1
    finally:
        pool.close()
        full.stop()
        spare.stop()


async def test_other_error_fails_the_call_without_failover(pool: RtpEnginePool) -> None:
    call_id = call_id_for(0)
    with pytest.raises(NgError):
        await pool.offer(Offer(call_id=call_id, from_tag="x", sdp=b"not an sdp"))
    with pytest.raises(NgError, match="Unknown call-id"):
        await pool.answer(answer(call_id_for(1)))
    offers_to_b = {"instance": "b", "command": "offer"}
    assert sample(pool, "warpd_rtpengine_requests_total", offers_to_b) == 0
    assert pool.instance_of(call_id) is None
    assert set(pool.states().values()) == {InstanceState.UP}


async def test_no_instance_left_raises_no_rtpengine(
    pool: RtpEnginePool, rtpengine_pair: Pair
) -> None:
    for daemon in rtpengine_pair:
        daemon.stop()
    with pytest.raises(NoRtpEngine):
        await pool.offer(offer(call_id_for(0)))
    assert set(pool.states().values()) == {InstanceState.DOWN}
    with pytest.raises(NoRtpEngine, match="disabled"):
        await pool.offer(offer(call_id_for(1)))  # nothing due for a probe yet


async def test_delete_keeps_the_call_when_its_instance_is_unreachable(
    pool: RtpEnginePool, rtpengine_pair: Pair
) -> None:
    call_id = call_id_for(1)
    await pool.offer(offer(call_id))
    rtpengine_pair[1].stop()
    with pytest.raises(RtpEngineUnavailable):
        await pool.delete(Delete(call_id=call_id))
    assert pool.instance_of(call_id) == "b"


async def test_sticky_entries_expire(rtpengine_pair: Pair) -> None:
    settings = PoolSettings(timeout=0.05, attempts=2, call_ttl=0.05)
    pool = RtpEnginePool(addresses(rtpengine_pair), settings)
    await pool.open()
    try:
        old = call_id_for(0)
        await pool.offer(offer(old))
        await asyncio.sleep(0.1)
        await pool.offer(offer(call_id_for(1)))
    finally:
        pool.close()
    assert pool.instance_of(old) is None


async def test_monitor_takes_instances_down_and_back_up(
    pool: RtpEnginePool, rtpengine_pair: Pair
) -> None:
    # A routine ping does not take an instance out of service while it runs.
    pinging = asyncio.create_task(pool.ping_all())
    for _ in range(2):  # ping_all, then its probes, run up to their awaits
        await asyncio.sleep(0)
    assert pool.metrics.registry.get_sample_value(
        "warpd_rtpengine_requests_total", {"instance": "a", "command": "ping"}
    )
    assert set(pool.states().values()) == {InstanceState.UP}
    assert await pinging == {"a": True, "b": True}
    monitor = asyncio.create_task(pool.monitor())
    try:
        rtpengine_pair[1].stop()
        await wait_for_state(pool, "b", InstanceState.DOWN)
        rtpengine_pair[1].start()
        await wait_for_state(pool, "b", InstanceState.UP)
        assert await pool.ping_all() == {"a": True, "b": True}
    finally:
        monitor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await monitor
    assert sample(pool, "warpd_rtpengine_up", {"instance": "b"}) == 1


def test_pool_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RtpEnginePool([])
    twice = [RtpEngineAddress("a", HOST, 1), RtpEngineAddress("a", HOST, 2)]
    with pytest.raises(ValueError, match="unique"):
        RtpEnginePool(twice)
    with pytest.raises(ValueError, match="weights"):
        RtpEnginePool([RtpEngineAddress("a", HOST, 1, weight=0)])
