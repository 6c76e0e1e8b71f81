"""The webhook sender: takes due ``deliveries`` rows and POSTs them, signed.

Several instances share the table: a batch is claimed with
``FOR UPDATE SKIP LOCKED`` and a lease (``claimed_by``/``claimed_until``), so
no two post the same delivery at once, and a crashed instance's claims lapse
and are taken over. The receipt and MO code NOTIFYs ``warpd_deliveries`` after
its commit; the sender LISTENs to wake at once and also polls every second.

Isolation: at most ``per_endpoint`` POSTs run per origin (scheme, host,
port) and ``max_in_flight`` in all, each under the webhook's short timeout.
Work for an origin that is already busy waits in a local queue short enough
to start within its lease; past that it is handed back unclaimed, and while the
origin stays busy its targets are left out of further claims, so a slow or
dead customer endpoint holds a few slots for a few seconds and never the
claims other customers need.
Every attempt is one ``webhook_attempts`` row; outcomes are written in
batches (one transaction per flush) so a receipt storm costs few commits.

Signing: a webhook's POSTs use its own secret; a per-message callback URL
(``deliveries.url``) uses the account's ``callback_secret``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import ipaddress
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import orjson
import structlog
from yarl import URL

import warpd
from warpd.api import signing
from warpd.api.urlguard import GuardedResolver, UrlRefused, public
from warpd.api.webhook_policy import Verdict, decide
from warpd.config.schema import WebhooksConfig
from warpd.store import Database

log = structlog.get_logger(__name__)

CHANNEL = "warpd_deliveries"
POLL_INTERVAL = 1.0
FLUSH_INTERVAL = 0.05

CLAIM_SQL = """
WITH claimed AS (
    UPDATE deliveries d
       SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2)
     WHERE d.id IN (
        SELECT id FROM deliveries
         WHERE state = 'pending' AND via = 'webhook' AND next_attempt_at <= now()
           AND (claimed_until IS NULL OR claimed_until < now())
           -- Targets whose origin is saturated here wait; the rest go first.
           AND (webhook_id IS NULL OR url IS NOT NULL OR webhook_id <> ALL($5::bigint[]))
           AND (url IS NULL OR url <> ALL($6::text[]))
         ORDER BY next_attempt_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED)
    RETURNING d.id, d.account_id, d.kind, d.webhook_id, d.url, d.payload, d.attempts,
              least(d.expires_at, d.created_at + make_interval(secs => $4)) AS deadline)
SELECT c.*, w.url AS hook_url, w.secret, w.timeout_ms, w.enabled, a.callback_secret
  FROM claimed c
  JOIN accounts a ON a.id = c.account_id
  LEFT JOIN webhooks w ON w.id = c.webhook_id
"""

RECORD_ATTEMPTS_SQL = """
INSERT INTO webhook_attempts (delivery_id, attempt_no, status_code, error, latency_ms)
SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::int[])
"""

UPDATE_SQL = """
UPDATE deliveries d
   SET state = u.state, attempts = d.attempts + u.tried,
       next_attempt_at = coalesce(u.next_at, d.next_attempt_at),
       delivered_at = CASE WHEN u.state = 'delivered' THEN now() END,
       claimed_by = NULL, claimed_until = NULL
  FROM unnest($2::bigint[], $3::text[], $4::int[], $5::timestamptz[])
       AS u(id, state, tried, next_at)
 WHERE d.id = u.id AND d.claimed_by = $1
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    kind: str
    # What the claim query can filter on: the webhook row, or the callback URL.
    target: int | str | None
    url: str | None
    secret: str | None
    timeout: float
    body: bytes
    attempts: int
    deadline: dt.datetime

    @property
    def origin(self) -> str:
        """What the per-endpoint limit counts by; a URL yarl cannot parse is its own."""
        if not self.url:
            return ""
        try:
            return str(URL(self.url).origin())
        except ValueError:
            return self.url


@dataclass(frozen=True, slots=True)
class Result:
    delivery_id: int
    attempt_no: int | None  # None: handed back untried
    status: int | None
    error: str | None
    latency_ms: int | None
    state: str
    next_at: dt.datetime | None


