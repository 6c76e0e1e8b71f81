"""The consoles' refusals, without a browser: roles, lockout, and tariff imports by preview.

Same warpd as the browser tests (the package's fixture); each case makes its
own users, so the shared demo users stay usable.
"""

from __future__ import annotations

import asyncio
import html
import re
import uuid

import pytest

from tests.console.conftest import Client, Console, login_client
from warpd.auth.passwords import verify_password

pytestmark = pytest.mark.asyncio(loop_scope="package")
PASSWORD = "correct horse battery"


async def _admin(console: Console) -> Client:
    c = console.credentials["console"]
    return await login_client(console.base, c["admin_user"], c["admin_password"])


async def _user(console: Console, admin: Client, role: str, account: str = "") -> str:
    name = f"{role[:8]}-{uuid.uuid4().hex[:6]}"
    form = {"username": name, "password": PASSWORD, "role": role, "account_id": account}
    status, where = await admin.post("/console/admin/users", form)
    assert status == 303, where
    assert "created" in where
    return name


async def test_roles_are_enforced_and_changes_are_audited_by_name(console: Console) -> None:
    admin = await _admin(console)
    demo = str(await console.running.value("SELECT id FROM accounts WHERE name = 'demo'"))
    reader = await _user(console, admin, "operator_readonly")
    developer = await _user(console, admin, "customer_developer", demo)
    readonly = await login_client(console.base, reader, PASSWORD)
    dev = await login_client(console.base, developer, PASSWORD)
    try:
        connector = await console.running.value("SELECT id FROM connectors WHERE name = 'demo-sim'")
        # A read-only operator sees the pages and changes nothing.
        status, page = await readonly.get("/console/admin/connectors")
        assert status == 200
        assert "Disable demo-sim" not in page
        status, page = await readonly.post(f"/console/admin/connectors/{connector}/disable", {})
        assert status == 403
        assert "read-only" in page
        assert await console.running.value(
            "SELECT enabled FROM connectors WHERE id = $1", connector
        )
        # A customer is not an operator, and a developer does not reset the SMPP password.
        status, page = await dev.get("/console/admin/accounts")
        assert status == 403
        smpp = await console.running.value("SELECT id FROM smpp_users WHERE system_id = 'demo'")
        status, where = await dev.post(f"/console/smpp/{smpp}/password", {})
        assert status == 303
        assert "only+the+account" in where
        # A wrong CSRF token is refused like a missing one, and changes nothing.
        status, page = await dev.post("/console/keys", {"name": "forged2", "csrf": "wrong"},
                                      csrf=False)  # fmt: skip
        assert status == 403
        assert "CSRF" in page
        assert (
            await console.running.value("SELECT count(*) FROM api_keys WHERE name = 'forged2'") == 0
        )
        # A non-operator form field cannot pick another account: the session's is used.
        status, _ = await dev.post("/console/keys", {"name": "mine", "account_id": "1"})
        assert status == 200
        owner = await console.running.value(
            "SELECT a.name FROM api_keys k JOIN accounts a ON a.id = k.account_id"
            " WHERE k.name = 'mine'"
        )
        assert owner == "demo"
        actors = await console.running.query(
            "SELECT actor, action FROM audit_log WHERE actor = ANY($1::text[])",
            [f"console:{developer}", "console:admin"],
        )
        assert ("console:admin", "console_user.create") in {tuple(r) for r in actors}
        assert (f"console:{developer}", "api_key.create") in {tuple(r) for r in actors}
    finally:
        for client in (admin, readonly, dev):
            await client.session.close()


async def test_five_wrong_passwords_lock_the_user_out(console: Console) -> None:
    admin = await _admin(console)
    try:
        name = await _user(console, admin, "operator_readonly")
    finally:
        await admin.session.close()
    for _ in range(5):
        wrong = await login_client(console.base, name, "not the password")
        assert wrong.csrf == ""
        await wrong.session.close()
    right = await login_client(console.base, name, PASSWORD)
    try:
        assert right.csrf == ""  # locked: even the right password is refused now
        assert "too many failed logins" in right.landing
        locked = await console.running.value(
            "SELECT locked_until > now() FROM console_users WHERE username = $1", name
        )
        assert locked is True
        assert (
            await console.running.value(
                "SELECT count(*) FROM audit_log WHERE action = 'console_user.locked'"
                " AND actor = $1",
                f"console:{name}",
            )
            == 1
        )
    finally:
        await right.session.close()


