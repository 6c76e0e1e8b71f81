"""The database side of a message's life on plain tables against partitioned ones.

    python -m bench.storage [--rounds 15] [--batch 2000] [--dsn postgresql://...]

Three databases on one server, used in turn each round so load on a shared
box falls on all three alike: ``plain`` (migrations before 0010: unpartitioned
tables), ``partitioned`` (0010 and 0011, events off: the default) and
``events`` (events on: every receipt, CDR and ledger row also writes an outbox
row). Each round runs, per database, what warpd's SMS core does for one batch:
the group commit (COPY of the messages and their ledger charges, one
transaction), the dispatcher's claim, the submit_sm_resp write (parts inserted,
messages 'submitted'), the receipts (parts final) and the messages made final.
Prints the median milliseconds of each step per database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from warpd.sms.commit import MESSAGE_COLUMNS, new_message_id
from warpd.store.migrate import load_migrations, migrate

STEPS = ("commit", "claim", "submitted", "receipts", "final")


async def prepare(admin: str, name: str, events: bool, versions: int) -> asyncpg.Connection:
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    conn = await asyncpg.connect(admin.rsplit("/", 1)[0] + "/" + name)
    await migrate(conn, tuple(m for m in load_migrations() if m.version < versions))
    if events:
        await conn.execute("SELECT events_switch(true)")
    await conn.execute("INSERT INTO accounts (id, name, currency) VALUES (1, 'bench', 'EUR')")
    await conn.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES (1, 1000000000000, 'topup')"
    )
    await conn.execute(
        "INSERT INTO connectors (id, name, host, port, system_id, password)"
        " VALUES (1, 'c', '127.0.0.1', 2775, 'c', 'p')"
    )
    return conn


def records(batch: int) -> list[tuple[object, ...]]:
    now = datetime.now(UTC)
    values = {
        "account_id": 1, "channel": "smpp", "smpp_user_id": 1, "api_key_id": None,
        "client_ref": None, "source_addr": "BANK", "source_ton": 5, "source_npi": 0,
        "destination_addr": "447700900123", "dest_ton": 1, "dest_npi": 1, "mcc_mnc": None,
        "esm_class": 0, "data_coding": 0, "registered_delivery": 1,
        "body": b"Your code is 123456", "tlvs": b"", "parts": 1, "route_id": 1,
        "connector_id": 1, "claimed_by": "bench", "claimed_until": now + timedelta(minutes=1),
        "price_micros": 5000, "currency": "EUR", "schedule_at": None, "next_attempt_at": now,
        "expires_at": now + timedelta(days=2), "callback_url": None, "cost_micros": 0,
    }  # fmt: skip
    rows = []
    for _ in range(batch):
        values["id"] = new_message_id()
        rows.append(tuple(values[c] for c in MESSAGE_COLUMNS))
    return rows


async def one_batch(conn: asyncpg.Connection, batch: int) -> dict[str, float]:
    rows = records(batch)
    ids: list[uuid.UUID] = [r[0] for r in rows]  # type: ignore[misc]
    charges = [(1, -5000, "sms_charge", i) for i in ids]
    carrier = [f"c-{i}" for i in ids]

    async def commit() -> None:
        async with conn.transaction():
            await conn.copy_records_to_table("messages", records=rows, columns=MESSAGE_COLUMNS)
            await conn.copy_records_to_table(
                "ledger", records=charges,
                columns=("account_id", "amount_micros", "kind", "message_id"),
            )  # fmt: skip

    steps: dict[str, Callable[[], Awaitable[object]]] = {
        "commit": commit,
        "claim": lambda: conn.execute(
            "UPDATE messages SET claimed_until = now() + interval '1 minute'"
            " WHERE id = any($1::uuid[])", ids),
        "submitted": lambda: conn.execute(
            "WITH p AS (INSERT INTO message_parts (message_id, part_no, connector_id,"
            " carrier_message_id) SELECT i, 1, 1, c FROM unnest($1::uuid[], $2::text[]) AS u(i, c))"
            " UPDATE messages SET state = 'submitted', submitted_at = now()"
            " WHERE id = any($1::uuid[])", ids, carrier),
        "receipts": lambda: conn.execute(
            "UPDATE message_parts p SET state = 'delivered', done_at = now()"
            " FROM unnest($1::text[]) AS r(c)"
            " WHERE p.connector_id = 1 AND p.carrier_message_id = r.c AND p.state = 'submitted'",
            carrier),
        "final": lambda: conn.execute(
            "UPDATE messages SET state = 'delivered', done_at = now() WHERE id = any($1::uuid[])",
            ids),
    }  # fmt: skip
    times = {}
    for name, step in steps.items():
        started = time.perf_counter()
        await step()
        times[name] = (time.perf_counter() - started) * 1000
    await conn.execute("DELETE FROM outbox") if await conn.fetchval(
        "SELECT to_regclass('outbox') IS NOT NULL"
    ) else None
    return times


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    setups = {"plain": (False, 10), "partitioned": (False, 10_000), "events": (True, 10_000)}
    conns = {
        name: await prepare(args.dsn, f"bench_storage_{name}", events, versions)
        for name, (events, versions) in setups.items()
    }
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for round_no in range(args.rounds + 1):
        for name, conn in conns.items():
            times = await one_batch(conn, args.batch)
            if round_no:  # the first round warms caches and plans
                for step, ms in times.items():
                    results[name][step].append(ms)
    print(f"median ms per batch of {args.batch} messages, {args.rounds} rounds")
    print(f"{'':12}" + "".join(f"{s:>11}" for s in STEPS))
    for name in conns:
        print(f"{name:12}" + "".join(f"{statistics.median(results[name][s]):11.1f}" for s in STEPS))
    for conn in conns.values():
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
