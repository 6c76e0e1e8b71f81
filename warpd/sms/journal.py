"""The SMS core's durable record of what happened after acceptance, in batches.

Lanes write, each one transaction per batch on a connection of its own: the
carriers' submit responses (the parts and their carrier ids); what comes after them
(receipts, failures, MO) and the deliveries it owes the customer, in AFTER_LANES
lanes side by side; and how those deliveries went. One lane was busy all the time at
sustained load while PostgreSQL had cores to spare: the others commit beside it. A
delivery's outcome can only follow the commit that made it, so its lane never races
the one before.
A receipt that finds no stored part (its submit response still in the parts lane,
or on another instance) is parked, and the next batch of parts settles it; a batch
that parks one asks the parts lane to look again once it is committed. Whatever
must be on disk before warpd answers its peer (a carrier's receipt or MO before its
deliver_sm_resp) awaits its batch; the rest does not.

Final states are derived in SQL from the parts, so a receipt that arrives on
any instance, before or after a restart, settles its message the same way,
and the refund (or, for an account charged on delivery, the charge or release
of the message's reservation) and the receipt owed to the customer are written
in the same transaction as the final state: once, whatever crashes. The receipts
of two parts of one message may commit side by side, in two lanes or on two
instances: each locks the message before it counts its parts, so the second to
count sees the first's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from warpd.sms.catalog import Catalog
from warpd.sms.deliveries_payload import Finished, deliveries_for
from warpd.sms.stats import SmsStats
from warpd.store.held import HeldConnection

log = structlog.get_logger(__name__)

# Errors after which the same batch can succeed: PostgreSQL away, or a conflict.
_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

FINAL_STATES = ("delivered", "undeliverable", "expired", "rejected", "deleted", "unknown", "failed")
REFUNDED_STATES = frozenset({"undeliverable", "expired", "rejected", "failed"})


@dataclass(frozen=True, slots=True)
class PartAccepted:
    message_id: uuid.UUID
    part_no: int
    connector_id: int
    carrier_id: str
    #: True for the last part of its message to be accepted: the message is 'submitted'.
    last: bool
    attempts: int


@dataclass(frozen=True, slots=True)
class CarrierReceipt:
    connector_id: int
    carrier_id: str
    state: str
    error_code: int | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MessageFailed:
    """Final without a carrier receipt: refused upstream on every candidate, or expired."""

    message_id: uuid.UUID
    state: str
    error_code: int | None
    error_text: str


@dataclass(frozen=True, slots=True)
class MoReceived:
    record: tuple[Any, ...]  # mo_messages row, MO_COLUMNS order
    deliveries: tuple[tuple[Any, ...], ...]  # DELIVERY_COLUMNS order, the payload a dict
    opt_out: tuple[str, int, str] | None  # ("stop"|"start", account_id, msisdn)


@dataclass(frozen=True, slots=True)
class DeliveryDone:
    delivery_id: int


@dataclass(frozen=True, slots=True)
class DeliveryRetry:
    delivery_id: int
    delay: float
    error: str


@dataclass(frozen=True, slots=True)
class Unpark:
    """Look again for the carrier ids of parked receipts.

    With several instances a receipt can be parked by one while the
    submit_sm_resp that maps it commits on another, in the same instant; that
    one never saw it parked, so the parking instance looks again now and then.
    """


Entry = (
    PartAccepted
    | CarrierReceipt
    | MessageFailed
    | MoReceived
    | DeliveryDone
    | DeliveryRetry
    | Unpark
)

MO_COLUMNS = (
    "id",
    "connector_id",
    "carrier_message_id",
    "account_id",
    "mo_route_id",
    "source_addr",
    "destination_addr",
    "esm_class",
    "data_coding",
    "body",
    "tlvs",
    "state",
)
DELIVERY_COLUMNS = (
    "account_id",
    "kind",
    "message_id",
    "mo_id",
    "via",
    "smpp_user_id",
    "webhook_id",
    "url",
    "payload",
    "expires_at",
    "claimed_by",
    "claimed_until",
)
_VIA, _SMPP_USER, _PAYLOAD, _CLAIMED_BY = (
    DELIVERY_COLUMNS.index(c) for c in ("via", "smpp_user_id", "payload", "claimed_by")
)


@dataclass(slots=True)
class _Batch:
    entries: list[Entry] = field(default_factory=list)
    #: entry index -> who waits for it to be stored
    waiters: dict[int, asyncio.Future[None]] = field(default_factory=dict)


class _Lane:
    """One writer: the batch it gathers, its connection, whether it is writing."""

    __slots__ = ("batch", "conn", "urgent", "wakeup", "writing")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.batch = _Batch()
        self.conn = HeldConnection(pool)
        self.wakeup = asyncio.Event()
        # Set when an entry that someone waits for is queued: a lingering batch goes now.
        self.urgent = asyncio.Event()
        self.writing = False

    @property
    def idle(self) -> bool:
        return not self.batch.entries and not self.writing


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery row just committed, for whoever takes it now."""

    id: int
    via: str
    smpp_user_id: int | None
    payload: dict[str, Any]


