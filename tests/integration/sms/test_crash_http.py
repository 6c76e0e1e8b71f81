"""kill -9 under SMPP and HTTP load on warpd's embedded PostgreSQL: every 202 sent upstream,
charged once, its receipt POSTed to the customer's webhook.

test_crash.py does the same for SMPP on an external PostgreSQL; here warpd runs its own
cluster under its state directory, as the README's single-VM install does. The first kill
takes warpd alone (its cluster keeps running and the restart adopts it); the second takes
the cluster's postmaster too, as systemd's KillMode=control-group does to what is left of
a crashed unit, so the restart goes through PostgreSQL's crash recovery. systemd restarts
a unit whose start fails (Restart=on-failure); the test does too, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.integration.sms.test_crash import free_port, read_log, spawn
from tests.reliability.httpload import HttpLog, send_paced, webhook_sink
from tests.reliability.tally import TALLY, Fault
from warpd.api import credentials
from warpd.config import parse
from warpd.demo import ACCOUNT, provision
from warpd.sim import EsmeConfig, run_esme
from warpd.store import EmbeddedPostgres
from warpd.store.migrate import load_migrations, migrate


async def listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> bool:
    """True once ``port`` accepts; False if the process exited first (a failed start)."""
    async with asyncio.timeout(timeout):
        while proc.poll() is None:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return True
            except OSError:
                await asyncio.sleep(0.05)
    return False


async def restarted(args: list[str], log: Path, port: int) -> subprocess.Popen[bytes]:
    for _ in range(5):
        proc = spawn(args, log)
        if await listening(port, proc):
            return proc
        await asyncio.sleep(1.0)  # systemd's RestartSec, shortened
    raise AssertionError("warpd did not come back in 5 starts")


async def both_flowing(http: HttpLog, esme_log: Path) -> None:
    """Until each customer has new acknowledgements since the last restart: a kill must
    land mid-load, not while a slow start (a loaded box) still has nothing in flight."""
    http_before, smpp_before = len(http.accepted), _size(esme_log)
    async with asyncio.timeout(90):
        while len(http.accepted) < http_before + 20 or _size(esme_log) <= smpp_before:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def kill_postmaster(cluster: EmbeddedPostgres) -> None:
    pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)


async def test_kill_9_under_smpp_and_http_load_on_the_embedded_postgres(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sim_port, smpp_port, http_port = free_port(), free_port(), free_port()
    cluster = EmbeddedPostgres(state / "postgres")  # durable: fsync on, as warpd runs it
    dsn = await cluster.start()
    conn = await asyncpg.connect(dsn)
    await migrate(conn, load_migrations())
    config = parse(f"[daemon]\nstate_dir = '{state}'\n", "x", {})
    creds = (await provision(conn, config, sim_port))["smpp"]
    await conn.execute("UPDATE smpp_users SET throughput_tps = 5000, burst = 5000")
    account = await conn.fetchval("SELECT id FROM accounts WHERE name = $1", ACCOUNT)
    api_key = (await credentials.create_key(conn, "test", account, name="crash"))["key"]
    await conn.close()
    (state / "warpd.toml").write_text(
        f"[daemon]\nstate_dir = '{state}'\nshutdown_timeout = 2.0\n"
        f"[http]\nlisten = '127.0.0.1:{http_port}'\n[smpp]\nlisten = '127.0.0.1:{smpp_port}'\n"
        "[webhooks]\nallow_private = true\nbackoff_initial = 0.2\nbackoff_max = 1.0\n"
        "[cluster]\ninstance_id = 'crash'\n[log]\nlevel = 'warning'\n"
    )
    sim_log, esme_log, out = tmp_path / "sim.jsonl", tmp_path / "esme.jsonl", tmp_path / "warpd.out"
    simulator = spawn(
        ["sim-smsc", "--listen", f"127.0.0.1:{sim_port}", "--response-delay", "0.02",
         "--receipt-delay", "0.1", "--log", str(sim_log)], tmp_path / "sim.out",
    )  # fmt: skip
    args = ["--config", str(state / "warpd.toml"), "run"]
    warpd = await restarted(args, out, http_port)
    assert await listening(sim_port, simulator)
    http = HttpLog()
    try:
        async with webhook_sink() as (hook, receipts):
            smpp_load = asyncio.create_task(
                run_esme(
                    EsmeConfig(
                        port=smpp_port, system_id=creds["system_id"], password=creds["password"],
                        count=800, rate=300, binds=1, window=50,
                        destination="447700900000-447700900999", receipt_timeout=20,
                        response_timeout=5, reconnect_for=150, log=esme_log,
                    )
                )
            )  # fmt: skip
            smpp_done = asyncio.Event()
            smpp_load.add_done_callback(lambda _: smpp_done.set())
            http_load = asyncio.create_task(
                send_paced(f"http://127.0.0.1:{http_port}", api_key, hook, 150, smpp_done, http)
            )
            downtimes = []
            for pause, with_postgres in ((1.0, False), (1.0, True)):
                await both_flowing(http, esme_log)
                await asyncio.sleep(pause)
                killed = time.monotonic()
                warpd.send_signal(signal.SIGKILL)
                if with_postgres:
                    kill_postmaster(cluster)
                warpd.wait(10)
                warpd = await restarted(args, out, http_port)
                downtimes.append(round(time.monotonic() - killed, 1))
            smpp = await asyncio.wait_for(smpp_load, 90)
            await http_load
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not set(http.accepted) <= receipts.states.keys():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            # The simulator writes its log out once a second and at exit: stopped first, so
            # the submits of its last second are on disk when "sent upstream" is read.
            simulator.send_signal(signal.SIGTERM)
            simulator.wait(15)
            facts = await reconcile(dsn, sim_log)
    finally:
        warpd.send_signal(signal.SIGTERM)
        if simulator.poll() is None:
            simulator.send_signal(signal.SIGTERM)
        warpd.wait(15)
        simulator.wait(15)
        await cluster.stop()  # warpd stopped the cluster it adopted; this is for a failed run

    events = read_log(esme_log)
    smpp_acked = {str(e["id"]) for e in events if e["kind"] == "resp" and e["status"] == "ESME_ROK"}
    smpp_receipts = {str(e["id"]) for e in events if e["kind"] == "receipt"}
    http_acked = set(http.accepted)
    acked = smpp_acked | http_acked
    state_of, charges, sent = facts.state, facts.charges, facts.sent_upstream
    # Why each acknowledged message counts as lost: the first unmet promise, to name it.
    why = {
        m: "not delivered" if state_of.get(m) != "delivered"
        else "never sent upstream" if m not in sent
        else "no webhook receipt"
        if m in http_acked and "delivered" not in receipts.states.get(m, [])
        else "no SMPP receipt" if m in smpp_acked and m not in smpp_receipts
        else ""
        for m in acked
    }  # fmt: skip
    lost = sorted(m for m, reason in why.items() if reason)
    report = {
        "smpp_acked": len(smpp_acked), "http_offered": http.offered, "http_acked": len(http_acked),
        "http_statuses": dict(http.statuses), "http_failures": dict(http.failures),
        "lost": len(lost), "webhook_duplicates": receipts.duplicates(),
        "upstream_submits": facts.upstream_submits, "committed": len(state_of),
        "downtimes": downtimes, "esme_errors": list(smpp.errors),
        "esme_receipts_missing": smpp.receipts_missing,
    }  # fmt: skip
    print(json.dumps(report))
    TALLY.faults.append(
        Fault("kill -9 x2, SMPP + HTTP/webhook load, embedded PostgreSQL (2nd kill takes it too)",
              injected=2, offered=smpp.messages + http.offered, acknowledged=len(acked),
              delivered=sum(1 for m in acked if state_of.get(m) == "delivered"),
              duplicated=max(0, facts.upstream_submits - len(state_of))
              + receipts.duplicates() + smpp.duplicate_receipts,
              lost=len(lost), charged_twice=sum(1 for n in charges.values() if n > 1),
              note=f"HTTP {dict(http.statuses)}, failed while down {sum(http.failures.values())}"
              f"; {len(http_acked)} webhook receipts awaited")
    )  # fmt: skip
    assert len(http_acked) > 100, report
    assert len(smpp_acked) > 300, report
    assert lost == [], (report, Counter(why[m] for m in lost), lost[:5], facts.stuck)
    assert all(charges[m] == 1 for m in state_of), "a message charged twice"
    assert len(charges) == len(state_of)
    assert facts.balances_match


@dataclass(frozen=True, slots=True)
class Facts:
    state: dict[str, str]
    charges: Counter[str]
    sent_upstream: set[str]  # our part row holds an id the simulator logged answering
    upstream_submits: int
    balances_match: bool
    stuck: list[dict[str, object]]


async def reconcile(dsn: str, sim_log: Path) -> Facts:
    """PostgreSQL and the carrier's log: final states, charges, what went upstream."""
    submits = [e for e in read_log(sim_log) if e.get("kind") == "submit"]
    upstream = {e["id"] for e in submits}
    conn = await asyncpg.connect(dsn)
    try:
        state = {r[0]: r[1] for r in await conn.fetch("SELECT id::text, state FROM messages")}
        charges = Counter(
            r[0] for r in await conn.fetch(
                "SELECT message_id::text FROM ledger WHERE kind = 'sms_charge'"
            )
        )  # fmt: skip
        parts = await conn.fetch("SELECT message_id::text, carrier_message_id FROM message_parts")
        balances = await conn.fetch(
            "SELECT a.balance_micros = (SELECT coalesce(sum(amount_micros), 0) FROM ledger l"
            " WHERE l.account_id = a.id) FROM accounts a"
        )
        stuck = [dict(r) for r in await conn.fetch(
            "SELECT id::text, state, claimed_by, attempts FROM messages"
            " WHERE state <> 'delivered' LIMIT 5"
        )]  # fmt: skip
    finally:
        await conn.close()
    return Facts(
        state, charges, {m for m, carrier in parts if carrier in upstream}, len(submits),
        all(r[0] for r in balances), stuck,
    )  # fmt: skip
