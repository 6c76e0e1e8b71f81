"""The admin API: token and address gate, accounts and money, keys, SMPP users, audit."""

from __future__ import annotations

import dataclasses

import pytest

from tests.warpd.api.conftest import ADMIN_TOKEN, Api
from warpd.api.server import apply_config
from warpd.auth.passwords import verify_password


async def test_admin_needs_the_token(api: Api) -> None:
    status, body, _ = await api.call("GET", "/v1/admin/accounts")
    assert (status, body["code"]) == (401, "unauthorized")
    status, body, _ = await api.call("GET", "/v1/admin/accounts", token=ADMIN_TOKEN + "x")
    assert (status, body["code"]) == (401, "unauthorized")
    status, body = await api.admin_call("GET", "/v1/admin/accounts")
    assert (status, body) == (200, {"accounts": []})


async def test_admin_refuses_addresses_outside_its_allow_list(api: Api) -> None:
    config = api.app[__import__("warpd.api.keys", fromlist=["CONFIG"]).CONFIG]
    narrowed = dataclasses.replace(
        config, admin=dataclasses.replace(config.admin, allowed_ips=("10.0.0.0/8",))
    )
    await apply_config(api.app, narrowed)
    status, body = await api.admin_call("GET", "/v1/admin/accounts")
    assert (status, body["code"]) == (403, "ip_not_allowed")
    await apply_config(api.app, config)
    assert (await api.admin_call("GET", "/v1/admin/accounts"))[0] == 200


async def test_account_lifecycle_moves_money_only_through_the_ledger(api: Api) -> None:
    status, account = await api.admin_call(
        "POST", "/v1/admin/accounts", {"name": "acme", "currency": "EUR", "balance_micros": 5}
    )
    assert status == 201
    assert account["balance_micros"] == 5
    aid = account["id"]
    status, result = await api.admin_call(
        "POST", f"/v1/admin/accounts/{aid}/topup", {"amount_micros": 1_000_000, "note": "invoice 7"}
    )
    assert status == 201
    assert result["account"]["balance_micros"] == 1_000_005
    status, result = await api.admin_call(
        "POST", f"/v1/admin/accounts/{aid}/adjust", {"amount_micros": -5, "reason": "rounding"}
    )
    assert (status, result["account"]["balance_micros"]) == (201, 1_000_000)
    status, result = await api.admin_call(
        "POST", f"/v1/admin/accounts/{aid}/topup", {"amount_micros": -1}
    )
    assert (status, result["code"]) == (400, "invalid_request")
    status, result = await api.admin_call(
        "PATCH", f"/v1/admin/accounts/{aid}", {"status": "suspended"}
    )
    assert (status, result["status"]) == (200, "suspended")
    status, ledger = await api.admin_call("GET", f"/v1/admin/accounts/{aid}/ledger")
    assert [e["amount_micros"] for e in ledger["ledger"]] == [5, 1_000_000, -5]
    assert [e["kind"] for e in ledger["ledger"]] == ["topup", "topup", "adjustment"]
    async with api.database.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT bool_and(balance_micros = (SELECT coalesce(sum(amount_micros), 0) FROM ledger"
            " l WHERE l.account_id = a.id)) FROM accounts a"
        )
    status, audit = await api.admin_call("GET", "/v1/admin/audit")
    actions = [e["action"] for e in audit["entries"]]
    assert actions == [
        "account.create",
        "account.topup",
        "account.topup",
        "account.adjustment",
        "account.update",
    ]
    last = audit["entries"][-1]
    assert last["before"]["status"] == "active"
    assert last["after"]["status"] == "suspended"
    assert last["actor"].startswith("admin@127.0.0.1")


async def test_duplicate_and_missing_accounts_are_4xx(api: Api) -> None:
    body = {"name": "dup", "currency": "EUR"}
    assert (await api.admin_call("POST", "/v1/admin/accounts", body))[0] == 201
    status, error = await api.admin_call("POST", "/v1/admin/accounts", body)
    assert (status, error["code"]) == (409, "conflict")
    status, error = await api.admin_call("GET", "/v1/admin/accounts/999999")
    assert (status, error["code"]) == (404, "not_found")
    status, error = await api.admin_call("GET", "/v1/admin/accounts/abc")
    assert (status, error["code"]) == (400, "invalid_request")
    status, error = await api.admin_call("GET", f"/v1/admin/accounts/{1 << 70}")
    assert (status, error["code"]) == (400, "invalid_request")
    status, error = await api.admin_call(
        "POST", "/v1/admin/accounts", {"name": "x", "currency": "EUR", "rate_plan_id": 42}
    )
    assert (status, error["code"]) == (404, "not_found")


async def test_key_shown_once_hashed_at_rest_and_revocable(api: Api) -> None:
    account, key = await api.account_with_key()
    assert key.startswith("wk_")
    status, keys = await api.admin_call("GET", f"/v1/admin/keys?account_id={account['id']}")
    listed = keys["keys"][0]
    assert "key" not in listed
    assert key.startswith(listed["prefix"] + "_")
    async with api.database.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", listed["id"])
        audit_text = await conn.fetchval("SELECT string_agg(after::text, '') FROM audit_log")
    assert key not in audit_text
    assert bytes(stored) == __import__("hashlib").sha256(key.encode()).digest()
    assert (await api.call("GET", "/v1/balance", token=key))[0] == 200
    status, revoked = await api.admin_call("DELETE", f"/v1/admin/keys/{listed['id']}")
    assert status == 200
    assert revoked["revoked_at"] is not None
    status, error, _ = await api.call("GET", "/v1/balance", token=key)
    assert (status, error["code"]) == (401, "unauthorized")


async def test_smpp_user_password_is_scrypt_and_limits_apply(api: Api) -> None:
    account, _ = await api.account_with_key()
    body = {
        "account_id": account["id"],
        "system_id": "acme01",
        "password": "pw123",
        "allowed_ips": ["10.1.2.3"],
        "throughput_tps": 50,
    }
    status, user = await api.admin_call("POST", "/v1/admin/smpp-users", body)
    assert status == 201, user
    assert "password" not in user
    assert "password_hash" not in user
    assert user["allowed_ips"] == ["10.1.2.3/32"]
    assert user["throughput_tps"] == 50.0
    async with api.database.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT password_hash FROM smpp_users WHERE id = $1", user["id"]
        )
    assert verify_password("pw123", stored)
    status, error = await api.admin_call("POST", "/v1/admin/smpp-users", body)
    assert (status, error["code"]) == (409, "conflict")
    status, error = await api.admin_call(
        "POST", "/v1/admin/smpp-users", {**body, "system_id": "x", "password": "123456789"}
    )
    assert (status, error["code"]) == (400, "invalid_request")
    status, error = await api.admin_call(
        "POST", "/v1/admin/smpp-users", {**body, "system_id": "y", "allowed_ips": ["nope"]}
    )
    assert (status, error["code"]) == (400, "invalid_request")
    status, changed = await api.admin_call(
        "PATCH", f"/v1/admin/smpp-users/{user['id']}", {"password": "new1", "enabled": False}
    )
    assert (status, changed["enabled"]) == (200, False)
    async with api.database.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT password_hash FROM smpp_users WHERE id = $1", user["id"]
        )
    assert verify_password("new1", stored)
    assert not verify_password("pw123", stored)


