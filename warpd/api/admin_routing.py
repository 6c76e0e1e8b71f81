"""``POST /v1/admin/route/decision``: what the router would do for an account, number and sender.

It asks the same routing table the acceptance path holds (so it answers for
what this instance would do now, not for what the database says), and gives
the rules tried with their reasons, as ``warpd route explain`` prints them.
Nothing is sent or charged.
"""

from __future__ import annotations

from aiohttp import web

from warpd.api.endpoints import MAX_BIGINT, Call, Endpoint
from warpd.api.errors import ApiError
from warpd.api.keys import ACCEPTANCE
from warpd.api.ops import json_response
from warpd.routing.explain import explain_mt
from warpd.routing.mt import NoMtRoute, route_mt
from warpd.routing.numbers import InvalidNumber, normalize_msisdn
from warpd.routing.table import network_of


async def decision(call: Call) -> web.Response:
    acceptance = call.app.get(ACCEPTANCE)
    if acceptance is None:
        raise ApiError(503, "unavailable", "the SMS core is not running on this instance")
    table = acceptance.catalog.routing
    try:
        destination = normalize_msisdn(call.body["destination"].lstrip("+"), 1, 1)
    except InvalidNumber as exc:
        raise ApiError(400, "invalid_destination", str(exc)) from None
    account_id, source = call.body["account_id"], call.body.get("source", "")
    mcc_mnc = network_of(table, destination)
    explanation = explain_mt(table, account_id=account_id, destination=destination, source=source)
    answer = {"account_id": account_id, "destination": destination, "mcc_mnc": mcc_mnc,
              "explain": explanation}  # fmt: skip
    try:
        chosen = route_mt(table, account_id=account_id, destination=destination, source=source,
                          mcc_mnc=mcc_mnc)  # fmt: skip
    except NoMtRoute as exc:
        return json_response({**answer, "routed": False, "reasons": list(exc.reasons)})
    candidates = [{"id": c, "name": table.connectors[c].name} for c in chosen.candidates]
    return json_response({**answer, "routed": True, "route_id": chosen.route_id,
                          "strategy": chosen.strategy, "candidates": candidates,
                          "reasons": list(chosen.reasons)})  # fmt: skip


ENDPOINTS = (
    Endpoint("POST", "/v1/admin/route/decision", decision,
             "What the router would do for an account, destination and sender, and why",
             "admin", "admin",
             body={"type": "object", "additionalProperties": False,
                   "required": ["account_id", "destination"],
                   "properties": {
                       "account_id": {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT},
                       "destination": {"type": "string", "minLength": 1, "maxLength": 32},
                       "source": {"type": "string", "maxLength": 20}}},
             response={"type": "object", "required": ["routed", "reasons"], "properties": {
                 "routed": {"type": "boolean"}, "route_id": {"type": "integer"},
                 "strategy": {"type": "string"},
                 "candidates": {"type": "array", "items": {"type": "object"}},
                 "reasons": {"type": "array", "items": {"type": "string"}},
                 "explain": {"type": "string"}}}),
)  # fmt: skip
