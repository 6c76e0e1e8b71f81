"""The dispatcher: accepted messages to connector binds, from memory, recovered from the table.

Each connector has a FIFO of messages in memory, fed straight from the group
commit; its binds take from it as their windows and TPS allow. A message
whose connector is down goes to the next candidate of its route that is up;
a permanent refusal moves it on (failover), a throttle or a timeout puts it
back at the front. What does not fit in memory, what was scheduled, and what
another instance left behind waits in ``messages`` and is claimed in order
of acceptance as room appears (``claimed_by`` / ``claimed_until``), so two
instances never send the same message in normal operation and a restart
sends everything that was acknowledged. While a backlog drains, each claim
starts where the last one ended; what comes back behind it (a hand-over, a
lapsed claim, a retry come due) is claimed from the start of the table at the
end of the backlog or within POLL_INTERVAL.

Order of acceptance per destination holds through a backlog: once a
connector's memory queue overflows into the table, its new messages queue
behind the older ones there (the table is the slow path) until a claim finds
none left, and only then go to memory again. So a burst that fits in memory,
the steady state, never touches the table.

With several instances, a connector's binds may all be on others (they are
leased, warpd/cluster/membership.py): what is for it is then left in the
table, unclaimed, for the instance that holds a bind, and a wake-up tells it
to look; what waits here for a connector that went down here while it is up
elsewhere is handed over the same way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import structlog

from warpd.errors import NoRoute
from warpd.routing.mt import route_mt
from warpd.sms.catalog import Catalog
from warpd.sms.commit import Pending
from warpd.sms.journal import Journal, MessageFailed, PartAccepted
from warpd.sms.model import Outbound

log = structlog.get_logger(__name__)

# Seconds between claims when nothing says the table holds work for us.
POLL_INTERVAL = 5.0


class Link(Protocol):
    """What the dispatcher needs of a carrier connector."""

    @property
    def up(self) -> bool: ...

    def kick(self) -> None: ...


# Back to the table for the instance that holds a bind of the connector.
_HAND_OVER = """
UPDATE messages m SET claimed_by = NULL, claimed_until = NULL,
                      connector_id = h.connector_id, candidate = h.candidate
  FROM unnest($2::uuid[], $3::bigint[], $4::smallint[]) AS h(id, connector_id, candidate)
 WHERE m.id = h.id AND m.claimed_by = $1 AND m.state = 'queued'
