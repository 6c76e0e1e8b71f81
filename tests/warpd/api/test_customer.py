"""Customer endpoints: key auth failures, scopes, allow-lists, rate limits, bad input."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.warpd.api.conftest import Api
from warpd.api.auth import KeyStore
from warpd.api.errors import ApiError
from warpd.api.server import endpoints
from warpd.config.schema import ApiConfig


async def test_balance_with_a_good_key(api: Api) -> None:
    account, key = await api.account_with_key(balance=2_500_000)
    status, body, _ = await api.call("GET", "/v1/balance", token=key)
    assert status == 200
    assert body == {
        "account_id": account["id"],
        "currency": "EUR",
        "balance_micros": 2_500_000,
        "credit_limit_micros": 0,
        "reserved_micros": 0,
        "available_micros": 2_500_000,
        "charge_mode": "at_acceptance",
        "status": "active",
    }


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic Zm9vOmJhcg==",
        "Bearer",
        "Bearer wk_zzzzzzzz_" + "a" * 43,
        "Bearer wk_00000000_" + "a" * 43,
        "Bearer " + "x" * 5000,
    ],
)
async def test_bad_credentials_are_401_json(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    status, body, _ = await api.call("GET", "/v1/balance", headers=headers)
    assert (status, body["code"]) == (401, "unauthorized")


async def test_a_key_with_the_right_prefix_and_wrong_secret_is_refused(api: Api) -> None:
    _, key = await api.account_with_key()
    # The good key first: its verified header is remembered, the forged one is not it.
    assert (await api.call("GET", "/v1/balance", token=key))[0] == 200
    forged = key[:12] + ("A" if key[12] != "A" else "B") + key[13:]
    status, body, _ = await api.call("GET", "/v1/balance", token=forged)
    assert (status, body["code"]) == (401, "unauthorized")


async def test_a_remembered_header_lasts_as_long_as_its_keys_cache_entry(api: Api) -> None:
    account, key = await api.account_with_key()
    now = [100.0]
    store = KeyStore(api.database, ApiConfig(key_cache_seconds=5.0), clock=lambda: now[0])
    header = f"Bearer {key}"
    assert (await store.authenticate(header, "127.0.0.1", "sms:send")).account_id == account["id"]
    async with api.database.pool.acquire() as conn:  # revoked by another instance
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", key[:11])
    now[0] += 4.0
    assert (await store.authenticate(header, "127.0.0.1", "sms:send")).account_id == account["id"]
    with pytest.raises(ApiError) as other:  # another header with the key's prefix
        await store.authenticate(f"Bearer {key[:-1]}x", "127.0.0.1", "sms:send")
    assert other.value.status == 401
    with pytest.raises(ApiError) as scope:  # scope and address are checked every time
        await store.authenticate(header, "127.0.0.1", "admin")
    assert scope.value.status == 403
    now[0] += 2.0
    with pytest.raises(ApiError) as stale:
        await store.authenticate(header, "127.0.0.1", "sms:send")
    assert stale.value.status == 401
    # Forgotten (revoked on this instance) is at once, whatever the cache's age.
    _, second = await api.account_with_key()
    await store.authenticate(f"Bearer {second}", "127.0.0.1", "sms:send")
    store.forget(second[:11])
    async with api.database.pool.acquire() as conn:
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", second[:11])
    with pytest.raises(ApiError) as forgotten:
        await store.authenticate(f"Bearer {second}", "127.0.0.1", "sms:send")
    assert forgotten.value.status == 401


async def test_a_key_that_expires_while_remembered_is_refused(api: Api) -> None:
    _, key = await api.account_with_key()
    store = KeyStore(api.database, ApiConfig(key_cache_seconds=300.0))
    async with api.database.pool.acquire() as conn:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() + interval '1 second' WHERE prefix = $1",
            key[:11],
        )
    await store.authenticate(f"Bearer {key}", "127.0.0.1", "sms:send")
    await asyncio.sleep(1.1)
    with pytest.raises(ApiError) as expired:
        await store.authenticate(f"Bearer {key}", "127.0.0.1", "sms:send")
    assert expired.value.status == 401


async def test_an_expired_key_is_refused_and_one_expiring_later_is_not(api: Api) -> None:
    _, expired = await api.account_with_key()
    _, later = await api.account_with_key()
    async with api.database.pool.acquire() as conn:
        for key, seconds in ((expired, -1), (later, 3600)):
            await conn.execute(
                "UPDATE api_keys SET expires_at = now() + make_interval(secs => $2)"
                " WHERE prefix = $1",
                key[:11], seconds,
            )  # fmt: skip
    status, body, _ = await api.call("GET", "/v1/balance", token=expired)
    assert (status, body["code"]) == (401, "unauthorized")
    assert (await api.call("GET", "/v1/balance", token=later))[0] == 200


async def test_scope_and_ip_allow_list(api: Api) -> None:
    _, narrow = await api.account_with_key(scopes=["sms:send"])
    status, body, _ = await api.call("GET", "/v1/balance", token=narrow)
    assert (status, body["code"]) == (403, "missing_scope")
    _, fenced = await api.account_with_key(allowed_ips=["192.0.2.0/24"])
    status, body, _ = await api.call("GET", "/v1/balance", token=fenced)
    assert (status, body["code"]) == (403, "ip_not_allowed")
    _, home = await api.account_with_key(allowed_ips=["127.0.0.0/8"])
    assert (await api.call("GET", "/v1/balance", token=home))[0] == 200


async def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    _, key = await api.account_with_key(rate_per_s=1, burst=3)
    results = [await api.call("GET", "/v1/balance", token=key) for _ in range(5)]
    assert [r[0] for r in results] == [200, 200, 200, 429, 429]
    _status, body, response = results[3]
    assert body["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "1"
    await asyncio.sleep(1.05)
    assert (await api.call("GET", "/v1/balance", token=key))[0] == 200


async def test_another_keys_limit_is_its_own(api: Api) -> None:
    _, slow = await api.account_with_key(rate_per_s=0.01, burst=1)
    _, other = await api.account_with_key()
    assert (await api.call("GET", "/v1/balance", token=slow))[0] == 200
    assert (await api.call("GET", "/v1/balance", token=slow))[0] == 429
    assert (await api.call("GET", "/v1/balance", token=other))[0] == 200


BAD_BODIES = [
    (b"{not json", "application/json", 400, "bad_json"),
    (b"[]", "application/json", 400, "invalid_request"),
    (b'{"url": 5}', "application/json", 400, "invalid_request"),
    (b"{}", "application/json", 400, "invalid_request"),
    (b'{"url": "http://127.0.0.1:9/x", "colour": "red"}', "application/json", 400, "unknown_field"),
    (b'{"url": "ftp://example.com/x"}', "application/json", 400, "invalid_request"),
    (b'{"url": "http://127.0.0.1:9/", "events": ["sms"]}', "application/json", 400,
     "invalid_request"),
    (b'{"url": "http://127.0.0.1:9/", "timeout_ms": true}', "application/json", 400,
     "invalid_request"),
    (b'{"url": "http://127.0.0.1:9/"}', "text/plain", 415, "unsupported_media_type"),
    (b'{"url": "' + b"a" * 70_000 + b'"}', "application/json", 413, "body_too_large"),
    (b"\xff\xfe\x00", "application/json", 400, "bad_json"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "content_type", "status", "code"), BAD_BODIES)
async def test_bad_bodies_get_4xx_json(
    api: Api, data: bytes, content_type: str, status: int, code: str
) -> None:
    _, key = await api.account_with_key()
    got, body, _ = await api.call(
        "POST", "/v1/webhooks", token=key, data=data, headers={"Content-Type": content_type}
    )
    assert (got, body["code"]) == (status, code), body


@pytest.mark.parametrize(
    "query",
    [
        "from=yesterday",
        "from=2026-01-01T00:00:00",
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "limit=0",
        "limit=x",
        "state=lost",
        "cursor=%%%",
        "cursor=bm9wZQ",
    ],
)
async def test_bad_query_parameters_are_400(api: Api, query: str) -> None:
    _, key = await api.account_with_key()
    status, body, _ = await api.call("GET", f"/v1/cdr?{query}", token=key)
    assert (status, body["code"]) == (400, "invalid_request"), body


async def test_webhooks_crud_and_secret_shown_once(api: Api) -> None:
    _, key = await api.account_with_key()
    status, hook, _ = await api.call(
        "POST", "/v1/webhooks", token=key, json={"url": "http://127.0.0.1:9/hook"}
    )
    assert status == 201
    assert hook["secret"].startswith("whsec_")
    assert hook["events"] == ["dlr", "mo"]
    status, listed, _ = await api.call("GET", "/v1/webhooks", token=key)
    assert [h["id"] for h in listed["webhooks"]] == [hook["id"]]
    assert "secret" not in listed["webhooks"][0]
    assert len(listed["callback_secret"]) == 64
    _, other = await api.account_with_key()
    status, body, _ = await api.call("DELETE", f"/v1/webhooks/{hook['id']}", token=other)
    assert (status, body["code"]) == (404, "not_found")
    status, _, _ = await api.call("DELETE", f"/v1/webhooks/{hook['id']}", token=key)
    assert status == 204
    assert (await api.call("GET", "/v1/webhooks", token=key))[1]["webhooks"] == []


async def test_usage_and_cdr_read_the_message_rows_and_the_ledger(api: Api) -> None:
    account, key = await api.account_with_key(balance=1_000_000)
    async with api.database.pool.acquire() as conn:
        ids = [uuid.uuid4() for _ in range(3)]
        for i, mid in enumerate(ids):
            await conn.execute(
                "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr,"
                " body, parts, state, price_micros, currency, expires_at, created_at, mcc_mnc)"
                " VALUES ($1, $2, 'http', 'WARPD', '447700900123', 'hi', $3, $4, $5, 'EUR',"
                " now() + interval '1 day', now() - make_interval(days => $6), '23415')",
                mid, account["id"], i + 1, "delivered" if i < 2 else "failed",
                3500 * (i + 1), i,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO ledger (account_id, amount_micros, kind, message_id)"
                " VALUES ($1, $2, 'sms_charge', $3)",
                account["id"], -3500 * (i + 1), mid,
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO ledger (account_id, amount_micros, kind, message_id)"
            " VALUES ($1, 10500, 'sms_refund', $2)",
            account["id"], ids[2],
        )  # fmt: skip
    status, usage, _ = await api.call("GET", "/v1/usage?group_by=destination", token=key)
    assert status == 200
    assert usage["items"] == [
        {"destination": "23415", "messages": 3, "parts": 6, "amount_micros": 10500}
    ]
    status, daily, _ = await api.call("GET", "/v1/usage", token=key)
    assert [i["amount_micros"] for i in daily["items"]] == [0, 7000, 3500]
    status, text, _ = await api.call("GET", "/v1/usage?format=csv", token=key)
    assert text.splitlines()[0] == "day,messages,parts,amount_micros"
    status, page, _ = await api.call("GET", "/v1/cdr?limit=2", token=key)
    assert [c["parts"] for c in page["cdrs"]] == [3, 2]
    status, rest, _ = await api.call(
        "GET", f"/v1/cdr?limit=2&cursor={page['next_cursor']}", token=key
    )
    assert [c["parts"] for c in rest["cdrs"]] == [1]
    assert rest["next_cursor"] is None
    status, failed, _ = await api.call("GET", "/v1/cdr?state=failed", token=key)
    assert [c["id"] for c in failed["cdrs"]] == [str(ids[2])]
    status, text, _ = await api.call("GET", "/v1/cdr?format=csv", token=key)
    assert len(text.splitlines()) == 4
    _, stranger = await api.account_with_key()
    assert (await api.call("GET", "/v1/cdr", token=stranger))[1]["cdrs"] == []


async def test_voice_cdrs_are_one_row_per_call_with_a_cursor(api: Api) -> None:
    account, key = await api.account_with_key()
    other, _ = await api.account_with_key()
    async with api.database.pool.acquire() as conn:
        for i, (owner, disposition) in enumerate(
            [(account, "ANSWERED"), (account, "BUSY"), (account, "ANSWERED"), (other, "BUSY")]
        ):
            await conn.execute(
                "INSERT INTO voice_cdrs (id, account_id, direction, call_id_a, src_raw, dst_raw,"
                " dst_e164, start_at, end_at, duration_ms, billsec, disposition, price_micros,"
                " currency, recording, recording_path) VALUES ($1, $2, 'outbound', $3, '1000',"
                " '02079460000', '442079460000', now() - make_interval(mins => $4), now(), 3000,"
                " $5, $6, $7, 'EUR', $8, $9)",
                uuid.uuid4(), owner["id"], f"call-{i}",
                10 - i, 3 if disposition == "ANSWERED" else 0, disposition,
                500 if disposition == "ANSWERED" else 0,
                "recorded" if i == 0 else None, "/var/lib/warpd/rec/0.pcap" if i == 0 else None,
            )  # fmt: skip
    status, page, _ = await api.call("GET", "/v1/cdr?type=voice&limit=2", token=key)
    assert status == 200, page
    cdrs = page["cdrs"]
    assert [(c["disposition"], c["billsec"], c["price_micros"], c["recording"]) for c in cdrs] == [
        ("ANSWERED", 3, 500, "recorded"), ("BUSY", 0, 0, None)
    ]  # fmt: skip
    assert all("recording_path" not in c for c in cdrs)  # the operator's file system, not theirs
    status, rest, _ = await api.call(
        "GET", f"/v1/cdr?type=voice&limit=2&cursor={page['next_cursor']}", token=key
    )
    assert [c["disposition"] for c in rest["cdrs"]] == ["ANSWERED"]
    assert rest["next_cursor"] is None
    status, text, _ = await api.call("GET", "/v1/cdr?type=voice&format=csv", token=key)
    assert text.splitlines()[0].startswith("id,direction,src_e164,dst_e164,start_at")
    assert len(text.splitlines()) == 4  # the header and this account's three calls
    status, body, _ = await api.call("GET", "/v1/cdr?type=fax", token=key)
    assert (status, body["code"]) == (400, "invalid_request")


async def test_voice_usage_counts_calls_seconds_and_the_ledgers_charges(api: Api) -> None:
    account, key = await api.account_with_key()
    other, _ = await api.account_with_key()
    calls = [  # owner, days ago, number dialled, disposition, billsec, charged
        (account, 0, "442079460000", "ANSWERED", 90, 1500),
        (account, 0, "442079460001", "ANSWERED", 30, 500),
        (account, 0, "4930123456", "BUSY", 0, 0),
        (account, 1, "4930123457", "ANSWERED", 61, 2000),
        (account, 1, None, "FAILED", 0, 0),
        (other, 0, "442079460000", "ANSWERED", 600, 9000),
    ]
    async with api.database.pool.acquire() as conn:
        for i, (owner, days, number, disposition, billsec, charged) in enumerate(calls):
            cdr = uuid.uuid4()
            await conn.execute(
                "INSERT INTO voice_cdrs (id, account_id, direction, call_id_a, src_raw, dst_raw,"
                " dst_e164, start_at, end_at, duration_ms, billsec, disposition, price_micros,"
                " currency) VALUES ($1, $2, 'outbound', $3, '1000', coalesce($4, 'garbage'), $4,"
                " date_trunc('day', now()) - make_interval(days => $5) + interval '1 minute',"
                " now(), 1000 * $6, $6, $7, $8, 'EUR')",
                cdr, owner["id"], f"usage-{i}", number, days, billsec, disposition, charged,
            )  # fmt: skip
            if charged:
                await conn.execute(
                    "INSERT INTO ledger (account_id, amount_micros, kind, call_id)"
                    " VALUES ($1, $2, 'voice_charge', $3)",
                    owner["id"], -charged, cdr,
                )  # fmt: skip
    status, daily, _ = await api.call("GET", "/v1/usage?type=voice", token=key)
    assert status == 200, daily
    assert (daily["type"], daily["currency"]) == ("voice", "EUR")
    rows = [(i["calls"], i["answered"], i["billsec"], i["minutes"], i["amount_micros"])
            for i in daily["items"]]  # fmt: skip
    assert rows == [(2, 1, 61, 1.02, 2000), (3, 2, 120, 2.0, 2000)]
    assert daily["totals"] == {
        "calls": 5, "answered": 3, "billsec": 181, "minutes": 3.02, "amount_micros": 4000
    }  # fmt: skip
    status, places, _ = await api.call("GET", "/v1/usage?type=voice&group_by=destination",
                                       token=key)  # fmt: skip
    assert status == 200, places
    assert [(i["destination"], i["calls"], i["billsec"], i["amount_micros"])
            for i in places["items"]] == [("DE", 2, 61, 2000), ("GB", 2, 120, 2000),
                                          ("unknown", 1, 0, 0)]  # fmt: skip
    status, text, response = await api.call(
        "GET", "/v1/usage?type=voice&group_by=destination&format=csv", token=key
    )
    assert (status, response.content_type) == (200, "text/csv")
    assert text.splitlines() == [
        "destination,calls,answered,billsec,minutes,amount_micros",
        "DE,2,1,61,1.02,2000", "GB,2,2,120,2.0,2000", "unknown,1,0,0,0.0,0",
    ]  # fmt: skip
    # SMS usage is unchanged by calls, and a window without calls is empty, not an error.
    status, sms, _ = await api.call("GET", "/v1/usage", token=key)
    assert (sms["type"], sms["items"], sms["totals"]["amount_micros"]) == ("sms", [], 0)
    status, empty, _ = await api.call(
        "GET", "/v1/usage?type=voice&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", token=key
    )
    assert (status, empty["items"], empty["totals"]["calls"]) == (200, [], 0)
    status, body, _ = await api.call("GET", "/v1/usage?type=fax", token=key)
    assert (status, body["code"]) == (400, "invalid_request")
    status, body, _ = await api.call("GET", "/v1/usage?type=voice&group_by=hour", token=key)
    assert (status, body["code"]) == (400, "invalid_request")


async def test_every_route_is_documented_and_every_documented_route_exists(api: Api) -> None:
    status, doc, _ = await api.call("GET", "/v1/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    # The console's HTML pages (warpd/console/) are mounted on the same app: not API routes.
    served = {
        (r.method, r.resource.canonical)
        for r in api.app.router.routes()
        if r.method != "HEAD"
        and r.resource is not None
        and not r.resource.canonical.startswith("/console")
    }
    assert documented == served
    assert {(e.method, e.path) for e in endpoints()} == served
    status, page, _ = await api.call("GET", "/docs")
    assert status == 200
    assert "/v1/balance" in page
