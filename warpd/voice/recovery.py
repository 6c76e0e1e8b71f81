"""Calls a crash left "up": closed at the next start with a CDR and a charge.

Each answered call has a ``voice_active_calls`` row until its CDR is written;
the instance refreshes ``alive_at`` of all its rows every ``HEARTBEAT`` seconds.
At start-up, rows of this instance belong to calls that died with the previous
process: each becomes a CDR ending at its last ``alive_at`` (what is known;
the customer is never charged for the time the process was down), hung up by
``system``, priced with today's rate, charged once like any other call.

Their rtpengine sessions outlive the process (media keeps flowing through a
relay nobody controls any more): each is deleted by its call-id, the CDR id.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import structlog

from media.errors import RtpEngineUnavailable
from media.pool import RtpEnginePool
from protocols.ng.errors import NgError
from protocols.ng.messages import Delete
from warpd.voice.cdr import Cdr, close_cdr, write
from warpd.voice.rating import best_rate
from warpd.voice.trunks import Directory

log = structlog.get_logger(__name__)

HEARTBEAT = 15.0


def close_crashed(cdr: Cdr, alive_at: dt.datetime, directory: Directory) -> Cdr:
    """The CDR of a call last known up at ``alive_at`` (pure)."""
    account = directory.accounts.get(cdr.account_id or 0)
    plan = account.rate_plan_id if account is not None else None
    rate = best_rate(directory.rates.get(plan or 0, ()), cdr.dst_e164 or "")
    end_at = max(alive_at, cdr.answer_at or cdr.start_at)
    cdr.hangup_by = "system"
    cdr.q850_cause = 41  # Temporary failure
    return close_cdr(cdr, end_at, rate, cancelled=False)


async def recover(
    pool: asyncpg.Pool, instance: str, directory: Directory, media: RtpEnginePool | None = None
) -> int:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT cdr, alive_at FROM voice_active_calls WHERE instance = $1", instance
        )
    cdrs = [close_crashed(Cdr.from_json(r["cdr"]), r["alive_at"], directory) for r in rows]
    if cdrs:
        await write(pool, [*cdrs])
        log.warning("voice_calls_closed_after_crash", count=len(cdrs))
    if media is not None and cdrs:
        deleted = await asyncio.gather(*(_delete_media(media, str(c.id)) for c in cdrs))
        log.warning("voice_media_deleted_after_crash", count=sum(deleted))
    return len(cdrs)


async def _delete_media(media: RtpEnginePool, call_id: str) -> bool:
    """The pool sends it where the call-id hashes, as the offer went unless it failed over;
    a session already gone (rtpengine's own timeout) or an instance down is not an error."""
    try:
        await media.delete(Delete(call_id=call_id, delete_delay=0))
    except (NgError, RtpEngineUnavailable) as exc:
        log.info("voice_media_delete_skipped", call_id=call_id, error=str(exc))
        return False
    return True


async def heartbeat(pool: asyncpg.Pool, instance: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE voice_active_calls SET alive_at = now() WHERE instance = $1", instance
        )
