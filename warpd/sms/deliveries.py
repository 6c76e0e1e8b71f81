"""Store-and-forward of receipts and MO to customers' SMPP binds.

Every delivery is a ``deliveries`` row first. Rows made while the customer
has a bind on this instance are claimed by it and handed over in memory at
once; the rest wait in the table and are claimed by whichever instance has
a bind of that SMPP user when it binds or on the next sweep. A delivery is
done when the customer's deliver_sm_resp says ESME_ROK; an error or a
timeout backs it off in the table; a bind that drops hands its unanswered
ones to the user's other binds or back to the table. Receipts go to any
RX/TRX bind of the submitting system_id (README "Receipts").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

import asyncpg
import orjson
import structlog

from warpd.sms.journal import DeliveryDone, DeliveryRetry, Journal, NewDelivery
from warpd.sms.stats import SmsStats

log = structlog.get_logger(__name__)

SWEEP_INTERVAL = 2.0
RETRY_MIN, RETRY_MAX = 5.0, 600.0

_CLAIM = """
UPDATE deliveries d SET claimed_by = $1, claimed_until = now() + $2::interval
 WHERE d.id IN (SELECT id FROM deliveries
                 WHERE state = 'pending' AND via = 'smpp' AND smpp_user_id = any($3::bigint[])
                   AND next_attempt_at <= now()
                   AND (claimed_until IS NULL OR claimed_until < now())
                 ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.via, d.smpp_user_id, d.payload, d.attempts
"""


class Receiver(Protocol):
    """A customer bind that takes deliver_sm (RX or TRX)."""

    def pump(self) -> None: ...


class DeliveryRouter:
    def __init__(
        self, pool: asyncpg.Pool, stats: SmsStats, *, instance_id: str, lease: timedelta
    ) -> None:
        self._pool = pool
        self._stats = stats
        self._instance = instance_id
        self._lease = lease
        self.journal: Journal | None = None
        self._receivers: dict[int, list[Receiver]] = {}
        self._queues: dict[int, deque[NewDelivery]] = {}
        self._known: set[int] = set()  # delivery ids in memory (queued or in a window)
        self._attempts: dict[int, int] = {}
        self._wakeup = asyncio.Event()

    def wake(self, _payload: str = "") -> None:
        """Another instance left deliveries in the table: sweep now, not at the next tick."""
        self._wakeup.set()

    def receivers(self, smpp_user_id: int) -> int:
        return len(self._receivers.get(smpp_user_id, ()))

    def locally_bound(self, smpp_user_id: int) -> bool:
        return bool(self._receivers.get(smpp_user_id))

    def attach(self, smpp_user_id: int, receiver: Receiver) -> None:
        self._receivers.setdefault(smpp_user_id, []).append(receiver)
        self._wakeup.set()  # its pending deliveries are claimed on the next sweep

    def detach(
        self, smpp_user_id: int, receiver: Receiver, unanswered: Sequence[NewDelivery]
    ) -> None:
        receivers = self._receivers.get(smpp_user_id, [])
        if receiver in receivers:
            receivers.remove(receiver)
        queue = self._queues.setdefault(smpp_user_id, deque())
        queue.extendleft(reversed(unanswered))
        if receivers:
            for other in receivers:
                other.pump()
            return
        # No bind left here: the rows stay pending for the next bind anywhere.
        self._receivers.pop(smpp_user_id, None)
        left = self._queues.pop(smpp_user_id, deque())
        for delivery in left:
            self._known.discard(delivery.id)
        if left:
            asyncio.get_running_loop().create_task(self._unclaim([d.id for d in left]))

    def offer(self, created: Sequence[NewDelivery]) -> None:
        """Rows the journal just committed, claimed for this instance's binds."""
        touched: set[int] = set()
        for delivery in created:
            if delivery.via != "smpp" or delivery.smpp_user_id is None:
                continue
            if delivery.id in self._known:
                continue
            self._known.add(delivery.id)
            self._queues.setdefault(delivery.smpp_user_id, deque()).append(delivery)
            touched.add(delivery.smpp_user_id)
        for user_id in touched:
            for receiver in self._receivers.get(user_id, ()):
                receiver.pump()

    def take(self, smpp_user_id: int) -> NewDelivery | None:
        queue = self._queues.get(smpp_user_id)
        return queue.popleft() if queue else None

    def done(self, delivery: NewDelivery) -> None:
        self._known.discard(delivery.id)
        self._attempts.pop(delivery.id, None)
        payload = delivery.payload
        self._stats.delivered[payload["account_id"], payload["type"]] += 1
        assert self.journal is not None
        self.journal.add(DeliveryDone(delivery.id))

    def failed(self, delivery: NewDelivery, why: str) -> None:
        """The customer refused it or did not answer: back off in the table."""
        self._known.discard(delivery.id)
        attempts = self._attempts.pop(delivery.id, 0) + 1
        delay = min(RETRY_MIN * 2 ** (attempts - 1), RETRY_MAX)
        assert self.journal is not None
        self.journal.add(DeliveryRetry(delivery.id, delay, why))

    async def recover(self) -> None:
        """Restarted: what this instance had claimed is pending again (before any bind).

        Rows it holds while running are never claimed twice: they are in
        memory, in a bind's window, or on their way to the journal as done.
        """
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL"
                " WHERE claimed_by = $1 AND state = 'pending' AND via = 'smpp'",
                self._instance,
            )

    async def run(self) -> None:
        while True:
            try:
                await self._sweep()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("delivery_sweep_failed", error=str(exc))
            self._wakeup.clear()
            try:
                async with asyncio.timeout(SWEEP_INTERVAL):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def _sweep(self) -> None:
        users = [u for u, r in self._receivers.items() if r and not self._queues.get(u)]
        if not users:
            return
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, self._instance, self._lease, users, 1000)
            await conn.execute(
                "UPDATE deliveries SET state = 'expired' WHERE state = 'pending'"
                " AND expires_at < now() AND smpp_user_id = any($1::bigint[])",
                users,
            )
        fresh = [
            NewDelivery(r["id"], r["via"], r["smpp_user_id"], orjson.loads(r["payload"]))
            for r in rows
            if r["id"] not in self._known
        ]
        for row in rows:
            self._attempts[row["id"]] = row["attempts"]
        self.offer(fresh)

    async def _unclaim(self, ids: list[int]) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE id = any($1::bigint[]) AND state = 'pending'",
                    ids,
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The claims lapse by themselves within the lease.
            log.warning("delivery_unclaim_failed", error=str(exc))
