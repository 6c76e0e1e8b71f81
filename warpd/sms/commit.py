"""Group commit: many accepted messages and their charges in one transaction.

A message is answered with its id only once its row and its ledger charge
are committed (the promise). Committing one by one would bound ingress by
commit latency, so the writer takes everything that arrived while the
previous commit ran and commits it together, in one statement and so one
round trip (``accept_messages``, migration 0016): the messages, their ledger
rows (the statement trigger updates each account once) or, for accounts
charged on delivery, their reservations, and the balances it changed. Under
light load a batch is one message and costs one commit; under heavy load
batches grow and latency stays about one commit.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from warpd.billing.balances import Balances
from warpd.sms.model import Accepted, Outbound, Refused
from warpd.sms.stats import SmsStats
from warpd.store.held import HeldConnection

log = structlog.get_logger(__name__)

# The columns of a message record, in order: the accepted_message type (migration 0016)
# has the same, so a column added here is added there and to accept_messages() by a new
# migration (tests/warpd/store/test_accept_batch.py fails until it is).
MESSAGE_COLUMNS = (
    "id",
    "account_id",
    "channel",
    "smpp_user_id",
    "api_key_id",
    "client_ref",
    "source_addr",
    "source_ton",
    "source_npi",
    "destination_addr",
    "dest_ton",
    "dest_npi",
    "mcc_mnc",
    "esm_class",
    "data_coding",
    "registered_delivery",
    "body",
    "tlvs",
    "parts",
    "route_id",
    "connector_id",
    "claimed_by",
    "claimed_until",
    "price_micros",
    "currency",
    "schedule_at",
    "next_attempt_at",
    "expires_at",
    "callback_url",
    "cost_micros",
)
# Its records are accepted_message values (0016), in MESSAGE_COLUMNS order.
_ACCEPT = "SELECT account_id, available FROM accept_messages($1::accepted_message[], $2::uuid[])"
# The ledger trigger's refusal of a batch that passes a credit limit (0002).
_INSUFFICIENT_FUNDS = "WP001"
# Faults after which nothing can be committed for a while: answer "retry later".
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


@dataclass(slots=True)
class Pending:
    """One message waiting for its commit."""

    record: tuple[Any, ...]  # in MESSAGE_COLUMNS order
    accepted: Accepted
    account_id: int
    #: The dispatcher's copy when this instance claimed it, None when it waits in the table.
    outbound: Outbound | None
    future: asyncio.Future[Accepted]
    #: loop.time() at acceptance, for the submit -> response histogram.
    started: float
    #: The account pays on delivery: the price is reserved now, charged when delivered.
    reserve: bool = False


Committed = Callable[[Sequence[Pending]], None]


class GroupCommit:
    def __init__(
        self,
        pool: asyncpg.Pool,
        balances: Balances,
        stats: SmsStats,
        *,
        batch_max: int,
        queue_max: int,
        on_committed: Committed,
    ) -> None:
        self._conn = HeldConnection(pool)
        self._balances = balances
        self._stats = stats
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._on_committed = on_committed
        self._queue: deque[Pending] = deque()
        self._wakeup = asyncio.Event()
        self.commits = 0
        self._writing = False
        self.last_error: str | None = None

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued and no commit in progress."""
        return not self._queue and not self._writing

    def add(self, pending: Pending) -> None:
        if len(self._queue) >= self._queue_max:
            raise Refused("queue_full", "too many messages awaiting their commit")
        self._queue.append(pending)
        self._wakeup.set()

    async def run(self) -> None:
        """Commit until cancelled; what is queued at cancellation is refused, never lost."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    batch = [
                        self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))
                    ]
                    self._writing = True
                    try:
                        await self._commit(batch)
                    finally:
                        self._writing = False
        finally:
            self._refuse(list(self._queue), Refused("unavailable", "warpd is stopping"))
            self._queue.clear()
            await self._conn.release()

    async def _commit(self, batch: list[Pending]) -> None:
        while batch:
            # What voice posts to these accounts while the commit runs may be missing
            # from the balances it reads back: settle() takes it off again.
            mark = self._balances.mark({p.account_id for p in batch})
            try:
                balances = await self._write(batch)
            except asyncpg.PostgresError as exc:
                if exc.sqlstate == _INSUFFICIENT_FUNDS:
                    broke = {int(a) for a in (exc.detail or "").split(",") if a}
                    self._refuse(
                        [p for p in batch if p.account_id in broke],
                        Refused("insufficient_funds", "balance and credit limit exceeded"),
                    )
                    batch = [p for p in batch if p.account_id not in broke]
                    continue
                if isinstance(exc, _UNAVAILABLE):
                    self._unavailable(batch, exc)
                    return
                # A row the database refuses (a repeated client reference, say)
                # must not sink the others: commit one by one to find it.
                if len(batch) > 1:
                    for pending in batch:
                        await self._commit([pending])
                    return
                code = "duplicate" if isinstance(exc, asyncpg.UniqueViolationError) else None
                self._refuse(batch, Refused(code or "invalid_message", str(exc)))
                return
            except _UNAVAILABLE as exc:
                self._unavailable(batch, exc)
                return
            self.commits += 1
            self.last_error = None
            now = asyncio.get_running_loop().time()
            stats = self._stats
            charged: dict[int, int] = {}
            for pending in batch:
                account_id = pending.account_id
                charged[account_id] = charged.get(account_id, 0) + pending.accepted.price_micros
            for account_id, amount in charged.items():
                self._balances.settle(account_id, amount, balances[account_id], mark)
            for pending in batch:
                stats.accepted[pending.account_id, pending.record[2]] += 1
                stats.accept_latency.observe(now - pending.started)
                if not pending.future.done():
                    pending.future.set_result(pending.accepted)
            self._on_committed(batch)
            return

    async def _write(self, batch: list[Pending]) -> dict[int, int]:
        """The batch, its charges or reservations, in one statement (migration 0016: one
        round trip; as a transaction of seven, each waited for a turn of a busy loop)."""
        reserved = [p.accepted.message_id for p in batch if p.reserve and p.accepted.price_micros]
        conn = await self._conn.get()
        try:
            rows = await conn.fetch(_ACCEPT, [p.record for p in batch], reserved)
        except BaseException:
            await self._conn.release()  # the pool checks it; the next batch gets a sound one
            raise
        return {r[0]: r[1] for r in rows}

    def _unavailable(self, batch: list[Pending], exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("commit_failed", messages=len(batch), error=self.last_error)
        self._refuse(batch, Refused("unavailable", "the message store is unavailable"))

    def _refuse(self, batch: list[Pending], refusal: Refused) -> None:
        for pending in batch:
            self._stats.refused[pending.account_id, refusal.code] += 1
            self._balances.release(pending.account_id, pending.accepted.price_micros)
            if not pending.future.done():
                pending.future.set_exception(refusal)


_random = random.Random(secrets.randbits(128))


def new_message_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): milliseconds since the epoch, then 74 random bits.

    Made where a message is accepted, so instances never coordinate ids; time
    ordered, so the messages primary key grows at its right edge instead of
    splitting pages at random. The random bits come from a generator seeded
    once from the OS: uuid4 asks the kernel for 16 bytes per message.
    """
    value = (time.time_ns() // 1_000_000) << 80 | _random.getrandbits(80)
    # version 7 in bits 76-79, variant 0b10 in bits 62-63
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)
