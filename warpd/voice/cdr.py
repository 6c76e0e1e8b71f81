"""Voice CDRs and their charges, written in batches (one transaction per batch).

A finished call is one ``voice_cdrs`` row and, when it cost something, one
``voice_charge`` ledger row (negative, keyed by the CDR id: the unique index
``ledger_once_per_call`` makes a second charge impossible, and the ledger
trigger moves the balance). Answered calls also get a ``voice_active_calls``
row until their CDR lands, so a crash leaves a trace that the next start
closes (``warpd.voice.recovery``). Calls hand records to ``CdrWriter.put``
(never awaiting the database); a writer task flushes by size or interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass, field

import asyncpg
import orjson
import structlog

from warpd.billing.balances import Balances
from warpd.voice.rating import VoiceRate, billsec_of, price_micros

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Cdr:
    """One call, filled in as it progresses; column names are ``voice_cdrs``'s."""

    id: uuid.UUID
    direction: str
    call_id_a: str
    src_raw: str
    dst_raw: str
    start_at: dt.datetime
    account_id: int | None = None
    trunk_id: int | None = None
    call_id_b: str | None = None
    src_e164: str | None = None
    dst_e164: str | None = None
    route_id: int | None = None
    gateway_id: int | None = None
    attempts: int = 0
    attempt_codes: list[int] = field(default_factory=list)
    ring_at: dt.datetime | None = None
    answer_at: dt.datetime | None = None
    end_at: dt.datetime | None = None
    duration_ms: int = 0
    billsec: int = 0
    disposition: str = "FAILED"
    sip_code: int | None = None
    q850_cause: int | None = None
    hangup_by: str | None = None
    codec_a: str | None = None
    codec_b: str | None = None
    rtp_packets_a: int | None = None
    rtp_packets_b: int | None = None
    rtp_bytes_a: int | None = None
    rtp_bytes_b: int | None = None
    rtp_lost_a: int | None = None
    rtp_lost_b: int | None = None
    mos_avg_x10: int | None = None
    mos_min_x10: int | None = None
    rtpengine_node: str | None = None
    price_micros: int = 0
    cost_micros: int = 0
    currency: str | None = None
    recording: str | None = None  # 'recorded' or 'refused' when the trunk records calls
    recording_path: str | None = None

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)

    def to_json(self) -> bytes:
        return orjson.dumps({name: getattr(self, name) for name in COLUMNS})

    @classmethod
    def from_json(cls, data: str | bytes) -> Cdr:
        values = orjson.loads(data)
        for name in ("start_at", "ring_at", "answer_at", "end_at"):
            if values.get(name) is not None:
                values[name] = dt.datetime.fromisoformat(values[name])
        values["id"] = uuid.UUID(values["id"])
        return cls(**values)


COLUMNS = tuple(f.name for f in dataclasses.fields(Cdr))


def disposition_of(code: int) -> str:
    """Asterisk's disposition words for an unanswered call's final status."""
    if code in (486, 600):
        return "BUSY"
    if code == 487:
        return "CANCELLED"
    if code in (408, 480):
        return "NO ANSWER"
    if code == 503:
        return "CONGESTION"
    return "FAILED"


def close_cdr(cdr: Cdr, end_at: dt.datetime, rate: VoiceRate | None, *, cancelled: bool) -> Cdr:
    """End times, billsec, disposition and price of a finished call (pure).

    Only an answered call is billed: billsec from answer to end, a started
    second counted, priced per the rate's increments.
    """
    cdr.end_at = end_at
    cdr.duration_ms = max(0, int((end_at - cdr.start_at).total_seconds() * 1000))
    if cdr.answer_at is not None:
        cdr.disposition = "ANSWERED"
        cdr.billsec = billsec_of(int((end_at - cdr.answer_at).total_seconds() * 1000))
        cdr.price_micros = 0 if rate is None else price_micros(rate, cdr.billsec)
        cdr.hangup_by = cdr.hangup_by or "system"
        return cdr
    if cancelled:
        cdr.sip_code, cdr.hangup_by = 487, "caller"
    cdr.disposition = disposition_of(cdr.sip_code or 500)
    return cdr


@dataclass(frozen=True, slots=True)
class Answered:
    """A call went up: remember it durably until its CDR is written."""

    cdr: Cdr
    instance: str


Record = Cdr | Answered
# Tries to write one batch before its CDRs are given up as lost (and logged).
ATTEMPTS = 5


