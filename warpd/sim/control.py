"""The simulator's control port: a small aiohttp app the fault suite and bench/ drive.

* ``POST /mode`` ``{"mode": "throttle", "fraction": 0.5, "duration": 2}`` (carrier.Mode's fields;
  ``status`` may be a name such as ``"ESME_RINVDSTADR"``)
* ``GET /mode``
* ``POST /mo`` ``{"source", "destination", "text", "data_coding": 0, "wait": false,
  "timeout": 5}``: with ``wait``, answers once every part is acknowledged (504 if not in time)
* ``POST /receipt-for-unknown`` ``{"stat": "DELIVRD", "source", "destination"}`` -> ``{"id"}``
* ``GET /stats``
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from aiohttp import web

from protocols.smpp.errors import SmppError
from warpd.sim.carrier import Mode, mode_from_json
from warpd.sim.smsc import SmscSimulator

SIMULATOR = web.AppKey("simulator", SmscSimulator)


def _mode_json(mode: Mode) -> dict[str, Any]:
    data = asdict(mode)
    data["mode"] = data.pop("kind").value
    return data


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "the body must be JSON"}', content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text='{"error": "the body must be a JSON object"}', content_type="application/json"
        )
    return data


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


async def post_mode(request: web.Request) -> web.Response:
    try:
        mode = mode_from_json(await _body(request))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    request.app[SIMULATOR].set_mode(mode)
    return web.json_response(_mode_json(mode))


async def get_mode(request: web.Request) -> web.Response:
    return web.json_response(_mode_json(request.app[SIMULATOR].mode))


async def post_mo(request: web.Request) -> web.Response:
    data = await _body(request)
    try:
        source, destination, text = (str(data[key]) for key in ("source", "destination", "text"))
        data_coding = int(data.get("data_coding", 0))
        timeout = float(data.get("timeout", 5.0))
    except (KeyError, ValueError, TypeError):
        return _bad("source, destination and text are required; data_coding is a number")
    try:
        futures = request.app[SIMULATOR].queue_mo(source, destination, text, data_coding)
    except (ValueError, SmppError) as exc:
        return _bad(str(exc))
    if data.get("wait"):
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout)
        except TimeoutError:
            return web.json_response({"error": "not acknowledged in time"}, status=504)
        except SmppError as exc:
            return web.json_response({"error": str(exc)}, status=502)
    return web.json_response({"parts": len(futures)})


async def post_receipt_for_unknown(request: web.Request) -> web.Response:
    data = await _body(request)
    try:
        message_id = request.app[SIMULATOR].send_receipt_for_unknown(
            str(data.get("stat", "DELIVRD")),
            str(data.get("source", "WARPD")),
            str(data.get("destination", "447700900001")),
        )
    except ValueError as exc:
        return _bad(str(exc))
    return web.json_response({"id": message_id})


async def get_stats(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    return web.json_response({**simulator.stats.snapshot(), "mode": simulator.mode.kind.value})


def make_app(simulator: SmscSimulator) -> web.Application:
    app = web.Application()
    app[SIMULATOR] = simulator
    app.router.add_post("/mode", post_mode)
    app.router.add_get("/mode", get_mode)
    app.router.add_post("/mo", post_mo)
    app.router.add_post("/receipt-for-unknown", post_receipt_for_unknown)
    app.router.add_get("/stats", get_stats)
    return app


class ControlServer:
    """The control app on ``host:port`` (port 0: any free port, see ``port``)."""

    def __init__(self, simulator: SmscSimulator, host: str, port: int) -> None:
        self._runner = web.AppRunner(make_app(simulator), access_log=None, handle_signals=False)
        self._host = host
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()
