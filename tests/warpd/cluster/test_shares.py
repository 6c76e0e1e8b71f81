"""Limits that hold in total over several instances, each taking its share."""

from __future__ import annotations

import pytest

from warpd.api.auth import ApiKey, KeyStore
from warpd.api.errors import ApiError
from warpd.config.schema import ApiConfig


def key(rate: float, burst: int) -> ApiKey:
    return ApiKey(1, 1, "wk_test", b"", frozenset({"sms:send"}), (), rate, burst, None, False)


def passed(store: KeyStore, k: ApiKey, attempts: int) -> int:
    """How many of ``attempts`` requests pass; the others must be 429s."""
    statuses = []
    for _ in range(attempts):
        try:
            store.charge(k)
            statuses.append(200)
        except ApiError as exc:
            statuses.append(exc.status)
    assert set(statuses) <= {200, 429}
    return statuses.count(200)


@pytest.mark.parametrize(("instances", "allowed"), [(1, 10), (2, 5), (3, 4)])
def test_an_api_key_s_burst_is_shared_by_the_live_instances(instances: int, allowed: int) -> None:
    now = [0.0]
    store = KeyStore(None, ApiConfig(), clock=lambda: now[0])  # type: ignore[arg-type]
    store.instances = lambda: instances
    k = key(rate=10.0, burst=10)
    assert passed(store, k, 20) == allowed
    # And the refill: 10/s in total is 10/instances per second here.
    now[0] += 1.0
    assert passed(store, k, 20) == min(allowed, round(10 / instances))