Delivered = Callable[[Sequence[NewDelivery]], None]

# message_parts and messages are partitioned by month of the message id, a
# UUIDv7 (migration 0010): each lookup below carries a lower bound on it, so
# PostgreSQL probes the months from that bound on, not every month kept.
# A receipt names only the carrier's id, so its bound is a look-back: a carrier
# reports within hours (within the validity, 48 h by default), and what the
# look-back misses (a late receipt of an old message) is looked up in every
# month before it is parked.
RECEIPT_LOOKBACK = timedelta(days=7)
# Seconds a batch that nobody waits for (submit responses, settled deliveries) gathers
# more before it is committed. At 1,000 msg/s, 10 ms let each of these lanes commit
# up to a hundred times a second, each a fixed cost to PostgreSQL beside the group
# commit's: 50 ms took a 20,000-message run's commits from 12,300 to 10,100 and
# PostgreSQL's CPU per message 8% down, and the customers' submit_sm_resp p99 fell
# in three paired runs of four. A receipt that comes meanwhile for a part still
# gathering is parked, then settled by that batch. A crash loses what gathers: a
# carrier id not yet stored means that message is sent again after the restart (at
# least once, README), a delivery outcome that the receipt is delivered again.
LINGER = 0.05
# A small batch that somebody waits for (a carrier's deliver_sm_resp) waits this long
# for company: at 1,000 msg/s each receipt cut a batch of its own, and the journal's
# commits, about 75 a second, competed with the group commit for PostgreSQL and the
# loop. Paced runs of 20,000 messages at 1,000/s, with and without, in pairs: the
# customer's submit_sm_resp p99 fell in each of nine (e.g. 22.1 -> 17.5 ms). A large
# batch goes at once: at full speed the carrier's deliver_sm window would feel it.
URGENT_LINGER = 0.003
URGENT_BATCH = 64
# Lanes for receipts, failures and MO. A carrier's deliver_sm window waits on their
# commits: with one lane, 30,000 messages at full speed over 4 customer binds kept it
# busy all the time (batches of 100 receipts, 45 ms each while submits ran, 16 ms
# after) with the machine 65-85% busy, and receipts came back at 2,200/s while
# 6,000/s were accepted. Two commit side by side: the end-to-end rate rose in three
# paired runs of four (mean 3,791 -> 3,893 msg/s); three lanes did no better.
AFTER_LANES = 2
# Below every id: no bound.
_ALL_MONTHS = uuid.UUID(int=0)

# What a message made final is read back for: its money (_settle) and what its customer
# is owed (deliveries_payload.Finished). Not the whole row: a third of its columns,
# timestamps among them, decoded for every receipt and never looked at.
_DONE = """m.id, m.account_id, m.channel, m.smpp_user_id, m.registered_delivery, m.state,
m.error_code, m.parts, m.source_addr, m.source_ton, m.source_npi, m.destination_addr,
m.dest_ton, m.dest_npi, m.body, m.data_coding, m.esm_class, m.client_ref, m.callback_url,
m.created_at, m.done_at, m.price_micros"""

