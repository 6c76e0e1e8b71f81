"""MO routing: a message from a handset to one of our numbers -> the account that owns it.

A number (long code or short code, as E.164 digits or the short code itself)
may be shared between accounts by keyword: "JOIN" to 60000 goes to one
customer, "WIN" to another. So a rule whose keyword equals the message's first
word beats a keyword-less rule for the same number, then priority decides
(lowest first), then the oldest rule.

STOP, START and HELP are the handset user's words to the operator, whoever
owns the number: :func:`opt_out_keyword` recognises them so the MO path can
keep the per-account opt-out list (the CTIA / Ofcom keyword sets).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

from warpd.routing.table import RoutingTable

OptOut = Literal["stop", "start", "help"]

_OPT_OUT: dict[str, OptOut] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "stop"),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "start"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
# Handsets add these: "Stop.", "STOP!", "'stop'".
_EDGE = string.punctuation + "\u00a1\u00bf"


@dataclass(frozen=True, slots=True)
class MoDecision:
    route_id: int
    account_id: int
    deliver_via: str
    webhook_id: int | None


def first_word(text: str) -> str:
    """The first word of ``text`` without surrounding punctuation, upper-cased."""
    words = text.split(None, 1)
    return words[0].strip(_EDGE).upper() if words else ""


def route_mo(table: RoutingTable, *, destination: str, text: str) -> MoDecision | None:
    """The rule for an MO to ``destination`` (our number, digits), or None when none owns it."""
    routes = table.mo_index.get(destination.removeprefix("+"))
    if not routes:
        return None
    word = first_word(text)
    for route in routes:
        if route.keyword is None or route.keyword.upper() == word:
            return MoDecision(route.id, route.account_id, route.deliver_via, route.webhook_id)
    return None


def opt_out_keyword(text: str) -> OptOut | None:
    """The opt-out action ("stop", "start", "help") the first word asks for, in any case."""
    return _OPT_OUT.get(first_word(text))
