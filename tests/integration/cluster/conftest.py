"""One cluster for the module: its own database, the carrier simulator, three instance processes.

Starting a warpd process costs seconds of imports on a loaded 2-core box, so
the cases share one cluster and run in file order (the kill comes last); each
case tags its messages and reconciles only those.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.fixtures.postgres import TestServer
from tests.integration.cluster.harness import CONNECTOR_BINDS, Cluster

INSTANCES = ("node-a", "node-b", "node-c")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    pg_server: TestServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    name = f"warpd_cluster_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    directory: Path = tmp_path_factory.mktemp("cluster")
    running = await Cluster.create(pg_server.dsn(name), directory)
    try:
        await running.start(*INSTANCES)
        await running.wait_carrier_binds(CONNECTOR_BINDS, 15)
        yield running
    finally:
        try:
            await running.close()
        finally:
            admin = await asyncpg.connect(pg_server.admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@pytest_asyncio.fixture(loop_scope="module")
async def unbind_after(cluster: Cluster) -> AsyncIterator[None]:
    """Each case's customer binds end with it, passed or failed: a bind left open would
    take the next case's receipts (any bind of the system_id may) and count against the
    user's max_binds."""
    yield
    binds, cluster.binds = cluster.binds, []
    for bind in binds:
        await bind.close()
