"""warpd itself as the system under test: its own process on its embedded PostgreSQL.

The same daemon and CLI an operator runs (``warpd --config FILE run``), with
the embedded, durable PostgreSQL cluster it owns: the one dependency warpd
has, as Jasmin has its RabbitMQ and Redis. The customer account, its SMPP
user and one connector to the bench's carrier simulator are provisioned the
way the demo provisions them, then opened up (throughput, balance) so that
only the carrier's window and delay limit the run.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

from bench.harness.proc import Service, descendants, free_port, wait_tcp
from bench.harness.results import Role, Row
from bench.peers.base import rundir
from bench.peers.simulator import Simulator
from bench.scenarios import common
from bench.scenarios.common import SmppLoad
from warpd.config import parse
from warpd.demo import provision
from warpd.store.embedded import DATABASE, SUPERUSER


class Warpd:
    def __init__(
        self,
        name: str,
        upstream_port: int,
        upstream_credentials: tuple[str, str],
        *,
        binds: int = 2,
        window: int = 100,
    ) -> None:
        self.name = name
        self.upstream_port = upstream_port
        self.upstream_credentials = upstream_credentials
        self.binds, self.window = binds, window
        self.dir = rundir(name).resolve()  # the service runs with its run directory as cwd
        self.smpp_port, self.http_port, self.pg_port = free_port(), free_port(), free_port()
        self.credentials = ("", "")
        self.service: Service | None = None

    def install(self) -> None:
        """Nothing to install: it is this checkout."""

    def _config(self) -> Path:
        path = self.dir / "warpd.toml"
        path.write_text(
            f"[daemon]\nstate_dir = '{self.dir / 'state'}'\nshutdown_timeout = 5.0\n"
            f"[database]\nauto_migrate = true\npool_max = 8\n"
            f"[embedded_postgres]\nport = {self.pg_port}\n"
            f"[http]\nlisten = '127.0.0.1:{self.http_port}'\n"
            f"[smpp]\nlisten = '127.0.0.1:{self.smpp_port}'\nwindow = 1000\n"
            "[log]\nlevel = 'warning'\n[cluster]\ninstance_id = 'bench'\n"
            "[sms]\nreload_interval = 0.5\n"
        )
        return path

    def start(self) -> None:
        config = self._config()
        argv = [sys.executable, "-m", "warpd", "--config", str(config), "run"]
        self.service = Service.start(self.name, argv, self.dir)
        self._wait_ready()
        self.credentials = asyncio.run(self._provision())
        wait_tcp(self.smpp_port, 20, self.name, self.service.process)
        time.sleep(1.5)  # the next catalog reload binds the connector

    def _wait_ready(self) -> None:
        assert self.service is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.service.process.poll() is not None:
                raise RuntimeError(f"warpd exited: {self.service.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("warpd not ready in 60 s")

    def dsn(self) -> str:
        """The embedded cluster's DSN, as warpd.store.EmbeddedPostgres writes it."""
        run = self.dir / "state" / "postgres" / "run"
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={run}&port={self.pg_port}"

    async def _provision(self) -> tuple[str, str]:
        conn = await asyncpg.connect(self.dsn())
        try:
            config = parse(f"[daemon]\nstate_dir = '{self.dir / 'state'}'\n", "bench", {})
            creds = (await provision(conn, config, self.upstream_port))["smpp"]
            await conn.execute(
                "UPDATE smpp_users SET throughput_tps = 100000, burst = 100000, window_size = 200"
            )
            await conn.execute(
                "UPDATE connectors SET binds = $1, window_size = $2, tps = 100000,"
                " system_id = $3, password = $4",
                self.binds,
                self.window,
                *self.upstream_credentials,
            )
            await conn.execute(
                "INSERT INTO ledger (account_id, amount_micros, kind, note)"
                " SELECT id, 1000000000000, 'topup', 'bench' FROM accounts"
            )
        finally:
            await conn.close()
        return creds["system_id"], creds["password"]

    def pids(self) -> list[int]:
        """warpd and its PostgreSQL cluster (postmaster and every backend)."""
        return sorted({p for pids in self.processes().values() for p in pids})

    def processes(self) -> dict[str, list[int]]:
        """By part: warpd's own process, and its PostgreSQL cluster."""
        own = self.service.pids() if self.service else []
        pidfile = self.dir / "state" / "postgres" / "data" / "postmaster.pid"
        try:
            postmaster = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return {"warpd": own}
        postgres = [postmaster, *descendants(postmaster)]
        return {"warpd": [p for p in own if p not in postgres], "postgresql": postgres}

    def stats(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=2) as r:
            return {"metrics": r.read().decode()}

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop(grace=15)


def sms_row(load: SmppLoad, upstream: Simulator) -> Row:
    """Scenario 1's warpd row: the load generator bound to warpd, warpd bound to ``upstream``."""
    warpd = Warpd("warpd-sms", upstream.port, upstream.credentials, binds=2, window=100)
    try:
        warpd.start()
        return common.sms_row(
            "warpd",
            Role.WARPD,
            warpd.smpp_port,
            warpd.credentials,
            load,
            warpd.processes,
            upstream.processes,
        )
    finally:
        warpd.stop()


def pipelining_row(binds: int, window: int, upstream: Simulator, seconds: float) -> Row:
    """Scenario 2's warpd row: one connector of ``binds`` x ``window``, its queue kept full."""
    from bench.scenarios import pipelining

    warpd = Warpd(
        f"warpd-pipe-{binds}x{window}",
        upstream.port,
        upstream.credentials,
        binds=binds,
        window=window,
    )
    theory = binds * window / pipelining.DELAY
    try:
        warpd.start()
        with common.cpu_of(warpd.pids) as cpu:
            sent, span = pipelining.offer(
                warpd.smpp_port, warpd.credentials, upstream, seconds, theory, binds=2, window=500
            )
        return pipelining.measured("warpd", Role.WARPD, sent, span, theory, cpu[0])
    finally:
        warpd.stop()