"""

_CLAIM = """
UPDATE messages m SET claimed_by = $1, claimed_until = now() + $2::interval
 WHERE m.id IN (SELECT id FROM messages
                 WHERE state = 'queued' AND next_attempt_at <= now()
                   AND (claimed_until IS NULL OR claimed_until < now())
                   AND coalesce(connector_id, 0) <> all($4::bigint[])
                   AND created_at >= coalesce($5::timestamptz, '-infinity')
                 ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING m.id, m.account_id, m.source_addr, m.source_ton, m.source_npi, m.destination_addr,
          m.dest_ton, m.dest_npi, m.mcc_mnc, m.esm_class, m.data_coding, m.registered_delivery,
          m.body, m.tlvs, m.parts, m.expires_at, m.attempts, m.created_at
"""


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        journal: Journal,
        *,
        instance_id: str,
        lease: timedelta,
        queue_max: int,
    ) -> None:
        self.catalog = Catalog()
        self.links: dict[int, Link] = {}
        self._pool = pool
        self._journal = journal
        self._instance = instance_id
        self._lease = lease
        self._queue_max = queue_max
        self._queues: dict[int, deque[Outbound]] = {}
        self._wakeup = asyncio.Event()
        # Messages in memory, queued here or in a bind's window, by id.
        self.held: dict[uuid.UUID, Outbound] = {}
        # The table may hold work this instance could claim (true at start: recovery).
        self._backlog = True
        # Connectors whose memory queue overflowed into the table: their new messages
        # queue there too, behind the older ones, until a claim finds none left. At
        # start every connector is, until a claim has seen what a restart left.
        self._behind: set[int] = set()
        self._all_behind = True
        # Commits of messages left in the table that have not ended yet: a claim run
        # before they commit cannot tell that the table holds nothing older.
        self._uncommitted: deque[asyncio.Future[Any]] = deque()
        self.sent_parts = 0
        #: Connectors with a bind up on another instance (the cluster's last beat).
        self.remote_up: frozenset[int] = frozenset()
        #: Called when work was left in the table for another instance.
        self.left_for_others: Callable[[], None] = lambda: None
        self.handed_over = 0
        # Where the next claim starts (created_at) while a backlog drains, and when the
        # claims from the start of the table last ran: see _claim.
        self._claim_from: datetime | None = None
        self._claimed_from_start = 0.0

    # -- feeding -------------------------------------------------------------

    def has_room(self, connector_id: int) -> bool:
        if connector_id in self._elsewhere():
            return False  # another instance holds its binds: the table hands it over
        if self._all_behind or connector_id in self._behind:
            return False  # older messages for it wait in the table: this one queues behind
        if len(self._queues.get(connector_id, ())) < self._queue_max:
            return True
        self._behind.add(connector_id)
        return False

    def tabled(self, committed: asyncio.Future[Any]) -> None:
        """A message was left in the table; ``committed`` resolves when its commit ends."""
        self._settled()
        self._uncommitted.append(committed)

    def _settled(self) -> bool:
        """Has every commit of a message left in the table ended (committed or refused)?"""
        waiting = self._uncommitted
        while waiting and waiting[0].done():
            waiting.popleft()
        return not waiting

    def _elsewhere(self) -> frozenset[int]:
        """Connectors up on another instance and not here."""
        remote = self.remote_up
        if not remote:
            return remote
        return frozenset(c for c in remote if not self._up_here(c))

    def _up_here(self, connector_id: int) -> bool:
        link = self.links.get(connector_id)
        return link is not None and link.up

    def committed(self, batch: Sequence[Pending]) -> None:
        held = [p.outbound for p in batch if p.outbound is not None]
        if len(held) < len(batch):  # some wait in the table (scheduled, no room, elsewhere)
            self._backlog = True
            self._wakeup.set()
            if self.remote_up:
                self.left_for_others()
        self._hold(held)

    def table_has_work(self, _payload: str = "") -> None:
        """Another instance left work in the table that may be for this one."""
        self._backlog = True
        self._wakeup.set()

    def _hold(self, outbounds: Sequence[Outbound]) -> None:
        touched: set[int] = set()
        for outbound in outbounds:
            self.held[outbound.id] = outbound
            touched.add(self.push(outbound, kick=False))
        # One pump per connector for the whole batch, not one per message.
        for connector_id in touched:
            link = self.links.get(connector_id)
            if link is not None:
                link.kick()

    def _first_up(self, candidates: Sequence[int], start: int) -> int | None:
        """The index of the first candidate from ``start`` on whose connector is up here."""
        for index in range(start, len(candidates)):
            if self._up_here(candidates[index]):
                return index
        return None

    def push(self, outbound: Outbound, *, front: bool = False, kick: bool = True) -> int:
        """Queue ``outbound`` on the first candidate, from the current one on, whose
        connector is up (else where it is); returns the connector it was queued for."""
        index = self._first_up(outbound.candidates, outbound.candidate)
        if index is not None:
            outbound.candidate = index
        connector_id = outbound.connector_id
        queue = self._queues.setdefault(connector_id, deque())
        if front:
            queue.appendleft(outbound)
        else:
            queue.append(outbound)
        if kick:
            link = self.links.get(connector_id)
            if link is not None:
                link.kick()
        return connector_id

    def take(self, connector_id: int) -> Outbound | None:
        """The next message for a bind of ``connector_id``; expired ones end here."""
        queue = self._queues.get(connector_id)
        while queue:
            outbound = queue.popleft()
            if outbound.finished:
                continue
            if outbound.expires_at > datetime.now(UTC):
                return outbound
            self.fail(outbound, "expired", None, "validity ended before it could be sent")
        if self._backlog and queue is not None and len(queue) < self._queue_max // 2:
            self._wakeup.set()
        return None

    def expire(self) -> int:
        """End what passed its validity while waiting for a connector that is down."""
        now, ended = datetime.now(UTC), 0
        for connector_id, queue in self._queues.items():
            link = self.links.get(connector_id)
            if link is not None and link.up:
                continue  # its binds expire messages as they take them
            for outbound in [o for o in queue if o.expires_at <= now and not o.finished]:
                self.fail(outbound, "expired", None, "validity ended before it could be sent")
                ended += 1
        return ended

    def queued(self, connector_id: int) -> int:
        return len(self._queues.get(connector_id, ()))

    def queue_age(self, connector_id: int) -> float:
        """Seconds the oldest message waiting in memory for ``connector_id`` has waited
        since its acceptance (the time in its UUIDv7 id)."""
        # A cancelled message stays queued until a bind takes it and passes over it.
        oldest = next((o for o in self._queues.get(connector_id, ()) if not o.finished), None)
        if oldest is None:
            return 0.0
        return max(0.0, time.time() - (oldest.id.int >> 80) / 1000)

    def route_age(self, candidates: Sequence[int]) -> float:
        """The queue age where a new message with these candidates would queue."""
        index = self._first_up(candidates, 0)
        return self.queue_age(candidates[0 if index is None else index])

    # -- what the binds report ------------------------------------------------

    def part_accepted(self, outbound: Outbound, part_no: int, carrier_id: str) -> None:
        outbound.carrier_ids[part_no] = carrier_id
        last = len(outbound.carrier_ids) >= outbound.parts
        self._journal.add(
            PartAccepted(
                outbound.id, part_no, outbound.connector_id, carrier_id, last, outbound.attempts
            )
        )
        self.sent_parts += 1
        if last and not outbound.finished:
            outbound.finished = True
            self._release(outbound)

    def part_refused(self, outbound: Outbound, part_no: int, status: int) -> None:
        """A permanent refusal: the next candidate, or the end of the message."""
        if outbound.candidate + 1 < len(outbound.candidates):
            outbound.candidate += 1
            outbound.pending_parts = (*(outbound.pending_parts or ()), part_no)
            log.debug(
                "failover",
                message_id=str(outbound.id),
                status=f"0x{status:08x}",
                to_connector=outbound.connector_id,
            )
            self.push(outbound, front=True)
            return
        self.fail(outbound, "rejected", status, f"refused upstream with 0x{status:08x}")

    def retry_part(self, outbound: Outbound, part_no: int) -> None:
        """Throttled, queue full upstream, no response, or the bind dropped: send it again."""
        pending = outbound.pending_parts or ()
        if part_no not in pending:
            outbound.pending_parts = (*pending, part_no)
        self.push(outbound, front=True)

    def fail(self, outbound: Outbound, state: str, status: int | None, why: str) -> None:
        """Final without a receipt; parts still queued or in flight go nowhere."""
        if outbound.finished:
            return
        outbound.finished = True
        self._journal.add(MessageFailed(outbound.id, state, status, why))
        self._release(outbound)

    def connector_down(self, connector_id: int) -> None:
        """Move what waits for a dead connector to the next candidate that is up."""
        queue = self._queues.pop(connector_id, None)
        if not queue:
            return
        stay: deque[Outbound] = deque()
        for outbound in queue:
            index = self._first_up(outbound.candidates, outbound.candidate + 1)
            if index is None:
                stay.append(outbound)
            else:
                outbound.candidate = index
                self.push(outbound)
        if stay:
            self._queues.setdefault(connector_id, deque()).extendleft(reversed(stay))

    def cancel(self, message_id: uuid.UUID) -> bool:
        """Stop a message not yet sent upstream; False once any part has gone."""
        outbound = self.held.get(message_id)
        if outbound is None:
            return True
        if outbound.attempts or outbound.carrier_ids or outbound.finished:
            return False
        outbound.finished = True
        self._release(outbound)
        return True

    async def hand_over(self) -> int:
        """What waits here for a connector down here goes to an instance where it is up.

        Only messages no part of which has left: one half sent stays here,
        so its parts never go out from two instances.
        """
        elsewhere = self.remote_up
        moved: list[tuple[Outbound, int]] = []
        for connector_id, queue in list(self._queues.items()):
            if not queue or self._up_here(connector_id):
                continue
            stay: deque[Outbound] = deque()
            for outbound in queue:
                target = _target(outbound, elsewhere, self._up_here)
                if (
                    target is None
                    or outbound.carrier_ids
                    or outbound.finished
                    or (
                        outbound.pending_parts is not None
                        and len(outbound.pending_parts) < outbound.parts
                    )
                ):
                    stay.append(outbound)
                else:
                    moved.append((outbound, target))
            self._queues[connector_id] = stay
        if not moved:
            return 0
        for outbound, _ in moved:
            self.held.pop(outbound.id, None)
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    _HAND_OVER,
                    self._instance,
                    [o.id for o, _ in moved],
                    [o.candidates[i] for o, i in moved],
                    [i for _, i in moved],
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("dispatcher_hand_over_failed", error=str(exc))
            self._hold([o for o, _ in moved])  # still claimed by us: send them ourselves
            return 0
        self.handed_over += len(moved)
        self.left_for_others()
        return len(moved)

    def _release(self, outbound: Outbound) -> None:
        self.held.pop(outbound.id, None)
        if self._backlog:
            self._wakeup.set()

    # -- the table ------------------------------------------------------------

    async def recover(self) -> None:
        """Restarted: whatever this instance held before is ours to send again.

        Run before anything is accepted: the release would otherwise race the
        new messages' own claims and updates (a deadlock PostgreSQL breaks by
        aborting one side, which must not be this).
        """
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE messages SET claimed_by = NULL, claimed_until = NULL"
                " WHERE claimed_by = $1 AND state = 'queued'",
                self._instance,
            )

    async def run(self) -> None:
        """Claim due work from the table while there is room; renew the claims held."""
        renew_every = self._lease.total_seconds() / 3
        loop = asyncio.get_running_loop()
        next_renewal = loop.time() + renew_every
        next_poll = 0.0
        while True:
            try:
                claimed = 0
                # Claim when the table is known to hold work for us, and now and
                # then for what only the table knows of: scheduled messages
                # coming due, another instance's lapsed claims.
                if self._backlog or loop.time() >= next_poll:
                    claimed = await self._claim()
                    next_poll = loop.time() + POLL_INTERVAL
                if loop.time() >= next_renewal:
                    await self._renew()
                    next_renewal = loop.time() + renew_every
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("dispatcher_claim_failed", error=str(exc))
                claimed = 0
            if claimed:
                continue
            self._wakeup.clear()
            try:
                async with asyncio.timeout(1.0):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def _claim(self) -> int:
        room = self._queue_max - max((len(q) for q in self._queues.values()), default=0)
        if room < min(100, self._queue_max // 10 or 1):
            return 0
        limit = min(room, 1000)
        settled = self._settled()
        now = time.monotonic()
        # The messages this instance holds (up to a connector's queue_max) are still
        # 'queued' and older than what waits unclaimed: a claim from the start of the
        # table reads past all of them, 76 ms a claim with 52,000 held. While a backlog
        # drains, each claim starts where the last one ended; one from the start now
        # and then, and before the table is taken for empty, finds what came due
        # behind it (a retry, a hand-over, another instance's lapsed claim).
        if now - self._claimed_from_start >= POLL_INTERVAL:
            self._claim_from = None
        start = self._claim_from
        async with self._pool.acquire() as conn, conn.transaction():
            # Statistics taken before a burst say few messages are queued, and the
            # planner then reads every queued one to sort them (a bitmap scan): read
            # in created_at order, the scan stops at the limit.
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            found = await conn.fetch(
                _CLAIM, self._instance, self._lease, limit, list(self._elsewhere()), start
            )
        # RETURNING keeps no order: the claim's is that of acceptance.
        rows = sorted(found, key=lambda row: row["created_at"])
        if start is None:
            self._claimed_from_start = now
        self._backlog = len(rows) == limit or start is not None
        self._claim_from = rows[-1]["created_at"] if len(rows) == limit else None
        if not self._backlog and settled:
            # Nothing older waits in the table: new messages take the memory queue
            # again, behind what this claim brings.
            self._behind.clear()
            self._all_behind = False
        claimed = []
        for row in rows:
            if row["id"] in self.held:  # our own claim lapsed while PostgreSQL was away
                continue
            outbound = self._from_row(row)
            if outbound is not None:
                claimed.append(outbound)
        self._hold(claimed)
        return len(rows)

    async def _renew(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE messages SET claimed_until = now() + $2::interval"
                " WHERE claimed_by = $1 AND state = 'queued'",
                self._instance,
                self._lease,
            )

    def _from_row(self, row: Any) -> Outbound | None:
        try:
            decision = route_mt(
                self.catalog.routing,
                account_id=row["account_id"],
                destination=row["destination_addr"],
                source=row["source_addr"],
                mcc_mnc=row["mcc_mnc"],
            )
        except NoRoute as exc:
            self._journal.add(MessageFailed(row["id"], "failed", None, f"no route: {exc}"))
            return None
        first = self.catalog.connectors.get(decision.candidates[0])
        return Outbound(
            row["id"],
            row["account_id"],
            row["source_addr"],
            row["source_ton"],
            row["source_npi"],
            row["destination_addr"],
            row["dest_ton"],
            row["dest_npi"],
            row["esm_class"],
            row["data_coding"],
            row["registered_delivery"],
            row["body"],
            row["tlvs"],
            row["parts"],
            decision.candidates,
            row["expires_at"],
            first.split_mode if first is not None else "udh8",
            attempts=row["attempts"],
        )


def _target(
    outbound: Outbound, elsewhere: frozenset[int], up_here: Callable[[int], bool]
) -> int | None:
    """The candidate index to hand ``outbound`` over on: none up here, one up elsewhere."""
    candidates = outbound.candidates
    for index in range(outbound.candidate, len(candidates)):
        if up_here(candidates[index]):
            return None
        if candidates[index] in elsewhere:
            return index
    return None
