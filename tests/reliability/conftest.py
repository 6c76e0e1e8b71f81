"""The reliability suite's fixtures: the SMS core's in-process warpd, and the tally's output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.voice.conftest import (  # noqa: F401 (fixtures, shared)
    sipp,
    voice_pool,
    voice_rtpengine,
)
from tests.warpd.sms.conftest import warpd  # noqa: F401 (the fixture, shared)

from .clients import hardened  # noqa: F401 (fixture)
from .tally import TALLY


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The report test reads what the others recorded: it runs after them."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/reliability/test_report.py"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get("WARPD_RELIABILITY_OUT")
    if out:
        TALLY.write(Path(out))
