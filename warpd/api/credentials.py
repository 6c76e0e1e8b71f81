"""API keys and SMPP users, shared by the admin API and the CLI.

A new key's secret is returned once, by :func:`create_key`, and never stored:
the audit log records its prefix, not the key. SMPP passwords are kept as
scrypt hashes (:mod:`warpd.auth.passwords`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Sequence
from typing import Any

import asyncpg

from warpd.api import accounts, audit
from warpd.api.auth import SCOPES
from warpd.api.errors import ApiError, invalid, not_found
from warpd.auth import apikeys
from warpd.auth.passwords import hash_password
from warpd.store.migrate import Conn

KEY_COLUMNS = (
    "id, account_id, prefix, name, scopes, allowed_ips::text[] AS allowed_ips, rate_per_s::float8"
    " AS rate_per_s, burst, created_at, expires_at, revoked_at, last_used_at"
)
SMPP_COLUMNS = (
    "id, account_id, system_id, allowed_ips::text[] AS allowed_ips, bind_types, max_binds,"
    " throughput_tps::float8 AS throughput_tps, burst, window_size, tls_required, enabled,"
    " created_at"
)
# SMPP 3.4 section 5.2.2: password is a C-Octet String of at most 9 octets with its NUL.
SMPP_PASSWORD_MAX = 8


def networks(texts: Sequence[str]) -> list[str]:
    """CIDR strings checked and normalised (``10.0.0.1`` -> ``10.0.0.1/32``)."""
    out = []
    for text in texts:
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise invalid(f"{text!r} is not an IP address or CIDR network") from None
    return out


async def create_key(
    conn: Conn,
    actor: str,
    account_id: int,
    *,
    name: str = "",
    scopes: Sequence[str] = SCOPES,
    allowed_ips: Sequence[str] = (),
    rate_per_s: float | None = None,
    burst: int | None = None,
    expires_at: dt.datetime | None = None,
) -> dict[str, Any]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise invalid(f"unknown scopes {unknown} (known: {', '.join(SCOPES)})")
    nets = networks(allowed_ips)
    async with conn.transaction():
        await accounts.get(conn, account_id)
        new = apikeys.generate()
        row = await conn.fetchrow(
            "INSERT INTO api_keys (account_id, prefix, key_hash, name, scopes, allowed_ips,"
            " rate_per_s, burst, expires_at) VALUES ($1, $2, $3, $4, $5, $6::cidr[], $7, $8, $9)"
            f" RETURNING {KEY_COLUMNS}",
            account_id,
            new.prefix,
            new.key_hash,
            name,
            list(dict.fromkeys(scopes)),
            nets,
            rate_per_s,
            burst,
            expires_at,
        )
        assert row is not None
        await audit.record(conn, actor, "api_key.create", "api_key", row["id"], after=row)
    return {**dict(row), "key": new.key}


async def list_keys(conn: Conn, account_id: int | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {KEY_COLUMNS} FROM api_keys WHERE $1::bigint IS NULL OR account_id = $1"
        " ORDER BY id",
        account_id,
    )
    return [dict(r) for r in rows]


async def revoke_key(conn: Conn, actor: str, ref: str) -> dict[str, Any]:
    """By id or by prefix; revoking twice keeps the first revocation time."""
    column = "id" if ref.isdigit() else "prefix"
    value: object = int(ref) if ref.isdigit() else ref
    async with conn.transaction():
        before = await conn.fetchrow(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE {column} = $1 FOR UPDATE", value
        )
        if before is None:
            raise not_found(f"API key {ref}")
        row = await conn.fetchrow(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
            f" RETURNING {KEY_COLUMNS}",
            before["id"],
        )
        await audit.record(
            conn, actor, "api_key.revoke", "api_key", before["id"], before=before, after=row
        )
    assert row is not None
    return dict(row)


async def create_smpp_user(
    conn: Conn,
    actor: str,
    account_id: int,
    *,
    system_id: str,
    password: str,
    allowed_ips: Sequence[str] = (),
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    check_smpp_password(password)
    nets = networks(allowed_ips)
    # ~40 ms of scrypt: off the loop so other requests keep flowing.
    password_hash = await asyncio.to_thread(hash_password, password)
    extra = options or {}
    async with conn.transaction():
        await accounts.get(conn, account_id)
        try:
            row = await conn.fetchrow(
                "INSERT INTO smpp_users (account_id, system_id, password_hash, allowed_ips,"
                " max_binds, throughput_tps, burst, window_size, tls_required)"
                " VALUES ($1, $2, $3, $4::cidr[], coalesce($5, 4), coalesce($6, 100),"
                " coalesce($7, 200), coalesce($8, 10), coalesce($9, false))"
                f" RETURNING {SMPP_COLUMNS}",
                account_id,
                system_id,
                password_hash,
                nets,
                extra.get("max_binds"),
                extra.get("throughput_tps"),
                extra.get("burst"),
                extra.get("window_size"),
                extra.get("tls_required"),
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"system_id {system_id!r} exists") from None
        assert row is not None
        await audit.record(conn, actor, "smpp_user.create", "smpp_user", row["id"], after=row)
    return dict(row)


async def update_smpp_user(
    conn: Conn, actor: str, user_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    password = changes.get("password")
    if password is not None:
        check_smpp_password(password)
    password_hash = await asyncio.to_thread(hash_password, password) if password else None
    nets = networks(changes["allowed_ips"]) if "allowed_ips" in changes else None
    async with conn.transaction():
        before = await conn.fetchrow(
            f"SELECT {SMPP_COLUMNS} FROM smpp_users WHERE id = $1 FOR UPDATE", user_id
        )
        if before is None:
            raise not_found(f"SMPP user {user_id}")
        row = await conn.fetchrow(
            "UPDATE smpp_users SET password_hash = coalesce($2, password_hash),"
            " allowed_ips = coalesce($3::cidr[], allowed_ips),"
            " enabled = coalesce($4, enabled), max_binds = coalesce($5, max_binds),"
            " throughput_tps = coalesce($6, throughput_tps), burst = coalesce($7, burst),"
            " window_size = coalesce($8, window_size),"
            " tls_required = coalesce($9, tls_required)"
            f" WHERE id = $1 RETURNING {SMPP_COLUMNS}",
            user_id,
            password_hash,
            nets,
            changes.get("enabled"),
            changes.get("max_binds"),
            changes.get("throughput_tps"),
            changes.get("burst"),
            changes.get("window_size"),
            changes.get("tls_required"),
        )
        after = dict(row) if row is not None else None
        if password_hash is not None and after is not None:
            after["password_changed"] = True
        await audit.record(
            conn, actor, "smpp_user.update", "smpp_user", user_id, before=before, after=after
        )
    assert row is not None
    return dict(row)


async def list_smpp_users(conn: Conn, account_id: int | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {SMPP_COLUMNS} FROM smpp_users WHERE $1::bigint IS NULL OR account_id = $1"
        " ORDER BY id",
        account_id,
    )
    return [dict(r) for r in rows]


def check_smpp_password(password: str) -> None:
    if not password or len(password.encode()) > SMPP_PASSWORD_MAX or not password.isprintable():
        raise invalid(
            f"an SMPP password is 1 to {SMPP_PASSWORD_MAX} printable octets (SMPP 3.4 5.2.2)"
        )
