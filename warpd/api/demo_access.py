"""The demo's HTTP credentials: an API key on the demo account and an admin token.

Both are kept across restarts through ``demo-credentials.json`` (the caller
passes what it read back): the key while its row is live, the token always.
The token is not in the config, so the daemon tells the admin gate about it
(:meth:`AdminGate.also_accept`). Never for production: the file holds both in clear.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from warpd.api import credentials
from warpd.api.keys import ADMIN_GATE
from warpd.auth import apikeys
from warpd.store import Database
from warpd.store.migrate import Conn

ACTOR = "demo"


@dataclass(frozen=True, slots=True)
class DemoAccess:
    api_key: str
    admin_token: str

    @property
    def token_digest(self) -> bytes:
        return hashlib.sha256(self.admin_token.encode()).digest()

    def credentials(self, base_url: str) -> dict[str, str]:
        """The ``"http"`` entry of demo-credentials.json."""
        return {"base_url": base_url, "api_key": self.api_key, "admin_token": self.admin_token}


async def provision(conn: Conn, account_id: int, known: Mapping[str, Any]) -> DemoAccess:
    key = known.get("api_key")
    if not (isinstance(key, str) and await _live(conn, key, account_id)):
        key = (await credentials.create_key(conn, ACTOR, account_id, name="demo"))["key"]
    token = known.get("admin_token")
    if not (isinstance(token, str) and apikeys.prefix_of(token, kind="wa")):
        token = apikeys.generate("wa").key
    assert isinstance(key, str)
    return DemoAccess(key, token)


async def attach(
    app: web.Application,
    database: Database,
    credentials_file: Path,
    account_name: str,
    address: tuple[str, int],
) -> dict[str, str]:
    """Provision the demo account's HTTP access, open the admin gate to its token,
    and return the ``"http"`` entry for ``credentials_file``."""
    known = _known(credentials_file)
    async with database.pool.acquire() as conn:
        account_id = await conn.fetchval("SELECT id FROM accounts WHERE name = $1", account_name)
        access = await provision(conn, account_id, known)
    app[ADMIN_GATE].also_accept(access.token_digest)
    host, port = address
    return access.credentials(f"http://{f'[{host}]' if ':' in host else host}:{port}")


def _known(credentials_file: Path) -> Mapping[str, Any]:
    """The ``"http"`` entry a previous run wrote (a small file, read once at start)."""
    try:
        known = json.loads(credentials_file.read_text()).get("http")
    except (OSError, ValueError, AttributeError):
        return {}
    return known if isinstance(known, dict) else {}


async def _live(conn: Conn, key: str, account_id: int) -> bool:
    prefix = apikeys.prefix_of(key)
    if prefix is None:
        return False
    row = await conn.fetchrow(
        "SELECT key_hash FROM api_keys WHERE prefix = $1 AND account_id = $2"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        prefix,
        account_id,
    )
    return row is not None and apikeys.matches(key, bytes(row["key_hash"]))
