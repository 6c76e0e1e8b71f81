"""TimerConfig values (RFC 3261 Table 4) and the Timers deadline set."""

from __future__ import annotations

import pytest

from protocols.sip.timers import TimerConfig, TimerName, Timers


def test_defaults_are_rfc3261_table_4() -> None:
    config = TimerConfig()
    assert (config.t1, config.t2, config.t4) == (0.5, 4.0, 5.0)
    assert config.timeout == 32.0
    assert (config.wait_d(False), config.wait_d(True)) == (32.0, 0.0)
    assert (config.wait_t4(False), config.wait_t4(True)) == (5.0, 0.0)
    assert (config.wait_j(False), config.wait_j(True)) == (32.0, 0.0)


def test_next_interval_caps_at_t2_unless_uncapped() -> None:
    config = TimerConfig()
    assert config.next_interval(0.5) == 1.0
    assert config.next_interval(4.0) == 4.0
    assert config.next_interval(16.0, cap=False) == 32.0


def test_custom_t1_scales_the_64_t1_timers() -> None:
    assert TimerConfig(t1=0.1, t2=1.0).timeout == pytest.approx(6.4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"t1": 0.0},
        {"t1": 5.0, "t2": 4.0},
        {"t4": 0.0},
        {"trying_delay": -1.0},
        {"timer_d": -1.0},
        {"timer_c": 0.0},
    ],
)
def test_bad_configs_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="timer"):
        TimerConfig(**kwargs)


def test_timers_pop_due_in_deadline_order() -> None:
    timers = Timers()
    assert timers.earliest() is None
    assert timers.pop_due(100.0) is None
    timers.start(TimerName.B, 32.0)
    timers.start(TimerName.A, 0.5)
    assert timers.running(TimerName.A)
    assert timers.earliest() == 0.5
    assert timers.pop_due(0.4) is None
    assert timers.pop_due(40.0) is TimerName.A
    assert timers.pop_due(40.0) is TimerName.B
    assert timers.pop_due(40.0) is None
    timers.start(TimerName.G, 1.0)
    timers.stop(TimerName.G, TimerName.H)
    assert timers.earliest() is None
    timers.start(TimerName.H, 1.0)
    timers.clear()
    assert not timers.running(TimerName.H)
