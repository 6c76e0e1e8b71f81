"""The admin API's carrier connectors: their rows with the live state of their binds,
enable/disable, and rebind.

Live state and rebind are this instance's: with several instances, each holds
the binds its cluster slots give it (README "Running several instances"), so a
connector may be up here with none of its binds, or run elsewhere only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from warpd.api import audit, catalog
from warpd.api.endpoints import Call, Endpoint, id_param
from warpd.api.errors import ApiError
from warpd.api.keys import CONNECTORS, DATABASE
from warpd.api.ops import json_response
from warpd.smpp.connector import CarrierConnector

# Seconds each bind waits for the carrier's unbind_resp before it closes the socket.
UNBIND_TIMEOUT = 2.0

BINDS: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "this instance's binds of the connector; null when it runs none here",
    "properties": {
        "up": {"type": "boolean"}, "in_flight": {"type": "integer"},
        "binds": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "bind_type": {"type": "string"},
            "health": {"type": "string",
                       "enum": ["connecting", "bound", "backoff", "standby", "stopped"]},
            "in_flight": {"type": "integer"}, "last_error": {"type": "string"}}}},
    },
}  # fmt: skip


def live(running: CarrierConnector | None) -> dict[str, Any] | None:
    if running is None:
        return None
    return {
        "up": running.up,
        "in_flight": running.in_flight,
        "binds": [
            {"index": b.index, "bind_type": b.bind_type, "health": b.health.value,
             "in_flight": b.in_flight, "last_error": b.last_error}
            for b in running.binds
        ],
    }  # fmt: skip


def _running(call: Call, connector_id: int) -> CarrierConnector | None:
    return call.app.get(CONNECTORS, {}).get(connector_id)


async def list_connectors(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await catalog.list_connectors(conn)
    return json_response(
        {"connectors": [{**row, "live": live(_running(call, row["id"]))} for row in rows]}
    )


async def update_connector(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await catalog.set_connector_enabled(
            conn, call.actor, call.params["id"], call.body["enabled"]
        )
    await call.changed()
    return json_response({**row, "live": live(_running(call, row["id"]))})


async def rebind(call: Call) -> web.Response:
    """Drop and re-open the connector's binds here (a carrier asked, or a bind is wedged)."""
    connector_id = call.params["id"]
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await catalog.find_connector(conn, str(connector_id))  # 404 when unknown
        running = _running(call, connector_id)
        if running is None:
            raise ApiError(
                409,
                "connector_not_running",
                f"connector {row['name']} is disabled or runs no binds on this instance",
            )
        dropped = await running.rebind(UNBIND_TIMEOUT)
        await audit.record(conn, call.actor, "connector.rebind", "connector", connector_id,
                           after={"binds_dropped": dropped})  # fmt: skip
    return json_response(
        {"connector_id": connector_id, "binds_dropped": dropped, "live": live(running)},
        status=202,
    )


ENDPOINTS = (
    Endpoint("GET", "/v1/admin/connectors", list_connectors,
             "List connectors, with the live state of this instance's binds", "admin", "admin",
             response={"type": "object", "properties": {"connectors": {
                 "type": "array", "items": {"type": "object", "properties": {"live": BINDS}}}}}),
    Endpoint("PATCH", "/v1/admin/connectors/{id}", update_connector,
             "Enable or disable a connector", "admin", "admin", params=(id_param(),),
             body={"type": "object", "additionalProperties": False, "required": ["enabled"],
                   "properties": {"enabled": {"type": "boolean"}}}),
    Endpoint("POST", "/v1/admin/connectors/{id}/rebind", rebind,
             "Unbind and re-open the connector's binds on this instance", "admin", "admin",
             params=(id_param(),), status=202, extra_errors=(409,),
             response={"type": "object", "properties": {
                 "connector_id": {"type": "integer"}, "binds_dropped": {"type": "integer"},
                 "live": BINDS}}),
)  # fmt: skip