# A message's reservation (an account charged on delivery, migration 0013) goes in the
# statement that makes the message final, its amount back with the row: a DELETE of
# its own cost each batch a round trip (5-7 ms of a 50 ms batch of 100 receipts while
# submits ran), for accounts that reserve nothing as much as for those that do.
_HELD = """held AS (DELETE FROM sms_reservations h USING done d WHERE h.message_id = d.id
               RETURNING h.message_id, h.account_id, h.amount_micros)"""
_HELD_COLUMNS = "h.account_id AS reserved_account, h.amount_micros AS reserved_micros"


def _with_held(update: str) -> str:
    """``update`` (of messages, returning _DONE) with each message's reservation, taken."""
    return (
        f"WITH done AS ({update} RETURNING {_DONE}), {_HELD}"
        f" SELECT d.*, {_HELD_COLUMNS} FROM done d LEFT JOIN held h ON h.message_id = d.id"
    )


_FINISHED = _with_held("""
UPDATE messages m
   SET state = f.state, done_at = now(), error_code = coalesce(f.err, m.error_code)
  FROM (SELECT message_id, count(*) AS done, max(error_code) AS err,
               CASE WHEN bool_and(state = 'delivered') THEN 'delivered'
                    ELSE (array_agg(state ORDER BY state = 'delivered', part_no))[1] END AS state
          FROM message_parts
         WHERE message_id = any($1::uuid[]) AND message_id >= $2 AND state <> 'submitted'
         GROUP BY message_id) f
 WHERE m.id = f.message_id AND m.id >= $2 AND f.done >= m.parts
   AND m.state IN ('queued', 'submitted')""")

_LOCK_MESSAGES = """
SELECT FROM messages WHERE id = any($1::uuid[]) AND id >= $2 ORDER BY id FOR UPDATE
"""

_FAILED = _with_held("""
UPDATE messages m
   SET state = f.state, error_code = f.err, error_text = f.txt, done_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS f(id, state, err, txt)
 WHERE m.id = f.id AND m.id >= $5 AND m.state IN ('queued', 'submitted')""")

# The parts the receipts name, settled; and, in the same statement, the messages of
# one part, which that receipt makes final (the receipts of several parts go through
# _FINISHED, which looks at every part), and their reservations. Each row is a receipt
# that found its part, with its message's columns when it made it final (NULL otherwise).
_RECEIPTS = f"""
WITH r AS (
    UPDATE message_parts p
       SET state = r.state, error_code = r.err, done_at = now()
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[])
           AS r(connector_id, carrier_id, state, err, idx)
     WHERE p.connector_id = r.connector_id AND p.carrier_message_id = r.carrier_id
       AND p.state = 'submitted' AND p.message_id >= $6
    RETURNING p.message_id, p.state, p.error_code, r.idx
), done AS (
    UPDATE messages m
       SET state = r.state, done_at = now(), error_code = coalesce(r.error_code, m.error_code)
      FROM r
     WHERE m.id = r.message_id AND m.id >= $6 AND m.parts = 1
       AND m.state IN ('queued', 'submitted')
    RETURNING {_DONE}
), {_HELD}
SELECT r.message_id, r.idx, d.*, {_HELD_COLUMNS}
  FROM r LEFT JOIN done d ON d.id = r.message_id LEFT JOIN held h ON h.message_id = d.id
"""

_UNPARK = """
DELETE FROM pending_receipts pr
 USING message_parts p
 WHERE p.connector_id = pr.connector_id AND p.carrier_message_id = pr.carrier_message_id
   AND p.state = 'submitted' AND p.message_id >= $1
RETURNING pr.payload
"""


