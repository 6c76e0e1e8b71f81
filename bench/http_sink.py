"""The HTTP limit: a bare aiohttp handler that answers every request 202 with a JSON id.

Run: ``python -m bench.http_sink --port 18080``

No validation, no storage: what aiohttp on uvloop costs per request by
itself, the ceiling any aiohttp-based send API (warpd's) works under.
"""

from __future__ import annotations

import argparse
import itertools

import uvloop
from aiohttp import web

_IDS = itertools.count(1)


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"id": next(_IDS)}, status=202)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", accept)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
