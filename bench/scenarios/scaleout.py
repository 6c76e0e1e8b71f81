"""Scale-out: one warpd instance against two on this machine, one PostgreSQL, one carrier.

Two customers (two SMPP users of one account) each run a load generator;
with one instance both bind to it, with two each binds to its own instance
(what a TCP load balancer in front of them does). The instances share one
PostgreSQL cluster (durable, as warpd's embedded one) and the carrier
simulator (resp after 20 ms, receipt 0.2 s later), whose connector allows two
binds in total: one instance holds both, two hold one each, and a receipt
that comes back over the other instance's carrier bind is handed over.
CPU per message receipted is counted for every process: each instance,
PostgreSQL (postmaster and backends), the simulator, the load generators.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shutil
import sys
import time
import urllib.request

import asyncpg

from bench import loadgen
from bench.harness.proc import Service, cpu_seconds, descendants, free_port, run_together
from bench.harness.results import Metric, Role, Row, ScenarioResult, Status, Table
from bench.peers.base import rundir
from bench.peers.simulator import Simulator, start_all
from bench.scenarios.common import Scenario, Settings, SmppLoad, guarded, say
from warpd.auth.passwords import hash_password
from warpd.config import parse
from warpd.demo import provision
from warpd.store import EmbeddedPostgres
from warpd.store.migrate import load_migrations, migrate

UPSTREAM_DELAY = 0.02
RECEIPT_DELAY = 0.2
CONNECTOR_BINDS = 2
#: the two customers: (system_id, password)
CUSTOMERS = (("scale1", "scale1pw"), ("scale2", "scale2pw"))
#: the most a load generator sends for: a stalled gateway ends the row, not the bench
SENDING_WITHIN = 120.0
ONE, TWO, LIMIT = "warpd x1", "warpd x2", "load generators -> simulator"
METRICS = (
    Metric("e2e_rate", "msg/s end to end", primary=True),
    Metric("accept_rate", "submit_sm_resp/s"),
    Metric("resp_p99", "resp p99 ms", 1),
    Metric("receipt_p99", "receipt p99 ms", 0),
    Metric("receipted", "% receipted", 1),
    Metric("cpu_ms_warpd", "warpd CPU ms/msg", 3),
    Metric("cpu_ms_pg", "PostgreSQL CPU ms/msg", 3),
    Metric("cpu_ms_all", "CPU ms/msg, all processes", 3),
)


class SharedDatabase:
    """One PostgreSQL cluster for every instance, a fresh database per row."""

    def __init__(self) -> None:
        self.dir = rundir("scaleout-postgres")
        self.pg = EmbeddedPostgres(self.dir / "cluster", port=free_port())
        self.rows = 0

    def start(self) -> None:
        # A fresh cluster each run: nothing a previous (or killed) run left behind.
        shutil.rmtree(self.dir / "cluster", ignore_errors=True)
        asyncio.run(self.pg.start())

    def stop(self) -> None:
        asyncio.run(self.pg.stop())

    def pids(self) -> list[int]:
        try:
            postmaster = int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return descendants(postmaster)

    def fresh(self, upstream: Simulator) -> str:
        """A new database, migrated and provisioned for the two customers; its DSN."""
        self.rows += 1
        return asyncio.run(self._fresh(f"scaleout_{self.rows}_{int(time.time())}", upstream))

    async def _fresh(self, name: str, upstream: Simulator) -> str:
        dsn = await self.pg.create_database(name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, load_migrations())
            config = parse(f"[daemon]\nstate_dir = '{self.dir}'\n", "bench", {})
            await provision(conn, config, upstream.port)
            account = await conn.fetchval("SELECT id FROM accounts ORDER BY id LIMIT 1")
            for system_id, password in CUSTOMERS:
                await conn.execute(
                    "INSERT INTO smpp_users (account_id, system_id, password_hash, throughput_tps,"
                    " burst, window_size, max_binds) VALUES ($1, $2, $3, 100000, 100000, 200, 8)",
                    account,
                    system_id,
                    hash_password(password),
                )
            await conn.execute(
                "UPDATE connectors SET binds = $1, window_size = 100, tps = 100000,"
                " system_id = $2, password = $3",
                CONNECTOR_BINDS,
                *upstream.credentials,
            )
            await conn.execute(
                "INSERT INTO ledger (account_id, amount_micros, kind, note)"
                " VALUES ($1, 1000000000000, 'topup', 'bench')",
                account,
            )
        finally:
            await conn.close()
        return dsn


class Instance:
    """``python -m warpd --config X run`` on the shared database, as one of several."""

    def __init__(self, name: str, dsn: str) -> None:
        self.name = name
        self.dir = rundir(name).resolve()
        self.smpp_port, self.http_port = free_port(), free_port()
        self.service: Service | None = None
        config = self.dir / "warpd.toml"
        config.write_text(
            f"[daemon]\nstate_dir = '{self.dir / 'state'}'\nshutdown_timeout = 5.0\n"
            f"[database]\ndsn = '{dsn}'\npool_max = 8\n"
            f"[http]\nlisten = '127.0.0.1:{self.http_port}'\n"
            f"[smpp]\nlisten = '127.0.0.1:{self.smpp_port}'\nwindow = 1000\n"
            f"[cluster]\ninstance_id = '{name}'\nlease_seconds = 10\nheartbeat_seconds = 1\n"
            "[sms]\nreload_interval = 0.5\n[log]\nlevel = 'warning'\n"
        )
        self.argv = [sys.executable, "-m", "warpd", "--config", str(config), "run"]

    def start(self) -> None:
        self.service = Service.start(self.name, self.argv, self.dir)

    def wait_ready(self, seconds: float = 60.0) -> None:
        assert self.service is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.service.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.service.tail()}")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.http_port}/ready"
                with urllib.request.urlopen(url, timeout=1):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {seconds:.0f} s")

    def carrier_binds(self) -> int:
        """Bound carrier binds, from the instance's own /metrics."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
        found = re.findall(r'^warpd_smpp_connector_binds\{[^}]*state="bound"[^}]*\} (\S+)$',
                           text, re.MULTILINE)  # fmt: skip
        return int(sum(float(v) for v in found))

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop(grace=15)


