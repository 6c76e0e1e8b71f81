"""MO rules (number, keyword, priority) and the STOP/START/HELP keywords."""

from __future__ import annotations

import pytest

from warpd.routing.mo import MoDecision, first_word, opt_out_keyword, route_mo
from warpd.routing.table import RoutingTable

from .builders import mo, table

SHORT = "60000"
LONG = "447400123456"

T = table(
    mo_routes=[
        mo(1, SHORT, 10),
        mo(2, SHORT, 20, keyword="join"),
        mo(3, SHORT, 30, keyword="JOIN", priority=5),
        mo(4, SHORT, 40, keyword="win", priority=500, webhook=9),
        mo(5, LONG, 50, priority=20),
        mo(6, LONG, 60, priority=10),
        mo(7, "70000", 70, keyword="only"),
    ]
)


def rid(destination: str, text: str) -> int | None:
    decision = route_mo(T, destination=destination, text=text)
    return None if decision is None else decision.route_id


def test_keyword_routes_beat_keyword_less_then_priority() -> None:
    assert route_mo(T, destination=SHORT, text="join now") == MoDecision(3, 30, "smpp", None)
    assert route_mo(T, destination=SHORT, text="  Join!") == MoDecision(3, 30, "smpp", None)
    # A keyword route with a worse priority still beats the keyword-less one.
    assert route_mo(T, destination=SHORT, text="WIN a prize") == MoDecision(4, 40, "webhook", 9)
    assert rid(SHORT, "hello") == 1
    assert rid(SHORT, "") == 1
    # Keywords are whole first words.
    assert rid(SHORT, "joined") == 1


def test_number_is_an_exact_match() -> None:
    assert rid(LONG, "hi") == 6
    assert rid("+" + LONG, "hi") == 6
    assert route_mo(T, destination=LONG + "1", text="hi") is None
    assert route_mo(T, destination="6000", text="hi") is None
    assert route_mo(RoutingTable(), destination=SHORT, text="hi") is None


def test_a_number_with_only_keyword_rules_routes_nothing_else() -> None:
    assert rid("70000", "only me") == 7
    assert route_mo(T, destination="70000", text="other") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        ("  Stop. please", "stop"),
        ("STOPALL", "stop"),
        ("unsubscribe", "stop"),
        ("Cancel", "stop"),
        ("END", "stop"),
        ("quit!", "stop"),
        ("START", "start"),
        ("unstop", "start"),
        ("Yes", "start"),
        ("HELP", "help"),
        ("info?", "help"),
        ("\tHELP\n", "help"),
        ("please stop", None),
        ("STOPPED", None),
        ("", None),
        ("   ", None),
        ("¡", None),
    ],
)
def test_opt_out_keyword(text: str, expected: str | None) -> None:
    assert opt_out_keyword(text) == expected


def test_first_word() -> None:
    assert first_word("  'stop' now") == "STOP"
    assert first_word("") == ""
