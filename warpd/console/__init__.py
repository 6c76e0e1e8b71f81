"""The web consoles served by warpd: the operator console and the customer portal."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from warpd.api.endpoints import Endpoint
from warpd.console import login, operator, operator_catalog, portal
from warpd.console.app import make_console

PAGES = (*login.PAGES, *operator.PAGES, *operator_catalog.PAGES, *portal.PAGES)


def mount(app: web.Application, routes: Sequence[Endpoint]) -> None:
    """``/console`` (customers) and ``/console/admin`` (operators) inside the API app."""
    make_console(app, routes, PAGES)
