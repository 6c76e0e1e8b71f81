"""``warpd cluster status`` through the CLI, against a real database."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from warpd.store.migrate import load_migrations, migrate


async def cli(dsn: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "WARPD_DATABASE_DSN": dsn}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "warpd", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_lists_instances_and_who_holds_each_bind(database_dsn: str) -> None:
    conn = await asyncpg.connect(database_dsn)
    try:
        await migrate(conn, load_migrations())
        await conn.execute(
            "INSERT INTO instances (instance_id, host, pid, version, alive_until) VALUES"
            " ('gw-a', 'vm1', 11, '0.1.0', now() + interval '1 minute'),"
            " ('gw-b', 'vm2', 22, '0.1.0', now() - interval '1 second')"
        )
        connector = await conn.fetchval(
            "INSERT INTO connectors (name, host, port, system_id, password, binds)"
            " VALUES ('sinch', '127.0.0.1', 3601, 'acme', 'pw', 2) RETURNING id"
        )
        await conn.execute(
            "INSERT INTO connector_bind_leases (connector_id, slot, instance_id, leased_until, up)"
            " VALUES ($1, 0, 'gw-a', now() + interval '1 minute', true)",
            connector,
        )
    finally:
        await conn.close()
    code, out, err = await cli(database_dsn, "cluster", "status")
    assert code == 0, err
    assert "gw-a" in out
    assert "alive" in out
    assert "gw-b" in out
    assert "dead" in out
    assert "sinch" in out
    assert "1/2 leased  0: gw-a (up)" in out


async def test_status_on_an_unreachable_database_fails_clearly() -> None:
    code, _, err = await cli("postgresql://nobody@127.0.0.1:1/none", "cluster", "status")
    assert code == 1
    assert "PostgreSQL" in err
