"""Helpers shared by the simulator tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from warpd.sim import EsmeConfig, SmscSimulator


def load_for(simulator: SmscSimulator, **fields: Any) -> EsmeConfig:
    """An EsmeConfig for ``simulator``'s port and credentials, with short timeouts."""
    base = EsmeConfig(
        port=simulator.port,
        system_id=simulator.config.system_id,
        password=simulator.config.password,
        receipt_timeout=2.0,
        response_timeout=2.0,
    )
    return dataclasses.replace(base, **fields)