async def test_a_tariff_csv_is_previewed_before_it_is_imported(console: Console) -> None:
    admin = await _admin(console)
    try:
        status, where = await admin.post(
            "/console/admin/rate-plans", {"name": f"p-{uuid.uuid4().hex[:6]}", "currency": "EUR"}
        )
        assert status == 303
        plan = where.split("?")[0].rsplit("/", 1)[1]
        path = f"/console/admin/rate-plans/{plan}/tariffs"
        first = "prefix,mcc_mnc,price,valid_from\n44,,0.01,\n33,,0.02,\n"
        status, _ = await admin.post(path, {"csv": first, "mode": "replace", "step": "import"})
        assert status == 303
        second = "prefix,mcc_mnc,price,valid_from\n44,,0.015,\n49,,0.03,\n"
        status, page = await admin.post(path, {"csv": second, "mode": "replace",
                                               "step": "preview"})  # fmt: skip
        assert status == 200
        assert "1 added, 1 changed, 1 removed, 0 unchanged." in page
        prices = "SELECT prefix, price_micros FROM sms_rates WHERE rate_plan_id = $1 ORDER BY 1"
        unchanged = await console.running.query(prices, int(plan))
        assert [tuple(r) for r in unchanged] == [("33", 20_000), ("44", 10_000)]
        status, _ = await admin.post(path, {"csv": second, "mode": "replace", "step": "import"})
        assert status == 303
        imported = await console.running.query(prices, int(plan))
        assert [tuple(r) for r in imported] == [("44", 15_000), ("49", 30_000)]
        # A bad line is refused with its line number, and nothing changes.
        status, where = await admin.post(path, {"csv": "prefix,mcc_mnc,price,valid_from\n4x,,1,\n",
                                                "step": "preview"})  # fmt: skip
        assert status == 303
        assert "line+2" in where
    finally:
        await admin.session.close()


OPERATOR_PAGES = (
    "/console/admin", "/console/admin/accounts", "/console/admin/accounts/{account}",
    "/console/admin/connectors",
    "/console/admin/routes?account_id={account}&destination=%2B447700900123",
    "/console/admin/rate-plans", "/console/admin/voice", "/console/admin/messages?state=delivered",
    "/console/admin/cdrs", "/console/admin/audit?q=console", "/console/admin/users",
)  # fmt: skip
CUSTOMER_PAGES = (
    "/console/", "/console/messages", "/console/keys", "/console/webhooks", "/console/smpp",
    "/console/otp",
)  # fmt: skip


async def test_every_page_renders_for_its_audience(console: Console) -> None:
    account = await console.running.value("SELECT id FROM accounts WHERE name = 'demo'")
    c = console.credentials["console"]
    admin = await _admin(console)
    customer = await login_client(console.base, c["customer_user"], c["customer_password"])
    try:
        for path in OPERATOR_PAGES:
            status, page = await admin.get(path.format(account=account))
            assert status == 200, (path, page[:500])
        _, routes = await admin.get(OPERATOR_PAGES[4].format(account=account))
        assert "Routed</strong> by route" in routes
        for path in CUSTOMER_PAGES:
            status, page = await customer.get(path)
            assert status == 200, (path, page[:500])
            # Nobody logged out sees any of it.
            async with console.http.get(console.base + path, allow_redirects=False) as r:
                assert r.status == 303
                assert r.headers["Location"].startswith("/console/login")
        status, csv = await customer.get("/console/cdr.csv")
        assert status == 200
        assert csv.startswith("id,client_ref,")
        status, csv = await admin.get("/console/admin/cdrs?format=csv")
        assert status == 200
        assert csv.startswith("id,account,trunk,")
        status, csv = await admin.get("/console/admin/messages?format=csv&state=delivered")
        assert status == 200
        assert csv.startswith("id,account,source_addr,")
        status, page = await admin.get("/console/admin/messages?state=nonsense")
        assert status == 400
        assert "state: one of" in page
    finally:
        await admin.session.close()
        await customer.session.close()


