"""Simulators on free loopback ports (below the ephemeral range: a test may stop one and
start it again on its port), stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from tests.fixtures.ports import free_port
from warpd.sim import SmscConfig, SmscSimulator

Start = Callable[..., Awaitable[SmscSimulator]]


@pytest_asyncio.fixture
async def start_smsc() -> AsyncIterator[Start]:
    """``await start_smsc(response_delay=...)``: a started simulator, stopped after the test."""
    started: list[SmscSimulator] = []

    async def start(**fields: Any) -> SmscSimulator:
        simulator = SmscSimulator(SmscConfig(port=free_port(), **fields))
        await simulator.start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        await simulator.stop()