async def test_connectors_enable_and_disable(api: Api) -> None:
    async with api.database.pool.acquire() as conn:
        cid = await conn.fetchval(
            "INSERT INTO connectors (name, host, port, system_id, password)"
            " VALUES ('sinch', '127.0.0.1', 2776, 'warpd', 'pw') RETURNING id"
        )
    status, listed = await api.admin_call("GET", "/v1/admin/connectors")
    assert [c["name"] for c in listed["connectors"]] == ["sinch"]
    assert "password" not in listed["connectors"][0]
    status, row = await api.admin_call("PATCH", f"/v1/admin/connectors/{cid}", {"enabled": False})
    assert (status, row["enabled"]) == (200, False)
    status, _error = await api.admin_call("PATCH", "/v1/admin/connectors/999", {"enabled": True})
    assert status == 404


@pytest.mark.parametrize("mode", ["replace", "append"])
async def test_tariff_csv_round_trip(api: Api, mode: str) -> None:
    status, plan = await api.admin_call(
        "POST", "/v1/admin/rate-plans", {"name": "retail", "currency": "EUR"}
    )
    assert status == 201
    csv_text = (
        "prefix,mcc_mnc,price,valid_from\n"
        "44,,0.0035,\n"
        "447,23415,0.004,2026-01-01T00:00:00+00:00\n"
        ",,0.05,\n"
    )
    path = f"/v1/admin/rate-plans/{plan['id']}/tariffs"
    status, result = await api.admin_call("POST", path, {"csv": csv_text, "mode": mode})
    assert (status, result["imported"]) == (201, 3), result
    status, exported, _ = await api.call("GET", path, token=ADMIN_TOKEN)
    assert status == 200
    assert exported.splitlines() == [
        "prefix,mcc_mnc,price,valid_from",
        ",,0.05,",
        "44,,0.0035,",
        "447,23415,0.004,2026-01-01T00:00:00+00:00",
    ]
    async with api.database.pool.acquire() as conn:
        prices = sorted(r[0] for r in await conn.fetch("SELECT price_micros FROM sms_rates"))
    assert prices == [3500, 4000, 50000]
    status, error = await api.admin_call("POST", path, {"csv": "prefix,price\n44,1\n"})
    assert (status, error["code"]) == (400, "invalid_csv")
    status, error = await api.admin_call(
        "POST", path, {"csv": "prefix,mcc_mnc,price,valid_from\n44,,0.0000001,\n"}
    )
    assert (status, error["code"]) == (400, "invalid_csv")
    assert "line 2" in error["message"]


