"""The send API end to end: warpd with the demo's simulator carrier, real PostgreSQL, loopback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.warpd.api.conftest import Http
from tests.warpd.api.test_webhooks import Receiver, readme_verify
from warpd.api import signing


async def wait_state(http: Http, token: str, message_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        status, body = await http.call("GET", f"/v1/sms/{message_id}", token)
        assert status == 200, body
        if body["state"] == state or time.monotonic() > deadline:
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)


async def test_send_see_delivered_get_the_signed_receipt_and_the_charge(http: Http) -> None:
    receiver = await Receiver().start()
    try:
        account, (key,) = await http.customer()
        status, hook = await http.call("POST", "/v1/webhooks", key, {"url": receiver.url})
        assert status == 201, hook
        status, sent = await http.call("POST", "/v1/sms", key, {
            "to": "+447700900123", "from": "WARPD", "text": "Your code is 1234",
            "client_ref": "order-1",
        })  # fmt: skip
        assert status == 202, sent
        assert (sent["parts"], sent["encoding"], sent["price_micros"]) == (1, "gsm7", 5000)
        message = await wait_state(http, key, sent["id"], "delivered")
        assert message["state"] == "delivered"
        assert message["to"] == "447700900123"
        assert [p["state"] for p in message["part_states"]] == ["delivered"]
        await asyncio.wait_for(receiver.posted.wait(), 10)
        headers, body, _ = receiver.posts[0]
        assert readme_verify()(hook["secret"], headers[signing.HEADER], body)
        event = __import__("orjson").loads(body)
        assert (event["type"], event["message_id"], event["state"]) == (
            "dlr", sent["id"], "delivered"
        )  # fmt: skip
        status, balance = await http.call("GET", "/v1/balance", key)
        assert balance["balance_micros"] == 1_000_000 - 5000
        status, cdr = await http.call("GET", "/v1/cdr", key)
        assert [(c["id"], c["state"], c["price_micros"]) for c in cdr["cdrs"]] == [
            (sent["id"], "delivered", 5000)
        ]
        status, metrics = await http.call("GET", "/metrics")
        assert 'warpd_webhook_attempts_total{outcome="delivered"} 1.0' in metrics
        assert "warpd_webhook_busy 0.0" in metrics
        assert account
    finally:
        await receiver.stop()


async def test_unicode_long_text_and_hex_bodies(http: Http) -> None:
    _, (key,) = await http.customer()
    status, sent = await http.call("POST", "/v1/sms/send", key,
                                   {"to": "447700900123", "from": "447700900999",
                                    "text": "Привет " * 20})  # fmt: skip
    assert status == 202, sent
    assert sent["encoding"] == "ucs2"
    assert sent["parts"] == 3
    status, sent = await http.call("POST", "/v1/sms", key, {
        "to": "447700900123", "from": "WARPD", "body": "0102ff", "data_coding": 4})  # fmt: skip
    assert (status, sent["encoding"]) == (202, "binary")


async def test_refusals_are_4xx_json_with_the_acceptance_codes(http: Http) -> None:
    account, (key,) = await http.customer(balance=0)
    cases = [
        ({"to": "not-a-number", "from": "WARPD", "text": "x"}, 400, "invalid_destination"),
        ({"to": "447700900123", "from": "WAY-TOO-LONG-SENDER", "text": "x"}, 400,
         "invalid_request"),
        ({"to": "447700900123", "from": "WARPD"}, 400, "invalid_request"),
        ({"to": "447700900123", "from": "WARPD", "text": "x", "body": "00"}, 400,
         "invalid_request"),
        ({"to": "447700900123", "from": "WARPD", "body": "zz", "data_coding": 0}, 400,
         "invalid_request"),
        ({"to": 447700900123, "from": "WARPD", "text": "x"}, 400, "invalid_request"),
        ({"to": "447700900123", "from": "WARPD", "text": "x"}, 402, "insufficient_funds"),
        ({"to": "447700900123", "from": "WARPD", "text": "x",
          "callback_url": "gopher://x"}, 400, "invalid_request"),
    ]  # fmt: skip
    for body, status, code in cases:
        got, answer = await http.call("POST", "/v1/sms", key, body)
        assert (got, answer["code"]) == (status, code), (body, answer)
    assert await http.running.value("SELECT count(*) FROM messages") == 0
    assert account


async def test_idempotent_retries_return_the_first_answer(http: Http) -> None:
    _, (key,) = await http.customer()
    body = {"to": "447700900123", "from": "WARPD", "text": "once"}
    headers = {"Idempotency-Key": "k-1"}
    first = await http.call("POST", "/v1/sms", key, body, headers)
    again = await asyncio.gather(*(http.call("POST", "/v1/sms", key, body, headers)
                                   for _ in range(5)))  # fmt: skip
    assert first[0] == 202
    assert all(a == first for a in again if a[0] == 202)
    assert {a[0] for a in again} <= {202, 409}
    status, error = await http.call("POST", "/v1/sms", key, {**body, "text": "other"}, headers)
    assert (status, error["code"]) == (422, "idempotency_key_reused")
    assert await http.running.value("SELECT count(*) FROM messages") == 1


async def test_batch_answers_each_message(http: Http) -> None:
    _, (key,) = await http.customer()
    messages = [{"to": "447700900123", "from": "WARPD", "text": f"m{i}"} for i in range(5)]
    messages[2]["to"] = "12"
    status, result = await http.call("POST", "/v1/sms/batch", key, {"messages": messages})
    assert status == 202, result
    assert (result["accepted"], result["refused"]) == (4, 1)
    assert result["results"][2]["code"] == "invalid_destination"
    assert all("id" in r for i, r in enumerate(result["results"]) if i != 2)
    status, error = await http.call("POST", "/v1/sms/batch", key, {"messages": [{}] * 1001})
    assert (status, error["code"]) == (400, "invalid_request")
    status, listed = await http.call("GET", "/v1/sms?limit=3", key)
    assert len(listed["messages"]) == 3
    assert listed["next_cursor"]


async def test_many_keys_sending_at_once_never_overdraw(http: Http) -> None:
    affordable = 40
    account, keys = await http.customer(balance=5000 * affordable, keys=8)
    body = {"to": "447700900123", "from": "WARPD", "text": "race"}
    results = await asyncio.gather(
        *(http.call("POST", "/v1/sms", keys[i % len(keys)], body) for i in range(120))
    )
    statuses = [r[0] for r in results]
    assert statuses.count(202) == affordable, statuses
    assert set(statuses) == {202, 402}
    rows = await http.running.query(
        "SELECT a.balance_micros, (SELECT sum(amount_micros) FROM ledger l"
        " WHERE l.account_id = a.id) AS total FROM accounts a WHERE a.id = $1", account,
    )  # fmt: skip
    assert rows[0]["balance_micros"] == rows[0]["total"] == 0


async def test_an_admin_change_is_visible_to_the_next_message(http: Http) -> None:
    account, (key,) = await http.customer()
    body = {"to": "447700900123", "from": "WARPD", "text": "x"}
    assert (await http.call("POST", "/v1/sms", key, body))[0] == 202
    status, _ = await http.call("PATCH", f"/v1/admin/accounts/{account}",
                                json={"status": "suspended"})  # fmt: skip
    assert status == 200
    status, error = await http.call("POST", "/v1/sms", key, body)
    assert (status, error["code"]) == (403, "account_suspended")
    await http.call("PATCH", f"/v1/admin/accounts/{account}", json={"status": "active"})
    status, empty = await http.call("POST", "/v1/sms", key, body)
    assert status == 202, empty


async def test_route_decision_says_what_the_router_would_do(http: Http) -> None:
    account, _ = await http.customer()
    status, answer = await http.call("POST", "/v1/admin/route/decision",
                                     json={"account_id": account, "destination": "+447700900123",
                                           "source": "WARPD"})  # fmt: skip
    assert status == 200, answer
    assert answer["routed"] is True
    assert [c["name"] for c in answer["candidates"]] == ["demo-sim"]
    assert "route" in answer["explain"]
    connector = answer["candidates"][0]["id"]
    status, _ = await http.call("PATCH", f"/v1/admin/connectors/{connector}",
                                json={"enabled": False})  # fmt: skip
    assert status == 200
    body = {"account_id": account, "destination": "447700900123"}
    status, answer = await http.call("POST", "/v1/admin/route/decision", json=body)
    assert (status, answer["routed"]) == (200, False)
    assert any("disabled" in r for r in answer["reasons"]), answer
    status, error = await http.call("POST", "/v1/admin/route/decision",
                                    json={"account_id": account, "destination": "abc"})  # fmt: skip
    assert (status, error["code"]) == (400, "invalid_destination")


async def test_the_demo_credentials_carry_a_working_api_key_and_admin_token(http: Http) -> None:
    creds = __import__("json").loads(
        (http.running.state_dir / "demo-credentials.json").read_text()
    )["http"]
    assert creds["base_url"] == http.base
    status, balance = await http.call("GET", "/v1/balance", creds["api_key"])
    assert (status, balance["balance_micros"] > 0) == (200, True)
    status, accounts = await http.call("GET", "/v1/admin/accounts", creds["admin_token"])
    assert status == 200
    assert "demo" in [a["name"] for a in accounts["accounts"]]
    message = {"to": "447700900123", "from": "WARPD", "text": "hi"}
    status, sent = await http.call("POST", "/v1/sms", creds["api_key"], message)
    assert status == 202, sent