def _wait_binds(instances: list[Instance], seconds: float = 30.0) -> list[int]:
    """Until the connector's binds are up over the instances, and shared out when there are
    several (given ten more seconds); returns how many each holds."""
    deadline = time.monotonic() + seconds
    held: list[int] = []
    shared_by = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            held = [i.carrier_binds() for i in instances]
        if sum(held) == CONNECTOR_BINDS:
            if all(held):
                return held
            shared_by = shared_by or time.monotonic() + 10.0
            if time.monotonic() > shared_by:
                return held
        time.sleep(0.2)
    raise RuntimeError(f"{CONNECTOR_BINDS} carrier binds not up in {seconds:.0f} s: {held}")


def _run_loads(
    ports: list[int],
    credentials: list[tuple[str, str]],
    load: SmppLoad,
    parts: dict[str, list[int]],
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """One load generator per (port, login), side by side: their results, and the CPU
    seconds of each part of ``parts`` plus the load generators (their own figure)."""
    argvs = [
        loadgen.esme_argv(
            port, system_id=system_id, password=password, binds=load.binds, window=load.window,
            seconds=SENDING_WITHIN, count=load.messages, receipt_wait=load.receipt_wait,
        )
        for port, (system_id, password) in zip(ports, credentials, strict=True)
    ]  # fmt: skip
    before = {part: cpu_seconds(pids) for part, pids in parts.items()}
    finished, children = run_together(argvs, timeout=SENDING_WITHIN + load.receipt_wait + 30)
    spent = {part: cpu_seconds(pids) - before[part] for part, pids in parts.items()}
    results = []
    for run in finished:
        try:
            results.append(loadgen.esme_result(run.stdout))
        except ValueError:
            why = f"load generator exited {run.returncode}: {run.stderr[-500:]}"
            raise RuntimeError(why) from None
    # The stopgap reports its own CPU; sim-esme does not, then RUSAGE_CHILDREN counts both.
    own = [r["cpu"] for r in results if r.get("cpu") is not None]
    spent["load generators"] = sum(own) if len(own) == len(results) else children
    return results, spent


def _row(system: str, role: Role, results: list[dict[str, float]], spent: dict[str, float]) -> Row:
    done = max(sum(r["receipts"] for r in results), 1)
    sent = max(sum(r["sent"] for r in results), 1)
    warpd = sum(v for k, v in spent.items() if k.startswith("warpd"))
    values = {
        # The generators run side by side: their rates add up.
        "e2e_rate": sum(r["e2e_rate"] for r in results),
        "accept_rate": sum(r["rate"] for r in results),
        "resp_p99": max(r["resp_p99_ms"] or 0.0 for r in results),
        "receipt_p99": max(r["receipt_p99_ms"] or 0.0 for r in results),
        "receipted": 100.0 * done / sent,
        "cpu_ms_warpd": 1000 * warpd / done,
        "cpu_ms_pg": 1000 * spent.get("postgresql", 0.0) / done,
        "cpu_ms_all": 1000 * sum(spent.values()) / done,
    }
    lost = sent - done
    cpu = {part: 1000 * seconds / done for part, seconds in spent.items()}
    return Row(system, role, values, note=f"{lost} without receipt" if lost else "", cpu=cpu)


def cluster_row(count: int, database: SharedDatabase, upstream: Simulator, load: SmppLoad) -> Row:
    """``count`` instances on a fresh database; customer 1 binds to the first, customer 2
    to the last (the same one when there is one)."""
    dsn = database.fresh(upstream)
    instances = [Instance(f"scaleout-{count}-{n + 1}", dsn) for n in range(count)]
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
        held = _wait_binds(instances)
        parts = {f"warpd-{n + 1}": i.pids() for n, i in enumerate(instances)}
        parts |= {"postgresql": database.pids(), "simulator": upstream.pids()}
        ports = [instances[0].smpp_port, instances[-1].smpp_port]
        results, spent = _run_loads(ports, list(CUSTOMERS), load, parts)
        row = (
            _row(ONE, Role.PEER, results, spent)
            if count == 1
            else _row(TWO, Role.WARPD, results, spent)
        )
        if not all(held):  # the connector's binds not shared out: say so beside the figures
            return dataclasses.replace(row, note=f"carrier binds held {held}. {row.note}")
        return row
    finally:
        for instance in instances:
            instance.stop()


def limit_row(carriers: tuple[Simulator, Simulator], load: SmppLoad) -> Row:
    """The two load generators bound straight to a simulator each: nothing between them.
    (One simulator would hand each generator receipts for the other's messages: both
    bind with its one login.)"""
    results, spent = _run_loads(
        [c.port for c in carriers], [c.credentials for c in carriers], load,
        {"simulator": [p for c in carriers for p in c.pids()]},
    )  # fmt: skip
    return _row(LIMIT, Role.LIMIT, results, spent)


def run(settings: Settings) -> ScenarioResult:
    # One bind per generator: bench.sim esme shares its --count among its binds through a
    # check and a decrement that an await separates, so two binds can run past the count.
    load = SmppLoad(
        messages=200 if settings.smoke else 4000,
        binds=1,
        window=100,
        receipt_wait=30 if settings.smoke else 120,
    )
    runs: list[list[Row]] = []
    with contextlib.ExitStack() as stack:
        upstream = Simulator("smsc-scaleout", UPSTREAM_DELAY, RECEIPT_DELAY)
        second = Simulator("smsc-scaleout-2", UPSTREAM_DELAY, RECEIPT_DELAY)
        start_all(stack, upstream, second)
        database: SharedDatabase | None = None
        down = "limit rows only (--limits-only)"
        if not settings.limits_only:
            try:
                database = SharedDatabase()
                database.start()
                stack.callback(database.stop)
            except (OSError, RuntimeError) as failed:
                database, down = None, f"PostgreSQL did not start: {failed}"[:300]
                say(down)
        for number in range(settings.runs):
            say(f"scaleout run {number + 1}/{settings.runs}")
            rows = []
            for count, name, role in ((1, ONE, Role.PEER), (2, TWO, Role.WARPD)):
                if database is None:
                    status = Status.SKIPPED if settings.limits_only else Status.FAILED
                    rows.append(Row(name, role, status=status, note=down))
                else:
                    rows.append(guarded(name, role, cluster_row, count, database, upstream, load))
            rows.append(guarded(LIMIT, Role.LIMIT, limit_row, (upstream, second), load))
            runs.append(rows)
    notes = (
        f"{load.messages} messages per customer per run, 2 customers x {load.binds} binds x "
        f"window {load.window}; the connector has {CONNECTOR_BINDS} binds in total (window "
        f"100 each); carrier resp after {UPSTREAM_DELAY * 1000:.0f} ms, receipt "
        f"{RECEIPT_DELAY} s later. One PostgreSQL (fsync on) on the same 2-vCPU box.",
        "msg/s end to end: the two customers' receipts per second added (each timed from its "
        "first receipt to its last). 'vs peer' is x2 against x1 in the same run. CPU per "
        "message receipted by part (each instance, PostgreSQL, the simulator, the load "
        "generators) is in report.json.",
    )
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    table = Table("Scale-out: one instance against two", METRICS, runs, notes)
    return ScenarioResult("scaleout", "Scale-out", description, [table])


SCENARIO = Scenario("scaleout", "Scale-out: one warpd instance against two", run)
