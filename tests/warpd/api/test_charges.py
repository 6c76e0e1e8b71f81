"""The seed-compatible billing endpoints: POST /charges, GET /balances/{id}, GET /cdr."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from tests.warpd.api.conftest import ADMIN_TOKEN, Api


async def _account(api: Api, balance: int, credit_limit: int = 0) -> dict[str, Any]:
    status, account = await api.admin_call(
        "POST",
        "/v1/admin/accounts",
        {"name": f"crm-{uuid.uuid4().hex[:8]}", "currency": "EUR", "balance_micros": balance,
         "credit_limit_micros": credit_limit},
    )  # fmt: skip
    assert status == 201, account
    return account


def _charge(account_id: int, amount: int, key: str, reason: str = "set-up fee") -> dict[str, Any]:
    return {"account_id": account_id, "amount_micros": amount, "reason": reason,
            "idempotency_key": key}  # fmt: skip


async def _ledger_sums_to_balances(api: Api) -> bool:
    async with api.database.pool.acquire() as conn:
        return bool(
            await conn.fetchval(
                "SELECT bool_and(balance_micros = (SELECT coalesce(sum(amount_micros), 0)"
                " FROM ledger l WHERE l.account_id = a.id)) FROM accounts a"
            )
        )


async def test_a_charge_is_a_negative_adjustment_with_its_reason_and_an_audit_row(
    api: Api,
) -> None:
    account = await _account(api, balance=1_000_000)
    status, charged = await api.admin_call(
        "POST", "/charges", _charge(account["id"], 250_000, "c1")
    )
    assert status == 201, charged
    assert charged["balance_after_micros"] == 750_000
    assert (charged["amount_micros"], charged["currency"]) == (250_000, "EUR")
    status, ledger = await api.admin_call("GET", f"/v1/admin/accounts/{account['id']}/ledger")
    last = ledger["ledger"][-1]
    assert (last["id"], last["amount_micros"], last["kind"], last["note"]) == (
        charged["charge_id"], -250_000, "adjustment", "set-up fee"
    )  # fmt: skip
    status, balance = await api.admin_call("GET", f"/balances/{account['id']}")
    assert (status, balance) == (200, {
        "account_id": account["id"], "balance_micros": 750_000, "credit_limit_micros": 0,
        "reserved_micros": 0, "available_micros": 750_000, "currency": "EUR",
    })  # fmt: skip
    status, audit = await api.admin_call("GET", "/v1/admin/audit")
    entry = audit["entries"][-1]
    assert (entry["action"], entry["object_id"]) == ("account.charge", str(account["id"]))
    assert (entry["before"]["balance_micros"], entry["after"]["balance_micros"]) == (
        1_000_000, 750_000
    )  # fmt: skip
    assert entry["actor"].startswith("admin@127.0.0.1")
    assert await _ledger_sums_to_balances(api)


async def test_a_retried_charge_answers_the_first_and_moves_nothing_again(api: Api) -> None:
    account = await _account(api, balance=1_000_000)
    body = _charge(account["id"], 100_000, "invoice-42")
    answers = await asyncio.gather(*(api.admin_call("POST", "/charges", body) for _ in range(5)))
    assert [status for status, _ in answers] == [201] * 5
    assert len({a["charge_id"] for _, a in answers}) == 1
    assert {a["balance_after_micros"] for _, a in answers} == {900_000}
    status, balance = await api.admin_call("GET", f"/balances/{account['id']}")
    assert balance["balance_micros"] == 900_000
    status, audit = await api.admin_call("GET", "/v1/admin/audit")
    assert [e["action"] for e in audit["entries"]].count("account.charge") == 1
    # The same key with another amount, reason or account is not a retry.
    other = await _account(api, balance=1_000_000)
    for changed in (
        _charge(account["id"], 100_001, "invoice-42"),
        _charge(account["id"], 100_000, "invoice-42", reason="other"),
        _charge(other["id"], 100_000, "invoice-42"),
    ):
        status, refused = await api.admin_call("POST", "/charges", changed)
        assert (status, refused["code"]) == (422, "idempotency_key_reused")
    assert (await api.admin_call("GET", f"/balances/{other['id']}"))[1]["balance_micros"] == (
        1_000_000
    )


async def test_a_charge_past_the_credit_limit_is_402_and_moves_nothing(api: Api) -> None:
    account = await _account(api, balance=100, credit_limit=50)
    status, refused = await api.admin_call("POST", "/charges", _charge(account["id"], 151, "k1"))
    assert (status, refused["code"]) == (402, "insufficient_funds")
    status, charged = await api.admin_call("POST", "/charges", _charge(account["id"], 150, "k2"))
    assert (status, charged["balance_after_micros"]) == (201, -50)
    status, refused = await api.admin_call("POST", "/charges", _charge(account["id"], 1, "k3"))
    assert (status, refused["code"]) == (402, "insufficient_funds")
    # A refused key was not used up: it may go through once the money is there.
    await api.admin_call(
        "POST", f"/v1/admin/accounts/{account['id']}/topup", {"amount_micros": 1_000}
    )
    status, charged = await api.admin_call("POST", "/charges", _charge(account["id"], 151, "k1"))
    assert (status, charged["balance_after_micros"]) == (201, 799)
    async with api.database.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM charges") == 2
    assert await _ledger_sums_to_balances(api)


async def test_concurrent_charges_never_pass_the_credit_limit(api: Api) -> None:
    account = await _account(api, balance=1_000)
    answers = await asyncio.gather(
        *(api.admin_call("POST", "/charges", _charge(account["id"], 100, f"k{i}"))
          for i in range(25))
    )  # fmt: skip
    assert sorted(status for status, _ in answers) == [201] * 10 + [402] * 15
    assert (await api.admin_call("GET", f"/balances/{account['id']}"))[1]["balance_micros"] == 0
    assert await _ledger_sums_to_balances(api)


async def test_charges_and_balances_refuse_bad_requests(api: Api) -> None:
    account = await _account(api, balance=1_000)
    for body in (
        {"account_id": account["id"], "amount_micros": 10, "reason": "x"},
        _charge(account["id"], 0, "k"),
        _charge(account["id"], -10, "k"),
        _charge(account["id"], 10, ""),
        _charge(account["id"], 10, "k", reason=""),
        {**_charge(account["id"], 10, "k"), "currency": "EUR"},
    ):
        status, refused = await api.admin_call("POST", "/charges", body)
        assert status == 400, (body, refused)
    status, refused = await api.admin_call("POST", "/charges", _charge(10**9, 10, "k"))
    assert (status, refused["code"]) == (404, "not_found")
    status, refused = await api.admin_call("GET", "/balances/999999")
    assert (status, refused["code"]) == (404, "not_found")
    assert (await api.admin_call("GET", "/balances/0"))[0] == 400
    status, _ = await api.admin_call(
        "PATCH", f"/v1/admin/accounts/{account['id']}", {"status": "closed"}
    )
    assert status == 200
    status, refused = await api.admin_call("POST", "/charges", _charge(account["id"], 10, "k"))
    assert (status, refused["code"]) == (409, "account_closed")
    for method, path in (("POST", "/charges"), ("GET", f"/balances/{account['id']}"),
                         ("GET", "/cdr")):  # fmt: skip
        status, body, _ = await api.call(method, path, json=_charge(account["id"], 1, "z"))
        assert (status, body["code"]) == (401, "unauthorized")
    _, key = await api.account_with_key()
    status, body, _ = await api.call("GET", "/cdr", token=key)
    assert (status, body["code"]) == (401, "unauthorized")
    async with api.database.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM charges") == 0


async def test_cdr_lists_every_account_or_one_by_time_as_json_or_csv(api: Api) -> None:
    first, second = await _account(api, balance=0), await _account(api, balance=0)
    ids = []
    async with api.database.pool.acquire() as conn:
        for i, account in enumerate((first, second, first)):
            ids.append(uuid.uuid4())
            await conn.execute(
                "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr,"
                " body, parts, state, price_micros, currency, expires_at, created_at)"
                " VALUES ($1, $2, 'http', 'WARPD', '447700900123', 'hi', 1, $3, 3500, 'EUR',"
                " now() + interval '1 day', now() - make_interval(days => $4))",
                ids[-1], account["id"], "failed" if i == 1 else "delivered", 10 - i,
            )  # fmt: skip
    status, page = await api.admin_call("GET", "/cdr")
    assert status == 200
    assert [c["id"] for c in page["cdrs"]] == [str(i) for i in ids]
    assert [c["account_id"] for c in page["cdrs"]] == [first["id"], second["id"], first["id"]]
    status, mine = await api.admin_call("GET", f"/cdr?account_id={first['id']}")
    assert [c["id"] for c in mine["cdrs"]] == [str(ids[0]), str(ids[2])]
    status, failed = await api.admin_call("GET", "/cdr?state=failed")
    assert [c["id"] for c in failed["cdrs"]] == [str(ids[1])]
    status, page = await api.admin_call("GET", "/cdr?limit=2")
    assert page["next_cursor"] is not None
    status, rest = await api.admin_call("GET", f"/cdr?limit=2&cursor={page['next_cursor']}")
    assert [c["id"] for c in rest["cdrs"]] == [str(ids[2])]
    status, recent = await api.admin_call("GET", "/cdr?from=" + _days_ago(9))
    assert [c["id"] for c in recent["cdrs"]] == [str(ids[1]), str(ids[2])]
    status, text, response = await api.call("GET", "/cdr?format=csv", token=ADMIN_TOKEN)
    assert (status, response.content_type) == (200, "text/csv")
    lines = text.splitlines()
    assert lines[0].startswith("account_id,id,client_ref,")
    assert len(lines) == 4
    assert lines[2].startswith(f"{second['id']},{ids[1]},")
    for query in ("from=yesterday", "account_id=0", "cursor=garbage", "format=xml",
                  "limit=0", f"from={_days_ago(1)}&to={_days_ago(2)}"):  # fmt: skip
        status, refused = await api.admin_call("GET", f"/cdr?{query}")
        assert (status, refused["code"]) == (400, "invalid_request"), query


def _days_ago(days: int) -> str:
    """An RFC 3339 time ``days`` ago, escaped for a query string."""
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(days=days, minutes=1)
    return moment.isoformat().replace("+", "%2B")