class CdrWriter:
    """A bounded queue in front of one writer task (group commit)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        batch: int = 500,
        interval: float = 0.05,
        capacity: int = 100_000,
        balances: Balances | None = None,
        retry_after: float = 0.2,
    ) -> None:
        self._pool = pool
        self._balances = balances
        # The first retry's wait, doubled for each of the next (five attempts in all).
        self._retry_after = retry_after
        # What the balances hold for a CDR's charge (an account they had loaded), by CDR
        # id, until it is posted.
        self._holding: dict[uuid.UUID, tuple[int, int]] = {}
        self._batch = batch
        self._interval = interval
        self._queue: asyncio.Queue[Record] = asyncio.Queue(capacity)
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="voice-cdr-writer")

    def put(self, record: Record) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            # Only when PostgreSQL is far behind; the log keeps what was lost.
            log.error("voice_cdr_queue_full", record=type(record).__name__)
            return
        if isinstance(record, Cdr) and self._balances is not None:
            owed = _owed(record)
            if owed is not None and self._balances.owe(*owed):
                self._holding[record.id] = owed

    async def close(self, timeout: float) -> None:
        """Write what is queued, then stop."""
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
        except TimeoutError:
            log.warning("voice_cdr_flush_timeout", left=self._queue.qsize())
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def flushed(self) -> None:
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            records = [await self._queue.get()]
            await asyncio.sleep(self._interval)
            while len(records) < self._batch and not self._queue.empty():
                records.append(self._queue.get_nowait())
            try:
                await self._write_retrying(records)
            finally:
                for _ in records:
                    self._queue.task_done()

    async def _write_retrying(self, records: list[Record]) -> None:
        charged: dict[uuid.UUID, int] | None = None
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._retry_after * 2 ** (attempt - 1))
            try:
                charged = await write(self._pool, records)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("voice_cdr_write_failed", error=str(exc), attempt=attempt)
            else:
                self.written += sum(isinstance(r, Cdr) for r in records)
                break
        else:
            log.error("voice_cdrs_lost", count=len(records))
        held = [r.id for r in records if isinstance(r, Cdr) and r.id in self._holding]
        if not held or self._balances is None:
            return
        if charged is None:
            # The last attempt's commit may have landed with its answer lost: what the
            # ledger has was charged; the rest never will be. Unknown: keep holding.
            charged = await self._charged(held)
            if charged is None:
                return
        for cdr_id in held:
            account_id, owed = self._holding.pop(cdr_id)
            self._balances.posted(account_id, owed, charged.get(cdr_id, 0))

    async def _charged(self, cdr_ids: list[uuid.UUID]) -> dict[uuid.UUID, int] | None:
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT call_id, -amount_micros FROM ledger"
                    " WHERE kind = 'voice_charge' AND call_id = ANY($1::uuid[])",
                    cdr_ids,
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.error("voice_charges_unknown", count=len(cdr_ids), error=str(exc))
            return None
        return {row[0]: row[1] for row in rows}


_CHARGE = """
INSERT INTO ledger (account_id, amount_micros, kind, call_id, note)
SELECT c.account_id, c.amount, 'voice_charge', c.call_id, c.note
  FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::text[])
       AS c(account_id, amount, call_id, note)
ON CONFLICT (call_id, kind) WHERE call_id IS NOT NULL DO NOTHING
RETURNING call_id, -amount_micros
"""


_ACTIVE = """
INSERT INTO voice_active_calls (id, instance, account_id, trunk_id, cdr, answer_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING
"""


def _owed(cdr: Cdr) -> tuple[int, int] | None:
    """(account, amount) a finished call will be charged, held until its row commits."""
    if cdr.price_micros > 0 and cdr.account_id is not None:
        return cdr.account_id, cdr.price_micros
    return None


async def write(pool: asyncpg.Pool, records: list[Record]) -> dict[uuid.UUID, int]:
    """One transaction: active-call rows, CDRs, their charges, active rows removed.

    Returns what each CDR was charged, by CDR id (nothing where the ledger already had
    a charge for that call: the unique index keeps a call from being charged twice)."""
    charged: dict[uuid.UUID, int] = {}
    cdrs = [r for r in records if isinstance(r, Cdr)]
    answered = [r for r in records if isinstance(r, Answered)]
    done_ids = {c.id for c in cdrs}
    async with pool.acquire() as conn, conn.transaction():
        live = [a for a in answered if a.cdr.id not in done_ids]
        if live:
            await conn.executemany(
                _ACTIVE,
                [
                    (
                        a.cdr.id,
                        a.instance,
                        a.cdr.account_id,
                        a.cdr.trunk_id,
                        a.cdr.to_json().decode(),
                        a.cdr.answer_at,
                    )
                    for a in live
                ],
            )
        if cdrs:
            await conn.copy_records_to_table(
                "voice_cdrs", records=[c.row() for c in cdrs], columns=COLUMNS
            )
            charges = [c for c in cdrs if _owed(c) is not None]
            if charges:
                rows = await conn.fetch(
                    _CHARGE,
                    [c.account_id for c in charges],
                    [-c.price_micros for c in charges],
                    [c.id for c in charges],
                    [f"call {c.dst_e164 or c.dst_raw}" for c in charges],
                )
                charged = {row[0]: row[1] for row in rows}
            await conn.execute(
                "DELETE FROM voice_active_calls WHERE id = ANY($1::uuid[])", list(done_ids)
            )
    return charged
