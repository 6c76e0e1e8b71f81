"""Both charge modes end to end: warpd, a simulator carrier with mixed outcomes, real PostgreSQL.

At acceptance: charged when committed, refunded once when the message fails.
On delivery: reserved when committed (the balance does not move, what may be
spent does), charged once when delivered, released once when it fails or
expires. In both, the ledger sums to the balance, nothing is charged twice, and
the daemon's in-memory balances end where PostgreSQL does.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.warpd.api.conftest import Http
from tests.warpd.sms.helpers import (
    add_connector,
    ledger_matches_balances,
    only_route,
    reloaded,
    start_simulator,
    wait_for,
)
from warpd.sim import SmscSimulator

PRICE = 5000  # the demo plan's price of a part
COST = 3200  # what the carrier charges us for one
MIX = {"DELIVRD": 0.5, "UNDELIV": 0.25, "EXPIRED": 0.25}


async def carrier(http: Http, **config: Any) -> SmscSimulator:
    simulator = await start_simulator(outcomes=MIX, seed=7, **config)
    connector = await add_connector(http.running, "mixed", simulator.port, tps=10_000)
    await http.running.query(
        "INSERT INTO sms_costs (connector_id, prefix, cost_micros, currency)"
        " VALUES ($1, '44', $2, 'EUR')",
        connector,
        COST,
    )
    route = await only_route(http.running, [connector])
    await reloaded(http.running, [connector], route)
    return simulator


async def account(http: Http, mode: str, balance: int, keys: int = 1) -> tuple[int, list[str]]:
    plan = await http.running.value("SELECT id FROM rate_plans WHERE name = 'demo'")
    status, made = await http.call("POST", "/v1/admin/accounts", json={
        "name": f"mode-{mode}-{balance}", "currency": "EUR", "rate_plan_id": plan,
        "balance_micros": balance, "charge_mode": mode,
    })  # fmt: skip
    assert status == 201, made
    assert made["charge_mode"] == mode
    tokens = []
    for _ in range(keys):
        status, key = await http.call("POST", "/v1/admin/keys", json={"account_id": made["id"]})
        assert status == 201, key
        tokens.append(key["key"])
    return made["id"], tokens


async def send(http: Http, keys: list[str], count: int) -> Counter[int]:
    """``count`` sends spread over ``keys`` at once; the statuses they got."""
    return (await send_ids(http, keys, count))[0]


async def send_ids(http: Http, keys: list[str], count: int) -> tuple[Counter[int], list[str]]:
    body = {"to": "+447700900123", "from": "WARPD", "text": "Your code is 1234"}
    answers = await asyncio.gather(
        *(http.call("POST", "/v1/sms", keys[i % len(keys)], body) for i in range(count))
    )
    for status, answer in answers:
        assert status in (202, 402), answer
        if status == 402:
            assert answer["code"] == "insufficient_funds"
    ids = [answer["id"] for status, answer in answers if status == 202]
    return Counter(status for status, _ in answers), ids


async def all_final(http: Http, account_id: int) -> dict[str, int]:
    async def states() -> dict[str, int]:
        rows = await http.running.query(
            "SELECT state, count(*) AS n FROM messages WHERE account_id = $1 GROUP BY state",
            account_id,
        )
        return {r["state"]: r["n"] for r in rows}

    final: dict[str, int] = {}

    async def poll() -> None:
        while True:
            final.update(await states())
            if not {"queued", "submitted"} & set(final):
                return
            final.clear()
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 20)
    return final


async def money(http: Http, account_id: int) -> dict[str, Any]:
    row = await http.running.query(
        "SELECT balance_micros, reserved_micros, credit_limit_micros FROM accounts WHERE id = $1",
        account_id,
    )
    ledger = await http.running.query(
        "SELECT kind, note, count(*) AS n, count(DISTINCT message_id) AS messages,"
        " sum(amount_micros) AS total FROM ledger WHERE account_id = $1 AND kind LIKE 'sms%'"
        " GROUP BY kind, note",
        account_id,
    )
    open_reservations = await http.running.value(
        "SELECT count(*) FROM sms_reservations WHERE account_id = $1", account_id
    )
    return {**dict(row[0]), "ledger": {(r["kind"], r["note"]): dict(r) for r in ledger},
            "open": open_reservations}  # fmt: skip


async def in_memory_settles(http: Http, account_id: int, expected: int) -> None:
    """The daemon's spendable balance converges on PostgreSQL's (no hold left behind)."""
    sms = http.running.daemon.sms
    assert sms is not None
    await http.call("POST", f"/v1/admin/accounts/{account_id}/topup",
                    json={"amount_micros": 1, "note": "reload"})  # fmt: skip
    await wait_for(lambda: sms.balances.available(account_id) == expected + 1,
                   what=f"in-memory balance {expected + 1}")  # fmt: skip


async def test_both_modes_on_one_daemon(http: Http) -> None:
    """One warpd (its start is most of the cost), one carrier, an account per case."""
    simulator = await carrier(http, receipt_delay=0.4)
    try:
        await on_delivery_reserves_then_charges_delivered_and_releases_failed(http)
        await a_mode_change_settles_each_message_the_way_it_was_paid(http)
    finally:
        await simulator.stop()


async def on_delivery_reserves_then_charges_delivered_and_releases_failed(http: Http) -> None:
    # Room for 20 messages; 30 sent at once from three keys: the reservations,
    # not the balance, are what refuse the last ten.
    account_id, keys = await account(http, "on_delivery", 20 * PRICE, keys=3)
    statuses = await send(http, keys, 30)
    assert statuses == {202: 20, 402: 10}
    before = await money(http, account_id)
    # Receipts are 0.4 s away: everything accepted is reserved, nothing charged.
    assert (before["balance_micros"], before["reserved_micros"]) == (20 * PRICE, 20 * PRICE)
    assert before["ledger"] == {}
    status, shown = await http.call("GET", "/v1/balance", keys[0])
    assert status == 200, shown
    assert (shown["reserved_micros"], shown["available_micros"]) == (20 * PRICE, 0)
    assert shown["charge_mode"] == "on_delivery"

    states = await all_final(http, account_id)
    delivered = states.get("delivered", 0)
    assert sum(states.values()) == 20, states
    assert 0 < delivered < 20, states
    after = await money(http, account_id)
    assert after["open"] == 0
    assert after["reserved_micros"] == 0
    assert after["balance_micros"] == (20 - delivered) * PRICE
    charged = after["ledger"][("sms_charge", "on delivery")]
    assert (charged["n"], charged["messages"]) == (delivered, delivered)
    assert set(after["ledger"]) == {("sms_charge", "on delivery")}  # no refund of a reserve
    delivered_charged = await http.running.value(
        "SELECT count(*) FROM messages m JOIN ledger l ON l.message_id = m.id"
        " WHERE m.account_id = $1 AND m.state = 'delivered'",
        account_id,
    )
    assert delivered_charged == delivered
    await ledger_matches_balances(http.running)
    await in_memory_settles(http, account_id, (20 - delivered) * PRICE)
    status, cdrs = await http.call("GET", f"/cdr?account_id={account_id}&limit=1000")
    assert status == 200, cdrs
    assert {(c["price_micros"], c["cost_micros"], c["margin_micros"])
            for c in cdrs["cdrs"]} == {(PRICE, COST, PRICE - COST)}  # fmt: skip


async def a_mode_change_settles_each_message_the_way_it_was_paid(http: Http) -> None:
    account_id, keys = await account(http, "on_delivery", 10 * PRICE)
    statuses, reserved = await send_ids(http, keys, 5)
    assert statuses == {202: 5}
    status, changed = await http.call(
        "PATCH", f"/v1/admin/accounts/{account_id}", json={"charge_mode": "at_acceptance"}
    )
    assert (status, changed["charge_mode"]) == (200, "at_acceptance")
    # Five are reserved, so five more fit; the sixth does not.
    statuses, charged = await send_ids(http, keys, 6)
    assert statuses == {202: 5, 402: 1}
    await all_final(http, account_id)
    rows = await http.running.query(
        "SELECT m.id::text, m.state, array_remove(array_agg(l.kind || ':' || l.note"
        " ORDER BY l.id), NULL) AS moves FROM messages m"
        " LEFT JOIN ledger l ON l.message_id = m.id WHERE m.account_id = $1 GROUP BY m.id",
        account_id,
    )
    moves = {r["id"]: (r["state"], list(r["moves"])) for r in rows}
    for message_id in reserved:  # paid on delivery, as when it was accepted
        state, made = moves[message_id]
        assert made == (["sms_charge:on delivery"] if state == "delivered" else []), state
    for message_id in charged:  # paid at acceptance
        state, made = moves[message_id]
        assert made == (["sms_charge:"] if state == "delivered"
                        else ["sms_charge:", f"sms_refund:{state}"]), state  # fmt: skip
    paid = sum(1 for state, _ in moves.values() if state == "delivered")
    after = await money(http, account_id)
    assert after["open"] == 0
    assert after["reserved_micros"] == 0
    assert after["balance_micros"] == (10 - paid) * PRICE
    await in_memory_settles(http, account_id, (10 - paid) * PRICE)
    await ledger_matches_balances(http.running)
