"""The consoles' pure parts: lockout, login throttle, tariff preview, dashboard figures."""

from __future__ import annotations

import datetime as dt

from warpd.api.tariff_csv import Tariff
from warpd.console.app import _money
from warpd.console.live import snapshot
from warpd.console.login import _safe_next
from warpd.console.tariff_preview import preview
from warpd.console.users import LOCKOUT, MAX_FAILURES, LoginThrottle, after_failure, locked

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def test_the_fifth_failure_locks_for_the_lockout_time() -> None:
    lock = after_failure(0, NOW)
    assert (lock.failed, lock.until) == (1, None)
    lock = after_failure(MAX_FAILURES - 1, NOW)
    assert lock.until == NOW + LOCKOUT
    assert locked(lock.until, NOW + LOCKOUT - dt.timedelta(seconds=1))
    assert not locked(lock.until, NOW + LOCKOUT)
    assert not locked(None, NOW)


def test_the_login_throttle_allows_a_burst_then_one_a_second_per_address() -> None:
    clock = [0.0]
    throttle = LoginThrottle(clock=lambda: clock[0])
    assert all(throttle.allow("10.0.0.1") == 0.0 for _ in range(20))
    assert throttle.allow("10.0.0.1") > 0
    assert throttle.allow("10.0.0.2") == 0.0  # another address has its own bucket
    clock[0] = 1.0
    assert throttle.allow("10.0.0.1") == 0.0


def test_a_tariff_preview_says_what_is_added_changed_and_removed() -> None:
    old = [Tariff("44", None, 10_000, None), Tariff("33", None, 20_000, None),
           Tariff("1", None, 5_000, None)]  # fmt: skip
    new = [Tariff("44", None, 15_000, None), Tariff("49", None, 30_000, None),
           Tariff("1", None, 5_000, None)]  # fmt: skip
    result = preview(old, new, replace=True)
    assert [(c.prefix, c.new_micros) for c in result.added] == [("49", 30_000)]
    assert [(c.prefix, c.old_micros, c.new_micros) for c in result.changed] == [
        ("44", 10_000, 15_000)
    ]
    assert [c.prefix for c in result.removed] == ["33"]
    assert result.unchanged == 1
    assert preview(old, new, replace=False).removed == ()


def test_money_is_exact_in_major_units() -> None:
    assert [_money(m) for m in (0, 5_000, 1_000_000, -1_500_000, 123_456_789)] == [
        "0", "0.005", "1", "-1.5", "123.456789"]  # fmt: skip
    assert _money(None) == ""


def _sample(accepted: float, sent: float, delivered: float, failed: float) -> dict:
    acc = (("account", "demo"), ("channel", "smpp"))
    return {
        ("warpd_sms_accepted_total", acc): accepted,
        ("warpd_sms_upstream_responses_total", (("connector", "sim"), ("status", "ok"))): sent,
        ("warpd_sms_upstream_responses_total", (("connector", "sim"), ("status", "0x58"))): 2.0,
        ("warpd_sms_receipts_total", (("connector", "sim"), ("state", "delivered"))): delivered,
        ("warpd_sms_receipts_total", (("connector", "sim"), ("state", "undeliverable"))): failed,
        ("warpd_smpp_connector_binds", (("connector", "sim"), ("state", "bound"))): 2.0,
        ("warpd_sms_queue_depth", (("connector", "sim"),)): 7.0,
        ("warpd_voice_active_calls", ()): 3.0,
    }


def test_the_dashboard_rates_come_from_two_samples() -> None:
    view = snapshot(_sample(150, 140, 90, 10), _sample(50, 40, 0, 0), 2.0, {"depth": 7})
    assert view["accounts"]["demo"]["in_per_s"] == 50.0
    sim = view["connectors"]["sim"]
    assert sim["out_per_s"] == 50.0
    assert sim["receipts_per_s"] == 50.0
    assert sim["delivery_ratio"] == 0.9
    assert (sim["queue"], sim["binds_up"]) == (7, 2)
    assert view["errors"] == {"upstream 0x58": 2}
    assert view["voice"]["active_calls"] == 3
    # A counter that restarted (went down) counts from zero rather than going negative.
    assert snapshot(_sample(10, 0, 0, 0), _sample(50, 0, 0, 0), 1.0, {})["totals"]["in_per_s"] == 10


def test_after_login_only_a_console_path_is_followed() -> None:
    assert _safe_next("/console/admin/audit") == "/console/admin/audit"
    for hostile in ("https://evil.example/", "//evil.example/console", "/v1/admin/keys", ""):
        assert _safe_next(hostile) == ""
