"""warpd itself as the system under test: its own process on its embedded PostgreSQL.

The same daemon and CLI an operator runs (``warpd --config FILE run``), with
the embedded, durable PostgreSQL cluster it owns: the one dependency warpd
has, as Jasmin has its RabbitMQ and Redis. The customer account, its SMPP
user and one connector to the bench's carrier simulator are provisioned the
way the demo provisions them, then opened up (throughput, balance) so that
only the carrier's window and delay limit the run. An API key on the same
account (no rate limit to speak of) serves the HTTP send row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.harness.proc import Service, descendants, free_port, wait_tcp
from bench.harness.results import Role, Row
from bench.peers.base import rundir
from bench.peers.simulator import Simulator
from bench.scenarios import common
from bench.scenarios.common import SmppLoad
from warpd.api import credentials
from warpd.config import parse
from warpd.demo import ACCOUNT, provision
from warpd.store.embedded import DATABASE, SUPERUSER
from warpd.voice.demo import provision_voice


@dataclass(frozen=True, slots=True)
class Voice:
    """What warpd's B2BUA needs from the bench: the SIPp UAS it calls, the RTPEngine."""

    uas_port: int
    ng_port: int
    #: the number SIPp's UAC dials (``-s``): a UK number on the demo trunk
    number: str = "442079460000"


class Warpd:
    def __init__(
        self,
        name: str,
        upstream_port: int,
        upstream_credentials: tuple[str, str],
        *,
        binds: int = 2,
        window: int = 100,
        max_binds: int = 8,
        voice: Voice | None = None,
    ) -> None:
        self.name = name
        self.upstream_port = upstream_port
        self.upstream_credentials = upstream_credentials
        self.binds, self.window, self.max_binds = binds, window, max_binds
        self.voice = voice
        self.dir = rundir(name).resolve()  # the service runs with its run directory as cwd
        self.smpp_port, self.http_port, self.pg_port = free_port(), free_port(), free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.credentials = ("", "")
        self.api_key = ""
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
            + (self._voice_config(self.voice) if self.voice else "")
        )
        return path

    def _voice_config(self, voice: Voice) -> str:
        # The bench's RTPEngine (the one Kamailio's row uses), not an embedded one;
        # no per-source datagram limit: every SIPp call comes from 127.0.0.1.
        return (
            f"[sip]\nenabled = true\nlisten = '127.0.0.1:{self.sip_port}'\ntcp_listen = ''\n"
            "reload_interval = 0.5\noptions_interval = 0.0\nsource_rate = 0.0\n"
            f"[rtpengine]\nembedded = false\ninstances = ['127.0.0.1:{voice.ng_port}']\n"
        )

    def start(self) -> None:
        # A fresh cluster each start: a run measures this checkout's schema and
        # nothing a previous run left behind.
        shutil.rmtree(self.dir / "state", ignore_errors=True)
        config = self._config()
        argv = [sys.executable, "-m", "warpd", "--config", str(config), "run"]
        self.service = Service.start(self.name, argv, self.dir)
        self._wait_ready()
        self.credentials, self.api_key = asyncio.run(self._provision())
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

    async def _provision(self) -> tuple[tuple[str, str], str]:
        conn = await asyncpg.connect(self.dsn())
        try:
            config = parse(f"[daemon]\nstate_dir = '{self.dir / 'state'}'\n", "bench", {})
            creds = (await provision(conn, config, self.upstream_port))["smpp"]
            await conn.execute(
                "UPDATE smpp_users SET throughput_tps = 100000, burst = 100000, window_size = 200,"
                " max_binds = $1",
                self.max_binds,
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
            account = await conn.fetchval("SELECT id FROM accounts WHERE name = $1", ACCOUNT)
            key = await credentials.create_key(
                conn, "bench", account, name="bench", rate_per_s=1_000_000, burst=1_000_000
            )
            if self.voice is not None:
                await self._provision_voice(conn, account, self.voice)
        finally:
            await conn.close()
        return (creds["system_id"], creds["password"]), key["key"]

    async def _provision_voice(self, conn: asyncpg.Connection, account: int, voice: Voice) -> None:
        """The demo's trunk for 127.0.0.1 and its gateway, moved to the bench's SIPp UAS
        and opened up (channels, calls/s) so that only warpd limits the calls."""
        await provision_voice(conn, account, f"127.0.0.1:{self.sip_port}")
        await conn.execute("UPDATE carrier_gateways SET port = $1", voice.uas_port)
        await conn.execute("UPDATE sip_trunks SET max_channels = 100000, max_cps = 100000")

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

    def http_accepted(self) -> int:
        """The 202s warpd answered on ``POST /v1/sms`` so far (its own request counter)."""
        text = str(self.stats()["metrics"])
        found = re.search(r'^warpd_http_requests_total\{route="/v1/sms",status="202"\} (\S+)$',
                          text, re.MULTILINE)  # fmt: skip
        return int(float(found[1])) if found else 0

    async def _persisted(self) -> tuple[int, int]:
        """HTTP messages in PostgreSQL, and those of them charged in the ledger."""
        conn = await asyncpg.connect(self.dsn())
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS rows, count(l.id) AS charged FROM messages m"
                " LEFT JOIN ledger l ON l.message_id = m.id AND l.kind = 'sms_charge'"
                " WHERE m.channel = 'http'"
            )
        finally:
            await conn.close()
        assert row is not None
        return row["rows"], row["charged"]

    def ledger(self, settle: float = 60.0) -> dict[str, dict[str, int]]:
        """By channel (smpp, http): messages in PostgreSQL, charged in the ledger, final,
        delivered (receipted by the carrier), and receipts taken by the customer's bind;
        read once nothing is queued or in flight upstream, or after ``settle`` seconds."""
        return asyncio.run(self._ledger(settle))

    async def _ledger(self, settle: float) -> dict[str, dict[str, int]]:
        conn = await asyncpg.connect(self.dsn())
        try:
            deadline = time.monotonic() + settle
            # Another process's work: polling its table is the only way to see it settle.
            while time.monotonic() < deadline and await conn.fetchval(  # noqa: ASYNC110
                "SELECT count(*) FROM messages WHERE state IN ('queued', 'submitted')"
            ):
                await asyncio.sleep(0.5)
            rows = await conn.fetch(
                "SELECT m.channel, count(*) AS rows, count(l.message_id) AS charged,"
                " count(*) FILTER (WHERE m.state NOT IN ('queued', 'submitted')) AS final,"
                " count(*) FILTER (WHERE m.state = 'delivered') AS delivered,"
                " count(d.message_id) AS receipts_taken"
                " FROM messages m"
                " LEFT JOIN (SELECT DISTINCT message_id FROM ledger WHERE kind = 'sms_charge') l"
                "  ON l.message_id = m.id"
                " LEFT JOIN (SELECT DISTINCT message_id FROM deliveries"
                "  WHERE kind = 'dlr' AND via = 'smpp' AND state = 'delivered') d"
                "  ON d.message_id = m.id"
                " GROUP BY m.channel"
            )
        finally:
            await conn.close()
        return {row["channel"]: {k: int(v) for k, v in row.items() if k != "channel"}
                for row in rows}  # fmt: skip

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
        sent, span, parts = pipelining.offer_counted(
            warpd.smpp_port,
            warpd.credentials,
            upstream,
            seconds,
            theory,
            warpd.processes,
            binds=2,
            window=500,
        )
        return pipelining.measured(
            "warpd", Role.WARPD, sent, span, theory, sum(parts.values()), parts
        )
    finally:
        warpd.stop()