async def test_a_customer_manages_its_own_credentials_and_nobody_elses(console: Console) -> None:
    c = console.credentials["console"]
    admin = await _admin(console)
    customer = await login_client(console.base, c["customer_user"], c["customer_password"])
    try:
        demo = await console.running.value("SELECT id FROM accounts WHERE name = 'demo'")
        system_id = f"s{uuid.uuid4().hex[:8]}"
        status, _ = await admin.post(f"/console/admin/accounts/{demo}/smpp-users",
                                     {"system_id": system_id, "password": "first1"})  # fmt: skip
        assert status == 303
        user = await console.running.value(
            "SELECT id FROM smpp_users WHERE system_id = $1", system_id
        )
        status, page = await customer.post(f"/console/smpp/{user}/password", {})
        assert status == 200
        shown = re.search(r'<code id="new-password">([^<]+)</code>', page)
        assert shown is not None
        stored = await console.running.value(
            "SELECT password_hash FROM smpp_users WHERE id = $1", user
        )
        assert verify_password(html.unescape(shown[1]), str(stored))
        # A key the customer makes works until the customer revokes it.
        status, page = await customer.post("/console/keys", {"name": "short-lived"})
        key = re.search(r'<code id="new-key">([^<]+)</code>', page)
        assert key is not None
        assert (await console.api("GET", "/v1/balance", key[1]))[0] == 200
        key_id = await console.running.value("SELECT id FROM api_keys WHERE name = 'short-lived'")
        status, where = await customer.post(f"/console/keys/{key_id}/revoke", {})
        assert (status, where.split("?")[0]) == (303, "/console/keys")
        assert (await console.api("GET", "/v1/balance", key[1]))[0] == 401
        # Another account's key and SMPP user are not found, and stay as they were.
        token = console.credentials["http"]["admin_token"]
        named = {"name": f"o-{uuid.uuid4().hex[:6]}", "currency": "EUR"}
        _, other = await console.api("POST", "/v1/admin/accounts", token, named)
        _, theirs = await console.api("POST", "/v1/admin/keys", token, {"account_id": other["id"]})
        status, where = await customer.post(f"/console/keys/{theirs['id']}/revoke", {})
        assert status == 303
        assert "not+found" in where
        assert (await console.api("GET", "/v1/balance", theirs["key"]))[0] == 200
        # The OTP template: saved for the customer's account, a text without {code} refused.
        form = {"text": "Code {code}", "source_addr": "ACME", "code_length": "6",
                "lifetime_s": "300", "max_attempts": "3"}  # fmt: skip
        assert (await customer.post("/console/otp", form))[0] == 303
        row = await console.running.query(
            "SELECT text, source_addr FROM otp_templates WHERE account_id = $1", demo
        )
        assert [tuple(r) for r in row] == [("Code {code}", "ACME")]
        status, where = await customer.post("/console/otp", {**form, "text": "no code here"})
        assert status == 303
        assert "error=" in where
    finally:
        await admin.session.close()
        await customer.session.close()


async def test_an_operator_moves_money_exactly_and_suspends_an_account(console: Console) -> None:
    admin = await _admin(console)
    try:
        status, where = await admin.post("/console/admin/accounts", {
            "name": f"m-{uuid.uuid4().hex[:6]}", "currency": "EUR", "balance": "0.10"})  # fmt: skip
        assert status == 303
        account = int(where.split("?")[0].rsplit("/", 1)[1])
        base = f"/console/admin/accounts/{account}"
        assert (await admin.post(f"{base}/topup", {"amount": "12.345678"}))[0] == 303
        assert (await admin.post(f"{base}/adjust", {"amount": "-1.5", "reason": "goodwill"}))[
            0
        ] == 303
        balance = "SELECT balance_micros FROM accounts WHERE id = $1"
        assert await console.running.value(balance, account) == 100_000 + 12_345_678 - 1_500_000
        # Refused, and nothing moves: seven decimals, a word, an adjustment without a reason.
        for form in ({"amount": "0.0000001"}, {"amount": "ten"}):
            status, where = await admin.post(f"{base}/topup", form)
            assert status == 303
            assert "error=" in where
        status, where = await admin.post(f"{base}/adjust", {"amount": "5", "reason": ""})
        assert "error=" in where
        assert await console.running.value(balance, account) == 10_945_678
        assert (await admin.post(f"{base}/status", {"status": "suspended"}))[0] == 303
        assert (
            await console.running.value("SELECT status FROM accounts WHERE id = $1", account)
            == "suspended"
        )
        actions = await console.running.query(
            "SELECT action FROM audit_log WHERE actor = 'console:admin' AND object_id = $1"
            " ORDER BY id",
            str(account),
        )
        assert [r["action"] for r in actions][-1] == "account.update"
        assert len(actions) >= 3
    finally:
        await admin.session.close()


async def test_a_rebind_unbinds_and_binds_the_connector_again(console: Console) -> None:
    admin = await _admin(console)
    sms = console.running.daemon.sms
    assert sms is not None
    before = sms.connectors[console.backup_id]
    try:
        status, where = await admin.post(
            f"/console/admin/connectors/{console.backup_id}/rebind", {}
        )
        assert status == 303
        assert "rebind" in where
        for _ in range(200):  # a new connector object, bound again
            now = sms.connectors.get(console.backup_id)
            if now is not None and now is not before and now.up:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the connector did not bind again in 10 s")
        actions = await console.running.query(
            "SELECT action FROM audit_log WHERE object_type = 'connector' AND object_id = $1"
            " AND actor = 'console:admin' ORDER BY id DESC LIMIT 2",
            str(console.backup_id),
        )
        assert [r["action"] for r in actions] == ["connector.enable", "connector.disable"]
    finally:
        await admin.session.close()
