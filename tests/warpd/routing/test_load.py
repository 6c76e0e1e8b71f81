"""load_routing / load_tariffs from real rows, and `route explain` through its CLI handler."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import structlog

from warpd.billing.tariff import load_tariffs, sms_cost, sms_rate
from warpd.routing import cli
from warpd.routing.mo import route_mo
from warpd.routing.mt import route_mt
from warpd.routing.table import load_routing, network_of
from warpd.store.migrate import load_migrations, migrate

GB = "447400123456"
NOW = datetime.now(UTC)


@pytest_asyncio.fixture
async def conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_dsn)
    await migrate(connection, load_migrations())
    await seed(connection)
    yield connection
    await connection.close()


async def seed(c: asyncpg.Connection) -> None:
    await c.execute(
        """
        INSERT INTO rate_plans (id, name, currency) VALUES (1, 'standard', 'EUR');
        INSERT INTO accounts (id, name, currency, rate_plan_id) VALUES
            (1, 'acme', 'EUR', 1), (2, 'other', 'EUR', 1), (3, '1', 'EUR', NULL);
        INSERT INTO connectors (id, name, host, port, system_id, password, enabled) VALUES
            (10, 'sinch-a', '127.0.0.1', 2775, 'a', 'p', true),
            (20, 'sinch-b', '127.0.0.1', 2776, 'b', 'p', true),
            (30, 'retired', '127.0.0.1', 2777, 'c', 'p', false);
        INSERT INTO mt_routes (id, priority, account_id, prefix, mcc_mnc, source_regex, strategy,
                               enabled) VALUES
            (1, 10, NULL, '44', NULL, '^BANK$', 'failover', true),
            (2, 20, 1, '447', NULL, NULL, 'least_cost', true),
            (3, 30, NULL, '', NULL, NULL, 'round_robin', true),
            (4, 1, NULL, '', NULL, NULL, 'failover', false),
            (5, 5, 2, '44', '23415', NULL, 'failover', true),
            (6, 40, NULL, '9', NULL, NULL, 'failover', true);
        INSERT INTO mt_route_connectors (route_id, position, connector_id) VALUES
            (1, 0, 10),
            (2, 2, 20), (2, 0, 30), (2, 1, 10),
            (3, 1, 20), (3, 0, 10),
            (4, 0, 10),
            (5, 0, 20);
        INSERT INTO number_prefixes (prefix, mcc_mnc, country, network) VALUES
            ('44', '23400', 'GB', ''), ('4474', '23415', 'GB', 'Vodafone UK');
        INSERT INTO sms_costs (connector_id, prefix, mcc_mnc, cost_micros, currency, quality)
            VALUES (10, '44', NULL, 5000, 'EUR', 100), (20, '', '23415', 3000, 'EUR', 100);
        INSERT INTO sms_rates (id, rate_plan_id, prefix, mcc_mnc, price_micros, valid_from,
                               valid_to) VALUES
            (1, 1, '', NULL, 50000, '-infinity', 'infinity'),
            (2, 1, '44', NULL, 30000, '-infinity', 'infinity'),
            (3, 1, '', '23415', 20000, '-infinity', 'infinity'),
            (4, 1, '44', NULL, 1000, '-infinity', now() - interval '1 day'),
            (5, 1, '44', NULL, 40000, now() + interval '1 day', 'infinity');
        INSERT INTO webhooks (id, account_id, url, secret) VALUES (7, 2, 'https://x.test/', 's');
        INSERT INTO mo_routes (id, priority, number, keyword, account_id, deliver_via, webhook_id,
                               enabled) VALUES
            (1, 100, '60000', NULL, 1, 'smpp', NULL, true),
            (2, 100, '60000', 'WIN', 2, 'webhook', 7, true),
            (3, 1, '60000', NULL, 2, 'smpp', NULL, false);
        """
    )


async def test_load_routing_builds_the_table_the_rows_say(conn: asyncpg.Connection) -> None:
    table = await load_routing(conn)
    assert {c.id: (c.name, c.enabled) for c in table.connectors.values()} == {
        10: ("sinch-a", True), 20: ("sinch-b", True), 30: ("retired", False),
    }  # fmt: skip
    # Disabled rules are not loaded; the rest in (priority, longest prefix) order.
    assert [r.id for r in table.mt_routes] == [5, 1, 2, 3, 6]
    assert table.mt_routes[2].connector_ids == (30, 10, 20)  # by position, not insertion
    assert network_of(table, GB) == "23415"
    assert network_of(table, "442071234567") == "23400"
    assert network_of(table, "33612345678") is None

    def decide(account: int, source: str = "", turn: int = 0) -> tuple[int, tuple[int, ...]]:
        d = route_mt(
            table, account_id=account, destination=GB, source=source,
            mcc_mnc=network_of(table, GB), turn=turn,
        )  # fmt: skip
        return d.route_id, d.candidates

    assert decide(1, "BANK") == (1, (10,))
    # least_cost, the disabled connector left out: 20 costs 3000 on 23415, 10 costs 5000.
    assert decide(1) == (2, (20, 10))
    assert decide(2) == (5, (20,))
    assert decide(3, turn=0) == (3, (10, 20))
    assert decide(3, turn=1) == (3, (20, 10))
    assert sms_cost(table, connector_id=10, msisdn=GB, mcc_mnc=None, at=NOW) == 5000

    assert [r.id for r in table.mo_routes] == [2, 1]
    decision = route_mo(table, destination="60000", text="win")
    assert decision is not None
    assert (decision.account_id, decision.deliver_via, decision.webhook_id) == (2, "webhook", 7)
    hello = route_mo(table, destination="60000", text="hello")
    assert hello is not None
    assert hello.account_id == 1


async def test_load_routing_inside_the_callers_transaction(conn: asyncpg.Connection) -> None:
    """A caller loading a whole catalogue in one transaction gets that snapshot, not a new one."""
    async with conn.transaction():
        await conn.execute("UPDATE connectors SET enabled = false WHERE id = 10")
        table = await load_routing(conn)
    assert not table.connectors[10].enabled
    outside = await load_routing(conn)
    assert not outside.connectors[10].enabled
    assert not conn.is_in_transaction()


async def test_a_route_with_a_bad_regex_is_left_out_not_fatal(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE mt_routes SET source_regex = '(' WHERE id = 1")
    table = await load_routing(conn)
    assert 1 not in {r.id for r in table.mt_routes}
    assert len(table.mt_routes) == 4


async def test_load_tariffs_with_validity(conn: asyncpg.Connection) -> None:
    tariffs = await load_tariffs(conn)

    def rate(msisdn: str, mcc_mnc: str | None, at: datetime = NOW) -> int | None:
        found = sms_rate(tariffs, rate_plan_id=1, msisdn=msisdn, mcc_mnc=mcc_mnc, at=at)
        return None if found is None else found.rate_id

    assert rate(GB, "23415") == 3
    assert rate(GB, None) == 2
    assert rate(GB, None, NOW + timedelta(days=2)) == 5
    assert rate("33612345678", None) == 1
    # The row that ended before the load is not loaded at all.
    assert rate(GB, None, NOW - timedelta(days=3)) == 2
    assert sms_rate(tariffs, rate_plan_id=2, msisdn=GB, mcc_mnc=None, at=NOW) is None


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The handler configures logging onto the captured stderr; put the suite's back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def run_cli(tmp_path: Path, dsn: str, *argv: str) -> tuple[int, argparse.Namespace]:
    config = tmp_path / "warpd.toml"
    config.write_text(f"[database]\ndsn = '{dsn}'\npool_min = 1\npool_max = 2\n")
    parser = argparse.ArgumentParser(prog="warpd")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["route", "explain", "-c", str(config), *argv])
    return args.handler(args), args


@pytest.mark.usefixtures("conn")
async def test_route_explain_prints_rule_candidates_and_skips(
    database_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The handler runs its own event loop, as `warpd route explain` does.
    status, _ = await asyncio.to_thread(
        run_cli, tmp_path, database_dsn, "--account", "acme", "--to", "+44 7400 123456"
    )
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "MT from account 1 (acme), sender '', to 447400123456"
    assert "network 23415 Vodafone UK by prefix 4474" in lines[1]
    assert "1 rule(s) for other accounts match the prefix" in out
    assert "route 1 (priority 10, prefix '44', any account): skipped, sender '' does not" in out
    assert "route 2 (priority 20, prefix '447', account 1): chosen" in out
    assert "connector 30 (retired): left out, disabled" in out
    assert "least_cost: connector 20 costs 3000 micros" in out
    assert lines[-1] == "route 2, least_cost: candidates in order 20 (sinch-b), 10 (sinch-a)"


@pytest.mark.usefixtures("conn")
async def test_route_explain_by_id_with_a_sender_and_national_number(
    database_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = await asyncio.to_thread(
        run_cli, tmp_path, database_dsn,
        "--account", "1", "--to", "07400123456", "--region", "GB", "--from", "BANK",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    # "1" is account 1's id, not the account named "1" (id 3).
    assert out.startswith("MT from account 1 (acme), sender 'BANK'")
    assert out.splitlines()[-1] == "route 1, failover: candidates in order 10 (sinch-a)"


async def test_route_explain_failures(
    conn: asyncpg.Connection, database_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await conn.execute("UPDATE connectors SET enabled = false WHERE id IN (10, 20)")
    status, _ = await asyncio.to_thread(
        run_cli, tmp_path, database_dsn, "--account", "other", "--to", "+33612345678"
    )
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.endswith(
        "  route 3 (priority 30, prefix '', any account): skipped, every connector is disabled\n"
        "NO ROUTE\n"
    )

    status, _ = await asyncio.to_thread(
        run_cli, tmp_path, database_dsn, "--account", "nobody", "--to", "+447400123456"
    )
    assert status == 2
    assert "no account 'nobody'" in capsys.readouterr().err

    status, _ = await asyncio.to_thread(
        run_cli, tmp_path, database_dsn, "--account", "acme", "--to", "MyBrand"
    )
    assert status == 2
    assert "invalid destination 'MyBrand'" in capsys.readouterr().err

    status, _ = await asyncio.to_thread(
        run_cli,
        tmp_path,
        "postgresql://nobody@127.0.0.1:1/none",
        "--account",
        "1",
        "--to",
        "+447400123456",
    )
    assert status == 1
    assert "cannot connect to PostgreSQL" in capsys.readouterr().err


@pytest.mark.usefixtures("conn")
async def test_warpd_main_runs_route_explain(
    database_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from warpd.cli import main

    config = tmp_path / "warpd.toml"
    config.write_text(f"[database]\ndsn = '{database_dsn}'\npool_min = 1\npool_max = 2\n")
    argv = ["-c", str(config), "route", "explain", "--account", "acme", "--to", "+447400123456"]
    assert await asyncio.to_thread(main, argv) == 0
    assert "route 2, least_cost: candidates in order" in capsys.readouterr().out
