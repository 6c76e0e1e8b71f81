"""The text `warpd route explain` prints: the rules tried, the one chosen, the candidates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from warpd.routing.mt import NoMtRoute, route_mt
from warpd.routing.numbers import region_of
from warpd.routing.table import RoutingTable

_NO_QUALITY: Mapping[int, float] = {}


def explain_mt(
    table: RoutingTable,
    *,
    account_id: int,
    destination: str,
    source: str,
    quality: Mapping[int, float] = _NO_QUALITY,
    turn: int = 0,
    at: datetime | None = None,
    account_name: str | None = None,
) -> str:
    """Why a message from ``account_id`` to ``destination`` (E.164 digits) goes where it goes.

    The network comes from the table's prefix list, as on the acceptance path.
    """
    who = f"account {account_id}" + (f" ({account_name})" if account_name else "")
    hit = table.prefixes.longest(destination)
    mcc_mnc = None if hit is None else hit[1].mcc_mnc
    if hit is None:
        network = "network unknown (no number prefix matches)"
    else:
        prefix, net = hit
        network = f"network {net.mcc_mnc}{' ' + net.name if net.name else ''} by prefix {prefix}"
    lines = [
        f"MT from {who}, sender {source!r}, to {destination}",
        f"  region {region_of(destination) or 'unknown'}, {network}",
    ]
    others = _other_accounts(table, account_id, destination)
    if others:
        lines.append(f"  {others} rule(s) for other accounts match the prefix: not considered")
    try:
        decision = route_mt(
            table, account_id=account_id, destination=destination, source=source,
            mcc_mnc=mcc_mnc, quality=quality, turn=turn, at=at,
        )  # fmt: skip
    except NoMtRoute as exc:
        lines.append("rules tried, in order (priority, longest prefix):")
        lines.extend(f"  {reason}" for reason in exc.reasons or ("none matches the prefix",))
        lines.append("NO ROUTE")
        return "\n".join(lines) + "\n"
    lines.append("rules tried, in order (priority, longest prefix):")
    lines.extend(f"  {reason}" for reason in decision.reasons)
    names = ", ".join(f"{c} ({table.connectors[c].name})" for c in decision.candidates)
    lines.append(f"route {decision.route_id}, {decision.strategy}: candidates in order {names}")
    return "\n".join(lines) + "\n"


def _other_accounts(table: RoutingTable, account_id: int, destination: str) -> int:
    return sum(
        1
        for route in table.mt_routes
        if route.account_id not in (None, account_id) and destination.startswith(route.prefix)
    )