def to_delivery(row: asyncpg.Record, default_timeout: float) -> Delivery:
    if row["url"] is not None:
        url, secret = row["url"], row["callback_secret"]
    elif row["enabled"]:
        url, secret = row["hook_url"], row["secret"]
    else:
        url, secret = None, None  # webhook deleted since the row was written
    payload = row["payload"]
    # jsonb's own text, sent as it is: decoding and re-encoding could round numbers.
    body = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    timeout = row["timeout_ms"] / 1000 if row["timeout_ms"] else default_timeout
    target = row["url"] if row["url"] is not None else row["webhook_id"]
    return Delivery(row["id"], row["kind"], target, url, secret, min(timeout, default_timeout * 6),
                    body, row["attempts"], row["deadline"])  # fmt: skip


class WebhookSender:
    def __init__(
        self, database: Database, config: WebhooksConfig, instance: str, lease_seconds: float
    ) -> None:
        self._database = database
        self.config = config
        self._instance = instance
        self._lease = max(lease_seconds, config.timeout * 4)
        # Work queued behind a busy origin must start before its lease lapses:
        # at worst each queued POST waits out a full timeout, per_endpoint at a time.
        self._queue_max = config.per_endpoint * max(2, int(self._lease / (2 * config.timeout)))
        self._wake = asyncio.Event()
        self._results: list[Result] = []
        self._active: collections.Counter[str] = collections.Counter()
        self._waiting: dict[str, collections.deque[Delivery]] = collections.defaultdict(
            collections.deque
        )
        self._tasks: set[asyncio.Task[None]] = set()
        #: Attempts by outcome (delivered, retry, expired, failed), for /metrics.
        self.outcomes: collections.Counter[str] = collections.Counter()
        # Origin -> targets seen while it was saturated: left out of claims meanwhile.
        self._blocked: dict[str, set[int | str]] = collections.defaultdict(set)
        self._runner: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def busy(self) -> int:
        return sum(self._active.values()) + sum(len(q) for q in self._waiting.values())

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.config.allow_private),
            limit=self.config.max_in_flight,
            limit_per_host=self.config.per_endpoint,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": f"warpd/{warpd.__version__}"},
            auto_decompress=False,
        )
        self._runner = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        """Stop claiming, let POSTs in flight finish (bounded by their timeouts), flush."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        # Work waiting behind a busy origin goes back untried for the next instance.
        for queue in self._waiting.values():
            while queue:
                self._hand_back(queue.popleft())
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.config.timeout + 1)
        await self._flush()
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        await self._take_back()
        async with contextlib.AsyncExitStack() as stack:
            await self._listen(stack)
            next_flush = time.monotonic()
            while True:
                try:
                    await self._claim()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("webhook_claim_failed", error=repr(exc))
                    await asyncio.sleep(POLL_INTERVAL)  # the database is away: do not spin
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(POLL_INTERVAL, FLUSH_INTERVAL * 4)):
                        await self._wake.wait()
                self._wake.clear()
                if self._results and time.monotonic() >= next_flush:
                    await self._flush_safely()
                    next_flush = time.monotonic() + FLUSH_INTERVAL

    async def _take_back(self) -> None:
        """Started again under the same instance name (systemd's restart after a crash): the
        claims the last run left are this run's to post now, not after their lease lapses.
        Nothing of this run holds one yet: this runs before the first claim."""
        try:
            async with self._database.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE claimed_by = $1 AND state = 'pending' AND via = 'webhook'",
                    self._instance,
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("webhook_take_back_failed", error=repr(exc), fallback="lease")

    async def _listen(self, stack: contextlib.AsyncExitStack) -> None:
        try:
            conn = await stack.enter_async_context(self._database.pool.acquire())
            await conn.add_listener(CHANNEL, self._notified)
            stack.push_async_callback(self._unlisten, conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("webhook_listen_failed", error=repr(exc), fallback="poll")

    async def _unlisten(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        # A database outage closes the listening connection (the pool takes it
        # back): there is nothing left to remove, and stopping must not fail.
        try:
            await conn.remove_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.info("webhook_unlisten_skipped", error=repr(exc))

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _claim(self) -> None:
        room = self.config.max_in_flight - self.busy
        if room <= 0:
            return
        async with self._database.pool.acquire() as conn:
            rows = await conn.fetch(
                CLAIM_SQL, self._instance, self._lease, room, self.config.max_retry,
                [t for ts in self._blocked.values() for t in ts if isinstance(t, int)],
                [t for ts in self._blocked.values() for t in ts if isinstance(t, str)],
            )  # fmt: skip
        for row in rows:
            self._dispatch(to_delivery(row, self.config.timeout))

    def _dispatch(self, delivery: Delivery) -> None:
        origin = delivery.origin
        if self._active[origin] < self.config.per_endpoint:
            self._start(origin, delivery)
            return
        if delivery.target is not None:
            self._blocked[origin].add(delivery.target)
        if len(self._waiting[origin]) < self._queue_max:
            self._waiting[origin].append(delivery)
        else:
            self._hand_back(delivery)

    def _start(self, origin: str, delivery: Delivery) -> None:
        self._active[origin] += 1
        task = asyncio.create_task(self._attempt(delivery))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, origin))

    def _done(self, task: asyncio.Task[None], origin: str) -> None:
        self._tasks.discard(task)
        self._active[origin] -= 1
        waiting = self._waiting.get(origin)
        if waiting:
            self._start(origin, waiting.popleft())
        else:
            self._blocked.pop(origin, None)
        if not self._active[origin]:
            del self._active[origin]
            if not waiting:
                self._waiting.pop(origin, None)
        self._wake.set()

    def _hand_back(self, delivery: Delivery) -> None:
        # A moment's delay, so the busy origin's backlog is not reclaimed in a spin.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=POLL_INTERVAL)
        self._results.append(Result(delivery.id, None, None, None, None, "pending", later))

    async def _attempt(self, delivery: Delivery) -> None:
        attempt_no = delivery.attempts + 1
        now = dt.datetime.now(dt.UTC)
        if now >= delivery.deadline:
            self._results.append(Result(delivery.id, None, None, "expired before an attempt",
                                        None, "expired", None))  # fmt: skip
            return
        status, error, permanent, latency = await self._post(delivery)
        outcome = decide(
            status=status, permanent=permanent, attempt_no=attempt_no,
            now=dt.datetime.now(dt.UTC), deadline=delivery.deadline,
            initial=self.config.backoff_initial, maximum=self.config.backoff_max,
        )  # fmt: skip
        state = "pending" if outcome.verdict is Verdict.RETRY else outcome.verdict.value
        self.outcomes[outcome.verdict.value] += 1
        self._results.append(Result(delivery.id, attempt_no, status, error, latency, state,
                                    outcome.next_attempt_at))  # fmt: skip
        if outcome.verdict is not Verdict.RETRY:
            log.info("webhook_final", delivery_id=delivery.id, state=state, attempts=attempt_no)

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None, bool, int | None]:
        """(status, error, permanent, latency ms) of one POST."""
        if delivery.url is None or delivery.secret is None:
            return None, "no enabled webhook for this delivery", True, None
        try:
            url = URL(delivery.url)
            usable = url.absolute and url.host is not None
        except ValueError:
            usable = False
        if not usable:
            return None, f"not a usable URL: {delivery.url[:200]!r}", True, None
        if not self.config.allow_private and _literal_private(url.host or ""):
            return None, "URL refused: a loopback or private address", True, None
        assert self._session is not None
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(delivery.secret, timestamp, delivery.body),
            "X-Warpd-Delivery": str(delivery.id),
            "X-Warpd-Event": delivery.kind,
        }
        started = time.perf_counter()
        try:
            async with self._session.post(
                url, data=delivery.body, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=delivery.timeout),
            ) as response:  # fmt: skip
                await response.content.read(4096)  # the answer is not ours to keep
                return response.status, None, False, _ms(started)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, UrlRefused):
                return None, f"URL refused: {exc.os_error}", True, _ms(started)
            return None, f"{type(exc).__name__}: {exc}"[:500], False, _ms(started)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], False, _ms(started)

    async def _flush_safely(self) -> None:
        try:
            await self._flush()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The results stay queued; the leases keep others off the rows meanwhile.
            log.warning("webhook_flush_failed", error=repr(exc), pending=len(self._results))

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        tried = [r for r in batch if r.attempt_no is not None]
        try:
            async with self._database.pool.acquire() as conn, conn.transaction():
                if tried:
                    await conn.execute(
                        RECORD_ATTEMPTS_SQL,
                        [r.delivery_id for r in tried], [r.attempt_no for r in tried],
                        [r.status for r in tried], [r.error for r in tried],
                        [r.latency_ms for r in tried],
                    )  # fmt: skip
                await conn.execute(
                    UPDATE_SQL, self._instance, [r.delivery_id for r in batch],
                    [r.state for r in batch], [0 if r.attempt_no is None else 1 for r in batch],
                    [r.next_at for r in batch],
                )  # fmt: skip
        except BaseException:
            self._results[:0] = batch
            raise


def _literal_private(host: str) -> bool:
    """An IP literal (aiohttp skips the resolver for those) that is not public."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not public(host.strip("[]"))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
