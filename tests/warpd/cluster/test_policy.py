"""What instances share, as pure policy."""

from __future__ import annotations

from warpd.cluster.policy import fair_share, surplus, throughput_share


def test_fair_share_uses_every_slot() -> None:
    assert fair_share(2, 1) == 2
    assert fair_share(2, 2) == 1
    assert fair_share(3, 2) == 2
    assert fair_share(2, 3) == 1
    assert fair_share(4, 0) == 4  # no view yet: as if alone


def test_surplus_only_when_another_live_instance_is_short() -> None:
    live = frozenset({"a", "b"})
    # a holds both of two binds and b none: one goes to b.
    assert surplus(2, 2, {"a": 2}, live, "a")
    # b already has its share: nothing to give.
    assert not surplus(3, 2, {"a": 2, "b": 1}, live, "a")
    # alone: keep everything.
    assert not surplus(2, 2, {"a": 2}, frozenset({"a"}), "a")
    # not over the share.
    assert not surplus(2, 1, {"a": 1}, live, "a")
    # three instances, two binds: a keeps one, c gets the other.
    assert surplus(2, 2, {"a": 2}, frozenset({"a", "b", "c"}), "a")
    assert not surplus(2, 1, {"a": 1, "b": 1}, frozenset({"a", "b", "c"}), "a")


def test_throughput_share_by_binds() -> None:
    assert throughput_share(1, 0) == 1.0
    assert throughput_share(1, 1) == 0.5
    assert throughput_share(1, 3) == 0.25
    assert throughput_share(0, 5) == 1.0  # no bind here: nothing to divide
