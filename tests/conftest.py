"""Suite-wide fixtures: every asyncio test runs on uvloop, as the daemon does."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import pytest
import uvloop
from hypothesis import settings

pytest_plugins = ["tests.fixtures.postgres"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"uvloop": uvloop.new_event_loop}


# Property tests run within the suite's time budget; ``HYPOTHESIS_PROFILE=deep``
# runs them longer by hand.
settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile("deep", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