class Journal:
    def __init__(
        self,
        pool: asyncpg.Pool,
        stats: SmsStats,
        *,
        instance_id: str,
        delivery_ttl: timedelta,
        lease: timedelta,
        on_deliveries: Delivered,
        locally_bound: Callable[[int], bool],
    ) -> None:
        self.catalog = Catalog()
        self._pool = pool
        self.stats = stats
        self._instance = instance_id
        self._ttl = delivery_ttl
        self._lease = lease
        self._on_deliveries = on_deliveries
        self._locally_bound = locally_bound
        self._parts_lane, self._outcome_lane = _Lane(pool), _Lane(pool)
        self._after_lanes = tuple(_Lane(pool) for _ in range(AFTER_LANES))
        self._lanes = (self._parts_lane, *self._after_lanes, self._outcome_lane)
        self._parked = 0
        self.commits = 0
        self.last_error: str | None = None

    def _lane(self, entry: Entry) -> _Lane:
        # Unpark joins parked receipts to stored parts: where the parts are stored.
        if isinstance(entry, PartAccepted | Unpark):
            return self._parts_lane
        if isinstance(entry, DeliveryDone | DeliveryRetry):
            return self._outcome_lane
        # One that is gathering, not writing: its batch goes next. With all writing,
        # the shortest batch.
        for lane in self._after_lanes:
            if not lane.writing:
                return lane
        return min(self._after_lanes, key=lambda lane: len(lane.batch.entries))

    def add(self, entry: Entry) -> None:
        lane = self._lane(entry)
        lane.batch.entries.append(entry)
        lane.wakeup.set()

    def add_and_wait(self, entry: Entry) -> asyncio.Future[None]:
        """Queue ``entry``; the future resolves when its batch is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._lane(entry)
        lane.batch.waiters[len(lane.batch.entries)] = future
        lane.batch.entries.append(entry)
        lane.wakeup.set()
        lane.urgent.set()
        return future

    @property
    def depth(self) -> int:
        return sum(len(lane.batch.entries) for lane in self._lanes)

    @property
    def parked(self) -> int:
        """Receipts this instance parked that may still wait for their carrier id."""
        return self._parked

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being written."""
        return all(lane.idle for lane in self._lanes)

    async def run(self) -> None:
        async with self._pool.acquire() as conn:
            self._parked = await conn.fetchval("SELECT count(*) FROM pending_receipts")
        try:
            async with asyncio.TaskGroup() as serving:
                for lane in self._lanes:
                    serving.create_task(self._serve(lane))
        finally:
            for lane in self._lanes:
                await lane.conn.release()

    async def _serve(self, lane: _Lane) -> None:
        while True:
            await lane.wakeup.wait()
            lane.wakeup.clear()
            while lane.batch.entries:
                if lane.batch.waiters:
                    if len(lane.batch.entries) < URGENT_BATCH:
                        await asyncio.sleep(URGENT_LINGER)
                else:
                    # Nobody waits for these (submit responses, settled deliveries):
                    # a few milliseconds gather the next ones into the same commit,
                    # unless an entry that someone waits for comes meanwhile.
                    lane.urgent.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(LINGER):
                            await lane.urgent.wait()
                batch, lane.batch = lane.batch, _Batch()
                lane.writing = True
                try:
                    await self._commit(lane, batch)
                finally:
                    lane.writing = False

    async def _commit(self, lane: _Lane, batch: _Batch) -> None:
        delay = 0.05
        while True:
            try:
                created, parked = await self._write(lane, batch.entries)
                break
            except _TRANSIENT as exc:
                # Nothing here may be dropped: a receipt or a submit response
                # is the carrier's word. Retry until PostgreSQL is back, with
                # the waiters (deliver_sm_resp to the carrier) still waiting.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("journal_commit_failed", entries=len(batch.entries), error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except asyncpg.PostgresError as exc:
                # A row the database refuses must not stop every other one
                # forever: find it by writing one entry at a time.
                await self._isolate(lane, batch, exc)
                return
        self.last_error = None
        self.commits += 1
        for waiter in batch.waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        if created:
            self._on_deliveries(created)
        if parked and lane in self._after_lanes:
            # Parked while its part may have been committing in the parts lane, whose
            # look at the parked ones could not see this batch's: look again now.
            self.add(Unpark())

    async def _isolate(self, lane: _Lane, batch: _Batch, exc: asyncpg.PostgresError) -> None:
        if len(batch.entries) == 1:
            log.error("journal_entry_refused", entry=repr(batch.entries[0]), error=str(exc))
            waiter = batch.waiters.get(0)
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)  # the carrier gets a temporary error
            return
        for index, entry in enumerate(batch.entries):
            single = _Batch([entry])
            if index in batch.waiters:
                single.waiters[0] = batch.waiters[index]
            await self._commit(lane, single)

    async def _write(self, lane: _Lane, entries: list[Entry]) -> tuple[list[NewDelivery], int]:
        """Commit ``entries``; what deliveries it made, and how many receipts it parked."""
        parts = [e for e in entries if isinstance(e, PartAccepted)]
        receipts = [e for e in entries if isinstance(e, CarrierReceipt)]
        failed = [e for e in entries if isinstance(e, MessageFailed)]
        mos = [e for e in entries if isinstance(e, MoReceived)]
        done = [e.delivery_id for e in entries if isinstance(e, DeliveryDone)]
        retries = [e for e in entries if isinstance(e, DeliveryRetry)]
        recount = any(isinstance(e, Unpark) for e in entries)
        finished: list[asyncpg.Record] = []
        deliveries: list[tuple[Any, ...]] = []
        parked = 0
        conn = await lane.conn.get()
        try:
            async with conn.transaction():
                if parts:
                    await self._parts(conn, parts)
                if (parts or recount) and self._parked:
                    # The parts just stored are what a parked receipt may now match;
                    # the now-and-then recount also looks for other instances' parts.
                    bound = _ALL_MONTHS if recount else min(p.message_id for p in parts)
                    receipts = [*receipts, *await self._unpark(conn, bound)]
                if recount:  # others may have settled what this instance parked
                    self._parked = await conn.fetchval("SELECT count(*) FROM pending_receipts")
                if receipts:
                    settled, parked = await self._receipts(conn, receipts)
                    finished += settled
                if failed:
                    finished += await conn.fetch(
                        _FAILED,
                        [f.message_id for f in failed],
                        [f.state for f in failed],
                        [f.error_code for f in failed],
                        [f.error_text for f in failed],
                        min(f.message_id for f in failed),
                    )
                if finished:
                    await self._settle(conn, finished)
                    deliveries += self._owed(finished)
                for mo in mos:
                    deliveries += await self._mo(conn, mo)
                if done:
                    await conn.execute(
                        "UPDATE deliveries SET state = 'delivered', delivered_at = now(),"
                        " attempts = attempts + 1, claimed_by = NULL WHERE id = any($1::bigint[])",
                        done,
                    )
                if retries:
                    await conn.execute(
                        "UPDATE deliveries d SET attempts = d.attempts + 1, claimed_by = NULL,"
                        " next_attempt_at = now() + make_interval(secs => r.delay)"
                        " FROM unnest($1::bigint[], $2::float8[]) AS r(id, delay)"
                        " WHERE d.id = r.id",
                        [r.delivery_id for r in retries],
                        [r.delay for r in retries],
                    )
                created = await self._insert_deliveries(conn, deliveries) if deliveries else []
        except BaseException:
            await lane.conn.release()  # the pool checks it; the next batch gets a sound one
            raise
        return created, parked

    async def _parts(self, conn: Any, parts: list[PartAccepted]) -> None:
        # One statement per batch (migration 0018): executemany would run one per row.
        last = [p for p in parts if p.last]
        await conn.execute(
            "SELECT store_parts($1::uuid[], $2::int2[], $3::bigint[], $4::text[],"
            " $5::uuid[], $6::bigint[], $7::int[], $8::uuid)",
            [p.message_id for p in parts],
            [p.part_no for p in parts],
            [p.connector_id for p in parts],
            [p.carrier_id for p in parts],
            [p.message_id for p in last],
            [p.connector_id for p in last],
            [p.attempts for p in last],
            min(p.message_id for p in parts),
        )

    async def _receipts(
        self, conn: Any, receipts: list[CarrierReceipt]
    ) -> tuple[list[asyncpg.Record], int]:
        """The messages the receipts made final, and how many receipts were parked."""
        recent = uuid7_floor(datetime.now(UTC) - RECEIPT_LOOKBACK)
        matched = await self._match(conn, receipts, range(len(receipts)), recent)
        hit = {row["idx"] for row in matched}
        if len(hit) < len(receipts):
            missed = [i for i in range(len(receipts)) if i not in hit]
            more = await self._match(conn, [receipts[i] for i in missed], missed, _ALL_MONTHS)
            matched += more
            hit.update(row["idx"] for row in more)
        orphans = [r for i, r in enumerate(receipts) if i not in hit]
        if orphans:
            # Before its submit_sm_resp was stored, or for an id we never
            # issued: park it; the next stored mapping settles it.
            await conn.execute(
                "INSERT INTO pending_receipts (connector_id, carrier_message_id, payload,"
                " expires_at) SELECT c, i, p, now() + interval '1 day'"
                " FROM unnest($1::bigint[], $2::text[], $3::jsonb[]) AS o(c, i, p)",
                [r.connector_id for r in orphans],
                [r.carrier_id for r in orphans],
                [_receipt_payload(r) for r in orphans],
            )
            self._parked += len(orphans)
        finished = [row for row in matched if row["id"] is not None]
        others = sorted({row["message_id"] for row in matched if row["id"] is None})
        if others:
            # The other parts' receipts may be committing beside this batch, unseen by
            # a count now: wait for them (in id order, so two lanes never deadlock
            # here), then count in a statement of its own, which sees what they wrote.
            await conn.execute(_LOCK_MESSAGES, others, others[0])
            finished += await conn.fetch(_FINISHED, others, others[0])
        return finished, len(orphans)

    @staticmethod
    async def _match(
        conn: Any, receipts: Sequence[CarrierReceipt], indexes: Sequence[int], bound: uuid.UUID
    ) -> list[asyncpg.Record]:
        """Settle the parts ``receipts`` name among messages from ``bound`` on."""
        return list(
            await conn.fetch(
                _RECEIPTS,
                [r.connector_id for r in receipts],
                [r.carrier_id for r in receipts],
                [r.state for r in receipts],
                [r.error_code for r in receipts],
                list(indexes),
                bound,
            )
        )

    async def _unpark(self, conn: Any, bound: uuid.UUID) -> list[CarrierReceipt]:
        # Receipts for ids we never issued would wait (and be joined) for ever:
        # they go when they expire.
        expired = await conn.fetchval(
            "WITH gone AS (DELETE FROM pending_receipts WHERE expires_at < now() RETURNING 1)"
            " SELECT count(*) FROM gone"
        )
        rows = await conn.fetch(_UNPARK, bound)
        self._parked = max(0, self._parked - len(rows) - expired)
        return [_receipt_from_payload(orjson.loads(r[0])) for r in rows]

    async def _settle(self, conn: Any, finished: list[asyncpg.Record]) -> None:
        """The money of messages now final. Charged at acceptance: refunded if it failed.
        Charged on delivery: its reservation is charged if delivered, else released.
        The reservation row, not the account's mode now, says how a message was paid
        for; the statement that made it final took it (_HELD): charged or released once."""
        moves = []
        for m in finished:
            if m["reserved_micros"] is not None:
                if m["state"] == "delivered":
                    charge = -m["reserved_micros"]
                    moves.append(
                        (m["reserved_account"], charge, "sms_charge", m["id"], "on delivery")
                    )
            elif m["price_micros"] and m["state"] in REFUNDED_STATES:
                refund = m["price_micros"]
                moves.append((m["account_id"], refund, "sms_refund", m["id"], m["state"]))
        if moves:
            # The unique (message_id, kind) index makes a second charge or refund a no-op.
            await conn.execute(
                "INSERT INTO ledger (account_id, amount_micros, kind, message_id, note)"
                " SELECT a, m, k, i, n FROM unnest($1::bigint[], $2::bigint[], $3::text[],"
                " $4::uuid[], $5::text[]) AS r(a, m, k, i, n)"
                " ON CONFLICT DO NOTHING",
                *[list(column) for column in zip(*moves, strict=True)],
            )

    def _owed(self, finished: list[asyncpg.Record]) -> list[tuple[Any, ...]]:
        now = datetime.now(UTC)
        rows: list[tuple[Any, ...]] = []
        for message in finished:
            done = Finished.from_record(message)
            self.stats.receipt_latency.observe((done.done_at - done.created_at).total_seconds())
            for target in deliveries_for(done, self.catalog):
                local = target.smpp_user_id is not None and self._locally_bound(target.smpp_user_id)
                rows.append(
                    (
                        done.account_id,
                        "dlr",
                        done.id,
                        None,
                        target.via,
                        target.smpp_user_id,
                        target.webhook_id,
                        target.url,
                        target.payload,
                        now + self._ttl,
                        self._instance if local else None,
                        now + self._lease if local else None,
                    )
                )
        return rows

    async def _mo(self, conn: Any, mo: MoReceived) -> list[tuple[Any, ...]]:
        await conn.copy_records_to_table("mo_messages", records=[mo.record], columns=MO_COLUMNS)
        if mo.opt_out is not None:
            action, account_id, msisdn = mo.opt_out
            if action == "stop":
                await conn.execute(
                    "INSERT INTO opt_outs (account_id, msisdn) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    account_id,
                    msisdn,
                )
            else:
                await conn.execute(
                    "DELETE FROM opt_outs WHERE account_id = $1 AND msisdn = $2",
                    account_id,
                    msisdn,
                )
        return list(mo.deliveries)

    async def _insert_deliveries(self, conn: Any, rows: list[tuple[Any, ...]]) -> list[NewDelivery]:
        columns = [list(c) for c in zip(*rows, strict=True)]
        payloads = columns[_PAYLOAD]
        columns[_PAYLOAD] = [orjson.dumps(p).decode() for p in payloads]
        # The notifies of the rows nobody here takes go in the same call; the ids come
        # back in the rows' order (migrations 0018, 0019).
        ids = await conn.fetchval(
            "SELECT insert_deliveries($1::bigint[], $2::text[], $3::uuid[], $4::uuid[],"
            " $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::jsonb[],"
            " $10::timestamptz[], $11::text[], $12::timestamptz[])",
            *columns,
        )
        vias, users, claimers = columns[_VIA], columns[_SMPP_USER], columns[_CLAIMED_BY]
        return [
            NewDelivery(ids[i], vias[i], users[i], payloads[i])
            for i in range(len(rows))
            if claimers[i] is not None
        ]


def uuid7_floor(at: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of the millisecond ``at`` (partition_bound('uuid7', at), 0010)."""
    return uuid.UUID(int=int(at.timestamp() * 1000) << 80)


def _receipt_payload(receipt: CarrierReceipt) -> str:
    return orjson.dumps(
        {
            "connector_id": receipt.connector_id,
            "carrier_id": receipt.carrier_id,
            "state": receipt.state,
            "error_code": receipt.error_code,
            "detail": receipt.detail,
        }
    ).decode()


def _receipt_from_payload(data: dict[str, Any]) -> CarrierReceipt:
    return CarrierReceipt(
        data["connector_id"],
        data["carrier_id"],
        data["state"],
        data["error_code"],
        data["detail"],
    )
