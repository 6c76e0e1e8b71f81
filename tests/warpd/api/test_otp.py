"""One-time codes: sent through the template, verified once, within time and attempts."""

from __future__ import annotations

import asyncio
import re

from tests.warpd.api.conftest import Http


async def sent_code(http: Http, message_id: str) -> str:
    rows = await http.running.query("SELECT body FROM messages WHERE id = $1::uuid", message_id)
    from protocols.smpp.text import decode_text

    text = decode_text(bytes(rows[0]["body"]), 0)
    assert isinstance(text, str)
    match = re.search(r"\d{4,10}", text)
    assert match is not None, text
    return match[0]


async def test_send_and_verify_once(http: Http) -> None:
    account, (key,) = await http.customer()
    status, template = await http.call(
        "PUT", f"/v1/admin/accounts/{account}/otp-template",
        json={"text": "ACME code: {code}", "code_length": 8, "max_attempts": 2},
    )  # fmt: skip
    assert status == 200, template
    status, otp = await http.call("POST", "/v1/otp", key, {"to": "447700900123"})
    assert status == 202, otp
    code = await sent_code(http, otp["message_id"])
    assert len(code) == 8
    body = await http.running.value("SELECT body FROM messages WHERE id = $1::uuid",
                                    otp["message_id"])  # fmt: skip
    assert bytes(body).startswith(b"ACME code: ")  # type: ignore[arg-type]
    status, wrong = await http.call("POST", "/v1/otp/verify", key,
                                    {"id": otp["id"], "code": "0" * 9})  # fmt: skip
    assert (status, wrong["verified"], wrong["attempts_left"]) == (200, False, 1)
    status, right = await http.call("POST", "/v1/otp/verify", key, {"id": otp["id"], "code": code})
    assert (status, right["verified"]) == (200, True)
    status, again = await http.call("POST", "/v1/otp/verify", key, {"id": otp["id"], "code": code})
    assert (status, again["code"]) == (409, "otp_used")
    stored = await http.running.value("SELECT code_sha256 FROM otp_codes")
    assert code.encode() not in bytes(stored)  # type: ignore[arg-type]


async def test_parallel_guesses_cannot_exceed_the_attempt_limit(http: Http) -> None:
    _, (key,) = await http.customer()
    status, otp = await http.call("POST", "/v1/otp", key, {"to": "447700900123"})
    assert status == 202
    results = await asyncio.gather(*(
        http.call("POST", "/v1/otp/verify", key, {"id": otp["id"], "code": "x"})
        for _ in range(10)
    ))  # fmt: skip
    assert sorted(r[0] for r in results) == [200] * 3 + [409] * 7
    assert {r[1]["code"] for r in results if r[0] == 409} == {"otp_locked"}
    code = await sent_code(http, otp["message_id"])
    status, locked = await http.call("POST", "/v1/otp/verify", key, {"id": otp["id"], "code": code})
    assert (status, locked["code"]) == (409, "otp_locked")


async def test_unknown_expired_and_other_accounts_codes(http: Http) -> None:
    _, (key,) = await http.customer()
    _, (other,) = await http.customer()
    status, otp = await http.call("POST", "/v1/otp", key, {"to": "447700900123"})
    assert status == 202
    status, error = await http.call("POST", "/v1/otp/verify", other, {"id": otp["id"], "code": "1"})
    assert (status, error["code"]) == (404, "not_found")
    status, error = await http.call("POST", "/v1/otp/verify", key, {"id": "nope", "code": "1"})
    assert (status, error["code"]) == (404, "not_found")
    await http.running.query("UPDATE otp_codes SET expires_at = now() - interval '1 s'")
    code = await sent_code(http, otp["message_id"])
    status, error = await http.call("POST", "/v1/otp/verify", key, {"id": otp["id"], "code": code})
    assert (status, error["code"]) == (409, "otp_expired")
    status, error = await http.call("POST", "/v1/otp", key, {"to": "abc"})
    assert (status, error["code"]) == (400, "invalid_destination")
