"""Voice routing, pure: which carrier gateways a call tries, in which order.

The route is the enabled ``voice_routes`` row with the lowest priority whose
prefix starts the E.164 number and whose account is the caller's or any;
among equal priorities the longest prefix, then an account-specific route,
wins. Its gateways are tried in ``position`` order (failover), rotated by a
per-route counter (round_robin), or by the carrier's price for the number
(least_cost, ``voice_costs``; a gateway without a price goes last). Gateways
marked down by OPTIONS probing are skipped while another one is up.
"""

from __future__ import annotations

from collections.abc import Collection

from warpd.voice.rating import best_rate
from warpd.voice.trunks import Directory, Gateway, VoiceRoute


def find_route(directory: Directory, account_id: int, e164: str) -> VoiceRoute | None:
    best: VoiceRoute | None = None
    for route in directory.routes:
        if route.account_id not in (None, account_id) or not e164.startswith(route.prefix):
            continue
        if best is None or _rank(route) < _rank(best):
            best = route
    return best


def _rank(route: VoiceRoute) -> tuple[int, int, int]:
    return (route.priority, -len(route.prefix), 0 if route.account_id is not None else 1)


def gateways_for(
    directory: Directory,
    route: VoiceRoute,
    e164: str,
    *,
    turn: int = 0,
    down: Collection[int] = (),
) -> list[Gateway]:
    """The gateways to try, in order; ``turn`` drives round-robin rotation."""
    gateways = [directory.gateways[g] for g in route.gateway_ids if g in directory.gateways]
    if route.strategy == "round_robin" and gateways:
        start = turn % len(gateways)
        gateways = gateways[start:] + gateways[:start]
    elif route.strategy == "least_cost":
        gateways.sort(key=lambda gw: _cost(directory, gw, e164))
    up = [gw for gw in gateways if gw.id not in down]
    return up or gateways


def _cost(directory: Directory, gateway: Gateway, e164: str) -> tuple[int, int]:
    rate = best_rate(directory.costs.get(gateway.id, ()), e164)
    return (1, 0) if rate is None else (0, rate.per_min_micros)
