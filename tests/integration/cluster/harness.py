"""Several warpd instances as processes on one PostgreSQL, one carrier simulator between them.

Each instance is ``python -m warpd --config X run`` (what a production host
runs) with its own instance_id, SMPP and HTTP ports, state_dir and log. The
carrier is the SMSC simulator in the test's own process, so its counters
(binds open at once per system_id) are read directly; its JSON-lines log
records every submit_sm it answered. The database is provisioned (migrations,
the demo's account, user, connector and route) before any instance starts,
so the instances never race to migrate.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from tests.fixtures.ports import free_port
from tests.integration.cluster.customer import CustomerBind
from warpd.auth.passwords import hash_password
from warpd.cli import main as cli_main
from warpd.config import parse
from warpd.demo import provision
from warpd.sim import SmscConfig, SmscSimulator
from warpd.store.migrate import load_migrations, migrate

ROOT = Path(__file__).resolve().parents[3]
LEASE_SECONDS = 5.0  # the schema's minimum: takeovers come quickly
HEARTBEAT_SECONDS = 0.5
CONNECTOR_BINDS = 2  # Sinch's limit per system_id
SIM_SYSTEM_ID = "sim"
# From a kill to the takeover: the lease, a heartbeat or two to notice, a poll.
TAKEOVER_WITHIN = LEASE_SECONDS + 7.0


async def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``check`` (cheap, local) until it holds; fail naming ``what`` after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while not check():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds:.0f} s: {what}") from None


@dataclass
class Instance:
    name: str
    directory: Path
    smpp_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / "warpd.toml"

    @property
    def log(self) -> Path:
        return self.directory / "warpd.log"

    def start(self) -> None:
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "warpd", "--config", str(self.config), "run"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_listening(self, seconds: float = 90.0) -> None:
        """Until the SMPP listener accepts (imports alone take seconds on a loaded box)."""
        assert self.process is not None
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"instance {self.name} exited with {process.returncode} during start:\n"
                    + self.tail()
                )
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.smpp_port)) == 0

        await until(listening, seconds, f"instance {self.name} listening on {self.smpp_port}")

    def kill(self) -> None:
        """SIGKILL: no unbind, no lease handed back, claims left to lapse."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    async def stop(self, seconds: float = 15.0) -> int | None:
        """SIGTERM and wait for the exit code (SIGKILL after ``seconds``); None if never run."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await until(lambda: process.poll() is not None, seconds, f"{self.name} stopped")
            except AssertionError:
                process.kill()
                process.wait(5)
        return process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def problems(self) -> list[str]:
        """Log lines at error level or worse, or tracebacks (for assertion messages)."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for line in self.log.read_text(errors="replace").splitlines():
                low = line.lower()
                if '"level":"error"' in low or '"level":"critical"' in low or "traceback" in low:
                    found.append(line[:400])
        return found

    def carrier_binds(self, simulator_port: int) -> int:
        """Established TCP connections this process holds to the carrier (from /proc)."""
        if not self.alive:
            return 0
        assert self.process is not None
        return len(_inodes_to(simulator_port) & _socket_inodes(self.process.pid))


