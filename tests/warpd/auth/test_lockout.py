"""Lockouts (SMPP binds, SIP digest): pure policy over an explicit clock."""

from __future__ import annotations

from warpd.auth.lockout import Lockout


def test_limit_failures_lock_out_then_the_lock_lapses_and_doubles() -> None:
    lockout = Lockout(limit=3, window=10, base=60, ceiling=200)
    assert not lockout.failed("1.2.3.4", 0)
    assert not lockout.failed("1.2.3.4", 1)
    assert lockout.failed("1.2.3.4", 2)
    assert lockout.locked("1.2.3.4", 61)
    assert not lockout.locked("1.2.3.4", 62)
    assert not lockout.locked("5.6.7.8", 3)  # keys are apart
    for t in (70, 71, 72):
        lockout.failed("1.2.3.4", t)
    assert lockout.locked("1.2.3.4", 72 + 119)  # doubled: 120 s
    assert not lockout.locked("1.2.3.4", 72 + 120)
    for t in (300, 301, 302):
        lockout.failed("1.2.3.4", t)
    assert lockout.locked("1.2.3.4", 302 + 199)  # capped at the ceiling
    assert not lockout.locked("1.2.3.4", 302 + 200)


def test_failures_outside_the_window_do_not_add_up_and_success_forgets() -> None:
    lockout = Lockout(limit=3, window=10)
    assert not lockout.failed("k", 0)
    assert not lockout.failed("k", 5)
    assert not lockout.failed("k", 11)  # the first one is out of the window
    lockout.succeeded("k")
    assert not lockout.failed("k", 12)
    assert not lockout.failed("k", 13)
    assert lockout.failed("k", 14)


def test_idle_keys_are_forgotten() -> None:
    lockout = Lockout(limit=2, window=10, base=5)
    lockout.failed("a", 0)
    lockout.failed("b", 0)
    lockout.failed("b", 1)  # locked until 6
    lockout.forget_idle(5)
    assert lockout.locked("b", 5)
    lockout.forget_idle(20)
    assert not lockout._records
