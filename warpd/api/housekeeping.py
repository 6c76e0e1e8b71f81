"""Old idempotency answers and one-time codes leave their tables.

An aiohttp ``cleanup_ctx`` task: it runs for as long as the app does, deletes
in small batches (so it never holds long locks), and shrugs off a database
that is briefly away. Several instances may run it at once; DELETE is safe
to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from warpd.api.keys import CONFIG, DATABASE

log = structlog.get_logger(__name__)

INTERVAL = 600.0
BATCH = 5000
# A code is useless after its lifetime; keep a day for support questions.
OTP_KEEP_S = 86_400.0

PURGES = (
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys"
    f" WHERE created_at < now() - make_interval(secs => $1) LIMIT {BATCH}))",
    "DELETE FROM otp_codes WHERE ctid = ANY(ARRAY(SELECT ctid FROM otp_codes"
    f" WHERE expires_at < now() - make_interval(secs => $1) LIMIT {BATCH}))",
)


async def purge_once(app: web.Application) -> int:
    """Rows deleted in one pass (each statement repeated until a batch comes back short)."""
    ages = (app[CONFIG].api.idempotency_ttl, OTP_KEEP_S)
    removed = 0
    async with app[DATABASE].pool.acquire() as conn:
        for sql, age in zip(PURGES, ages, strict=True):
            while True:
                status = await conn.execute(sql, age)
                count = int(status.split()[-1])
                removed += count
                if count < BATCH:
                    break
    return removed


async def _loop(app: web.Application) -> None:
    while True:
        try:
            removed = await purge_once(app)
            if removed:
                log.info("api_housekeeping", removed=removed)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("api_housekeeping_failed", error=repr(exc))
        await asyncio.sleep(INTERVAL)


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_loop(app), name="api-housekeeping")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