def _inodes_to(remote_port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "01" and int(cols[2].rsplit(":", 1)[1], 16) == remote_port:
                    inodes.add(cols[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    return inodes


@dataclass
class Cluster:
    dsn: str
    directory: Path
    simulator: SmscSimulator
    system_id: str = ""
    password: str = ""
    instances: dict[str, Instance] = field(default_factory=dict)
    binds: list[CustomerBind] = field(default_factory=list)
    closed: bool = False

    @property
    def simulator_log(self) -> Path:
        return self.directory / "carrier.jsonl"

    @classmethod
    async def create(cls, dsn: str, directory: Path) -> Cluster:
        simulator = SmscSimulator(
            SmscConfig(
                port=0, system_id=SIM_SYSTEM_ID, password=SIM_SYSTEM_ID,
                response_delay=0.02, receipt_delay=0.1, log=directory / "carrier.jsonl",
            )
        )  # fmt: skip
        await simulator.start()
        cluster = cls(dsn, directory, simulator)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, load_migrations())
            config = parse(f"[daemon]\nstate_dir = '{directory}'\n", "cluster", {})
            creds = (await provision(conn, config, simulator.port))["smpp"]
            await conn.execute("UPDATE connectors SET binds = $1", CONNECTOR_BINDS)
        finally:
            await conn.close()
        cluster.system_id, cluster.password = creds["system_id"], creds["password"]
        return cluster

    async def start(self, *names: str) -> list[Instance]:
        """Start instances (concurrently) and wait until each accepts SMPP."""
        started = []
        for name in names:
            directory = self.directory / name
            directory.mkdir(parents=True, exist_ok=True)
            instance = Instance(name, directory, free_port(), free_port())
            instance.config.write_text(
                f"[database]\ndsn = '{self.dsn}'\npool_min = 1\npool_max = 4\n"
                f"[daemon]\nstate_dir = '{directory}'\nshutdown_timeout = 2.0\n"
                f"[http]\nlisten = '127.0.0.1:{instance.http_port}'\n"
                f"[smpp]\nlisten = '127.0.0.1:{instance.smpp_port}'\n"
                f"[sms]\nreload_interval = 0.5\n"
                f"[cluster]\ninstance_id = '{name}'\nlease_seconds = {LEASE_SECONDS}\n"
                f"heartbeat_seconds = {HEARTBEAT_SECONDS}\n"
                "[log]\nlevel = 'info'\nformat = 'json'\n"
            )
            instance.start()
            self.instances[name] = instance
            started.append(instance)
        await asyncio.gather(*(i.wait_listening() for i in started))
        return started

    def carrier_bound(self) -> int:
        return self.simulator.stats.bound_now[SIM_SYSTEM_ID]

    def max_carrier_binds(self) -> int:
        return self.simulator.stats.max_concurrent_binds[SIM_SYSTEM_ID]

    async def wait_carrier_binds(self, count: int, seconds: float) -> None:
        await until(
            lambda: self.carrier_bound() == count,
            seconds,
            f"{count} carrier binds (now {self.carrier_bound()}); logs:\n{self.tails()}",
        )

    async def bind(self, name: str, instance: str, kind: str = "trx") -> CustomerBind:
        port = self.instances[instance].smpp_port
        bind = await CustomerBind.open(name, port, kind, self.system_id, self.password)
        self.binds.append(bind)
        return bind

    def receipts(self) -> Counter[str]:
        """Receipts the customer received, over all its binds, by our message id."""
        total: Counter[str] = Counter()
        for bind in self.binds:
            total.update(bind.receipts)
        return total

    async def wait_receipts(self, ids: Iterable[str], seconds: float) -> None:
        """Until every id in ``ids`` has a receipt at some bind of the customer; else fail
        with where the missing ones stand in PostgreSQL (the message, its receipt's delivery)."""
        wanted = set(ids)
        try:
            await until(lambda: wanted <= self.receipts().keys(), seconds, "receipts")
        except AssertionError:
            raise AssertionError(await self._why_no_receipt(wanted, seconds)) from None

    async def _why_no_receipt(self, wanted: set[str], seconds: float) -> str:
        """Where the messages without a receipt stand: in PostgreSQL (the message, its
        receipt's delivery, a receipt parked for want of its carrier id) and at the carrier."""
        missing = sorted(wanted - self.receipts().keys())
        rows = await self.query(
            "SELECT m.state, m.claimed_by, d.state AS delivery, d.claimed_by AS delivery_by,"
            " count(*) FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id"
            " WHERE m.id = any($1::uuid[]) GROUP BY 1, 2, 3, 4",
            missing,
        )
        carrier_ids = {
            r[0]
            for r in await self.query(
                "SELECT carrier_message_id FROM message_parts WHERE message_id = any($1::uuid[])",
                missing,
            )
        }
        parked = await self.query(
            "SELECT count(*) FROM pending_receipts WHERE carrier_message_id = any($1::text[])",
            list(carrier_ids),
        )
        receipted = {e["id"] for e in self._carrier_log() if e.get("kind") == "receipt"}
        stats = self.simulator.stats
        return (
            f"no receipt within {seconds:.0f} s for {len(missing)} of {len(wanted)} messages;"
            f" by (message state, claimed by, delivery state, claimed by):"
            f" {[dict(r) for r in rows]}; their carrier ids: {len(carrier_ids)}, receipted by"
            f" the carrier {len(carrier_ids & receipted)}, parked in pending_receipts"
            f" {parked[0][0]}; carrier receipts sent {stats.receipts_sent} acked"
            f" {stats.receipts_acked} resent {stats.receipts_resent}; carrier binds"
            f" {self.holders()}\n{self.tails()}"
        )

    async def add_customer(self, name: str, balance_micros: int) -> tuple[str, str]:
        """An account on the demo's rate plan with ``balance_micros``, and its SMPP user;
        returns (system_id, password) once an instance accepts the bind (catalog reload)."""
        password = "secret12"  # SMPP passwords are at most 8 octets
        conn = await asyncpg.connect(self.dsn)
        try:
            async with conn.transaction():
                account = await conn.fetchval(
                    "INSERT INTO accounts (name, currency, rate_plan_id)"
                    " SELECT $1, 'EUR', rate_plan_id FROM accounts ORDER BY id LIMIT 1"
                    " RETURNING id",
                    name,
                )
                await conn.execute(
                    "INSERT INTO ledger (account_id, amount_micros, kind, note)"
                    " VALUES ($1, $2, 'topup', 'cluster test')",
                    account,
                    balance_micros,
                )
                await conn.execute(
                    "INSERT INTO smpp_users (account_id, system_id, password_hash, throughput_tps,"
                    " burst, window_size) VALUES ($1, $2, $3, 10000, 20000, 100)",
                    account,
                    name,
                    hash_password(password),
                )
        finally:
            await conn.close()
        return name, password

    async def bind_as(
        self, name: str, instance: str, system_id: str, password: str, seconds: float = 5.0
    ) -> CustomerBind:
        """Bind as another user, retrying while the instance has not reloaded its catalog."""
        port = self.instances[instance].smpp_port
        async with asyncio.timeout(seconds):
            while True:
                try:
                    bind = await CustomerBind.open(name, port, "trx", system_id, password)
                except AssertionError:
                    await asyncio.sleep(0.2)
                    continue
                self.binds.append(bind)
                return bind

    async def cli(self, instance: str, *args: str) -> tuple[int, str]:
        """``warpd --config <instance's> ARGS``: exit code and output.

        In this process (a thread, its own loop), not a new one: a fresh
        interpreter importing warpd costs several seconds on a loaded box.
        """
        argv = ["--config", str(self.instances[instance].config), *args]

        def run() -> tuple[int, str]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    code = cli_main(argv)
                except SystemExit as exc:  # argparse: usage errors
                    code = int(exc.code or 0)
            return code, out.getvalue()

        return await asyncio.wait_for(asyncio.to_thread(run), 30)

    def holders(self) -> dict[str, int]:
        """Carrier binds per live instance, as the kernel's sockets show them."""
        port = self.simulator.port
        return {n: i.carrier_binds(port) for n, i in self.instances.items() if i.alive}

    def tails(self) -> str:
        return "\n".join(f"--- {n}\n{i.tail(15)}" for n, i in self.instances.items())

    async def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def close(self) -> None:
        """Unbind the customer, stop (SIGTERM) the instances still running, stop the carrier."""
        if self.closed:
            return
        self.closed = True
        for bind in self.binds:
            await bind.close()
        running = [i for i in self.instances.values() if i.alive]
        codes = await asyncio.gather(*(i.stop() for i in running))
        await self.simulator.stop()
        # A clean stop is part of the contract: SIGTERM drains, hands its leases back, exits 0.
        assert codes == [0] * len(running), {i.name: c for i, c in zip(running, codes, strict=True)}

    def upstream(self) -> Counter[str]:
        """How often the carrier answered each text ESME_ROK."""
        return Counter(text for text, _ in self.upstream_submits())

    def upstream_submits(self) -> list[tuple[str, float]]:
        """(text, wall-clock time) of every submit the carrier answered ESME_ROK, from its log."""
        return [
            (bytes.fromhex(e["body"]).decode(), e["t"])
            for e in self._carrier_log()
            if e.get("kind") == "submit" and e.get("status") == "ESME_ROK"
        ]

    def _carrier_log(self) -> list[dict[str, Any]]:
        events = []
        with contextlib.suppress(FileNotFoundError):
            for line in self.simulator_log.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError):  # the last line, half flushed
                    events.append(orjson.loads(line))
        return events
