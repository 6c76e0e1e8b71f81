"""The operator subcommands, run as ``warpd`` would, on a real PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from warpd.api.cli import register
from warpd.auth.passwords import verify_password
from warpd.store.migrate import load_migrations, migrate


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="warpd")
    register(top.add_subparsers(dest="command", required=True))
    return top


class Cli:
    def __init__(self, config: Path) -> None:
        self.config = config

    async def __call__(self, *argv: str) -> tuple[int, Any]:
        args = parser().parse_args([*argv[:1], "-c", str(self.config), *argv[1:]])
        return await asyncio.to_thread(self._run, args)

    def _run(self, args: argparse.Namespace) -> tuple[int, Any]:
        import contextlib
        import io

        out = io.StringIO()
        err = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = args.handler(args)
        text = out.getvalue()
        if code != 0:
            return code, err.getvalue()
        try:
            return code, json.loads(text)
        except json.JSONDecodeError:
            return code, text


@pytest.fixture
async def cli(database_dsn: str, tmp_path: Path) -> Cli:
    conn = await asyncpg.connect(database_dsn)
    try:
        await migrate(conn, load_migrations())
    finally:
        await conn.close()
    path = tmp_path / "warpd.toml"
    path.write_text(f"[database]\ndsn = '{database_dsn}'\npool_min = 1\npool_max = 2\n")
    return Cli(path)


async def test_account_create_topup_show(cli: Cli) -> None:
    code, account = await cli("account", "create", "acme", "--balance", "10.50")
    assert code == 0
    assert account["balance_micros"] == 10_500_000
    code, moved = await cli("account", "topup", "acme", "0.000001", "--note", "test")
    assert (code, moved["account"]["balance_micros"]) == (0, 10_500_001)
    code, shown = await cli("account", "show", str(account["id"]))
    assert (code, shown["name"]) == (0, "acme")
    code, message = await cli("account", "show", "nobody")
    assert code == 1
    assert "not found" in message
    code, message = await cli("account", "topup", "acme", "-3")
    assert code == 1
    code, message = await cli("account", "topup", "acme", "lots")
    assert code == 1
    assert "decimal" in message


async def test_key_create_prints_the_key_once_and_revoke_by_prefix(cli: Cli) -> None:
    await cli("account", "create", "acme")
    code, key = await cli(
        "key", "create", "acme", "--scope", "sms:send", "--allow-ip", "10.0.0.0/8"
    )
    assert code == 0
    assert key["key"].startswith(key["prefix"] + "_")
    assert key["scopes"] == ["sms:send"]
    assert key["allowed_ips"] == ["10.0.0.0/8"]
    code, revoked = await cli("key", "revoke", key["prefix"])
    assert code == 0
    assert revoked["revoked_at"] is not None
    assert "key" not in revoked


async def test_smpp_user_with_a_generated_password(cli: Cli, database_dsn: str) -> None:
    await cli("account", "create", "acme")
    code, user = await cli("smpp-user", "create", "acme", "acme01")
    assert code == 0
    assert 1 <= len(user["password"]) <= 8
    conn = await asyncpg.connect(database_dsn)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM smpp_users")
        actors = {r[0] for r in await conn.fetch("SELECT actor FROM audit_log")}
    finally:
        await conn.close()
    assert verify_password(user["password"], stored)
    assert all(a.startswith("cli:") for a in actors)


async def test_connectors_and_tariffs(cli: Cli, database_dsn: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.execute(
            "INSERT INTO connectors (name, host, port, system_id, password)"
            " VALUES ('sinch', '127.0.0.1', 2776, 'warpd', 'pw')"
        )
        await conn.execute("INSERT INTO rate_plans (name, currency) VALUES ('retail', 'EUR')")
    finally:
        await conn.close()
    code, listed = await cli("connector", "list")
    assert [c["name"] for c in listed] == ["sinch"]
    code, row = await cli("connector", "disable", "sinch")
    assert (code, row["enabled"]) == (0, False)
    code, row = await cli("connector", "enable", "1")
    assert (code, row["enabled"]) == (0, True)
    csv_file = tmp_path / "rates.csv"
    csv_file.write_text("prefix,mcc_mnc,price,valid_from\n44,,0.0035,\n1,,0.01,\n")
    code, result = await cli("tariff", "import", str(csv_file), "--plan", "retail")
    assert (code, result["imported"]) == (0, 2)
    code, text = await cli("tariff", "export", "--plan", "retail")
    assert text == "prefix,mcc_mnc,price,valid_from\n1,,0.01,\n44,,0.0035,\n"
    costs = tmp_path / "costs.csv"
    costs.write_text("prefix,mcc_mnc,cost,currency,quality,valid_from\n44,,0.002,EUR,90,\n")
    code, result = await cli("tariff", "import", str(costs), "--connector", "sinch")
    assert (code, result["imported"]) == (0, 1)
    code, text = await cli("tariff", "export", "--connector", "1")
    assert text == costs.read_text()
    csv_file.write_text("prefix,mcc_mnc,price,valid_from\n44,,abc,\n")
    code, message = await cli("tariff", "import", str(csv_file), "--plan", "retail")
    assert code == 1
    assert "line 2" in message


async def test_a_bad_config_is_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[database]\npool_max = -1\n")
    code, message = await Cli(path)("connector", "list")
    assert code == 2
    assert "pool_max" in message


async def test_a_running_embedded_cluster_is_used_and_left_running(tmp_path: Path) -> None:
    import shutil
    import tempfile

    from warpd.store import EmbeddedPostgres

    # Under /tmp, not pytest's 0700 tree: the cluster may belong to another user.
    state = Path(tempfile.mkdtemp(prefix="warpd-test-cli-"))
    cluster = EmbeddedPostgres(state / "postgres", port=55433, durable=False)
    dsn = await cluster.start()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, load_migrations())
        finally:
            await conn.close()
        path = tmp_path / "warpd.toml"
        path.write_text(
            f"[daemon]\nstate_dir = '{state}'\n[embedded_postgres]\nport = 55433\n"
            "[database]\npool_min = 1\npool_max = 2\n"
        )
        code, account = await Cli(path)("account", "create", "embedded")
        assert (code, account["name"]) == (0, "embedded")
        conn = await asyncpg.connect(dsn)  # still up: the CLI did not stop the daemon's cluster
        await conn.close()
    finally:
        await cluster.stop()
        shutil.rmtree(state, ignore_errors=True)