async def test_demo_access_is_kept_across_restarts_and_opens_the_admin_api(api: Api) -> None:
    from warpd.api import demo_access
    from warpd.api.keys import ADMIN_GATE

    account, _ = await api.account_with_key()
    async with api.database.pool.acquire() as conn:
        first = await demo_access.provision(conn, account["id"], {})
        again = await demo_access.provision(conn, account["id"], first.credentials("x"))
        assert again == first
        await conn.execute("UPDATE api_keys SET revoked_at = now()")
        fresh = await demo_access.provision(conn, account["id"], first.credentials("x"))
    assert fresh.api_key != first.api_key
    assert fresh.admin_token == first.admin_token
    assert first.admin_token.startswith("wa_")
    status, body, _ = await api.call("GET", "/v1/admin/accounts", token=first.admin_token)
    assert status == 401
    api.app[ADMIN_GATE].also_accept(first.token_digest)
    status, body, _ = await api.call("GET", "/v1/admin/accounts", token=first.admin_token)
    assert status == 200, body
    assert (await api.call("GET", "/v1/balance", token=fresh.api_key))[0] == 200


async def test_carrier_costs_csv_round_trip_and_refusals(api: Api) -> None:
    async with api.database.pool.acquire() as conn:
        cid = await conn.fetchval(
            "INSERT INTO connectors (name, host, port, system_id, password)"
            " VALUES ('sinch', '127.0.0.1', 2776, 'warpd', 'pw') RETURNING id"
        )
    path = f"/v1/admin/connectors/{cid}/costs"
    text = (
        "prefix,mcc_mnc,cost,currency,quality,valid_from\n"
        "44,,0.0021,EUR,95,\n"
        "447,23415,0.0019,GBP,80,2026-02-01T00:00:00+00:00\n"
    )
    status, result = await api.admin_call("POST", path, {"csv": text})
    assert (status, result["imported"]) == (201, 2), result
    status, exported, _ = await api.call("GET", path, token=ADMIN_TOKEN)
    assert exported == text
    for bad, word in [
        ("prefix,mcc_mnc,cost,currency,quality,valid_from\n44,,0.1,eur,95,\n", "currency"),
        ("prefix,mcc_mnc,cost,currency,quality,valid_from\n44,,0.1,EUR,101,\n", "quality"),
        ("prefix,mcc_mnc,price,valid_from\n44,,0.1,\n", "header"),
    ]:
        status, error = await api.admin_call("POST", path, {"csv": bad})
        assert (status, error["code"]) == (400, "invalid_csv")
        assert word in error["message"]
    status, error = await api.admin_call("POST", "/v1/admin/connectors/999/costs", {"csv": text})
    assert status == 404
    async with api.database.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sms_costs") == 2


async def test_housekeeping_drops_old_idempotency_answers_and_codes(api: Api) -> None:
    import datetime as dt
    import uuid

    from warpd.api.housekeeping import purge_once

    account, key = await api.account_with_key()
    async with api.database.pool.acquire() as conn:
        key_id = await conn.fetchval("SELECT id FROM api_keys WHERE account_id = $1", account["id"])
        for name, age in (("old", dt.timedelta(days=3)), ("new", dt.timedelta(minutes=1))):
            await conn.execute(
                "INSERT INTO idempotency_keys (api_key_id, key, request_sha256, status, response,"
                " created_at) VALUES ($1, $2, '\\x00', 202, '{}', now() - $3::interval)",
                key_id, name, age,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO otp_codes (id, account_id, destination, code_sha256, max_attempts,"
                " expires_at) VALUES ($1, $2, '447700900123', $3, 3, now() - $4::interval)",
                uuid.uuid4(), account["id"], bytes(32), age,
            )  # fmt: skip
    assert await purge_once(api.app) == 2
    async with api.database.pool.acquire() as conn:
        assert await conn.fetchval("SELECT array_agg(key) FROM idempotency_keys") == ["new"]
        assert await conn.fetchval("SELECT count(*) FROM otp_codes") == 1
    assert key