def binds_row(binds: int, upstream: Simulator) -> Row:
    """Scenario 5's bind row: PSS growth of warpd's own process (its PostgreSQL holds
    nothing per bind) while the load generator holds ``binds`` idle binds."""
    from bench.scenarios import memory

    warpd = Warpd("warpd-mem-binds", upstream.port, upstream.credentials, max_binds=binds + 10)
    try:
        warpd.start()
        return memory.hold_binds(
            "warpd", Role.WARPD, warpd.smpp_port, warpd.credentials, binds,
            lambda: warpd.processes()["warpd"],
        )  # fmt: skip
    finally:
        warpd.stop()


HTTP_BODY = '{"to": "+447700900123", "from": "Bench", "text": "Your code is 493817"}'


def http_row(system: str, concurrency: int, seconds: float, upstream: Simulator) -> Row:
    """Scenario 3's warpd row: ``POST /v1/sms`` at ``concurrency``; every 202 must be a row
    in PostgreSQL and charged in the ledger, or the row fails. Counted as differences:
    the run directory, and so the cluster, outlives one run."""
    from bench.scenarios import http

    warpd = Warpd("warpd-http", upstream.port, upstream.credentials, binds=2, window=100)
    try:
        warpd.start()
        before = asyncio.run(warpd._persisted())
        row = http.load(
            system,
            Role.WARPD,
            f"http://127.0.0.1:{warpd.http_port}/v1/sms",
            "POST",
            HTTP_BODY,
            {"Authorization": f"Bearer {warpd.api_key}", "Content-Type": "application/json"},
            concurrency,
            seconds,
            warpd.processes,
        )
        accepted = warpd.http_accepted()
        after = asyncio.run(warpd._persisted())
        rows, charged = after[0] - before[0], after[1] - before[1]
        if not rows == charged == accepted:
            raise RuntimeError(f"{accepted} answered 202, {rows} rows, {charged} charged")
        return dataclasses.replace(
            row, note=f"{row.note}; {accepted} accepted = rows = charged in PostgreSQL"
        )
    finally:
        warpd.stop()
