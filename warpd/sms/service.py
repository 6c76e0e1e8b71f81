"""The SMS core inside the daemon: its parts, wired, started and stopped in order.

Start: load the catalog, start the writers, the dispatcher and the delivery
sweep, bind the carriers, then listen for customers. Stop (SIGTERM): stop
accepting, let committed messages be answered, unbind customers, unbind
carriers once their in-flight submits are answered, flush the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from warpd.billing.balances import Balances
from warpd.cluster.membership import Membership
from warpd.cluster.signals import QUEUED, SMPP_DELIVERIES, Signals
from warpd.config import Config
from warpd.smpp.connector import CarrierConnector
from warpd.smpp.server import CustomerListener
from warpd.sms.acceptance import Acceptance
from warpd.sms.catalog import Catalog, load_catalog, load_opt_outs
from warpd.sms.commit import GroupCommit
from warpd.sms.deliveries import DeliveryRouter
from warpd.sms.dispatcher import Dispatcher
from warpd.sms.inbound import CarrierInbound
from warpd.sms.journal import Journal, Unpark
from warpd.sms.quality import DeliveryRatio
from warpd.sms.stats import SmsStats

log = structlog.get_logger(__name__)

MAINTENANCE_INTERVAL = 60.0
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def instance_name(config: Config) -> str:
    return config.cluster.instance_id or socket.gethostname()


class SmsCore:
    def __init__(
        self, config: Config, pool: asyncpg.Pool, dsn: str, *, balances: Balances | None = None
    ) -> None:
        self.config = config
        self.pool = pool
        self.instance_id = instance_name(config)
        lease = timedelta(seconds=config.cluster.lease_seconds)
        sms = config.sms
        self.membership = Membership(
            pool,
            self.instance_id,
            lease_seconds=config.cluster.lease_seconds,
            heartbeat_seconds=config.cluster.heartbeat_seconds,
        )
        self.signals = Signals(dsn, timeout=config.database.connect_timeout)
        self.catalog = Catalog()
        self.stats = SmsStats()
        self.balances = Balances() if balances is None else balances
        self.router = DeliveryRouter(pool, self.stats, instance_id=self.instance_id, lease=lease)
        self.journal = Journal(
            pool,
            self.stats,
            instance_id=self.instance_id,
            delivery_ttl=timedelta(seconds=sms.delivery_ttl),
            lease=lease,
            on_deliveries=self.router.offer,
            locally_bound=self.router.locally_bound,
        )
        self.router.journal = self.journal
        self.dispatcher = Dispatcher(
            pool,
            self.journal,
            instance_id=self.instance_id,
            lease=lease,
            queue_max=sms.connector_queue_max,
        )
        self.commit = GroupCommit(
            pool,
            self.balances,
            self.stats,
            batch_max=sms.batch_max,
            queue_max=sms.queue_max,
            on_committed=self.dispatcher.committed,
        )
        self.acceptance = Acceptance(
            self.commit,
            self.balances,
            self.stats,
            sms,
            instance_id=self.instance_id,
            lease=lease,
        )
        self.acceptance.has_room = self.dispatcher.has_room
        self.acceptance.route_age = self.dispatcher.route_age
        self.acceptance.tabled = self.dispatcher.tabled
        self.dispatcher.left_for_others = lambda: self.signals.notify(QUEUED)
        self.signals.on(QUEUED, self.dispatcher.table_has_work)
        self.signals.on(SMPP_DELIVERIES, self.router.wake)
        self.membership.on_beat.append(self._after_beat)
        self.inbound = CarrierInbound(
            self.journal,
            self.acceptance.opt_outs,
            self.stats,
            instance_id=self.instance_id,
            delivery_ttl=timedelta(seconds=sms.delivery_ttl),
            lease=lease,
        )
        self.connectors: dict[int, CarrierConnector] = {}
        self.delivery_ratio = DeliveryRatio()
        self.listener = CustomerListener(self, config.smpp)
        self._tasks: list[asyncio.Task[None]] = []

    def opt_outs_view(self) -> frozenset[tuple[int, str]]:
        """(account_id, msisdn) pairs refused as opted out, as this instance knows them."""
        return frozenset(self.acceptance.opt_outs)

    @staticmethod
    def now_utc() -> datetime:
        return datetime.now(UTC)

    async def start(self) -> None:
        await self.membership.start()
        await self.dispatcher.recover()
        await self.router.recover()
        await self.reload()
        self.signals.start()
        for coro in (
            self.membership.run(),
            self.commit.run(),
            self.journal.run(),
            self.dispatcher.run(),
            self.router.run(),
            self._reload_loop(),
            self._maintenance_loop(),
            self._unpark_loop(),
        ):
            self._spawn(coro)
        if self.config.smpp.listen or self.config.smpp.tls_listen:
            await self.listener.start()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=getattr(coro, "__qualname__", None))
        task.add_done_callback(_report_failure)
        self._tasks.append(task)

    async def reload(self) -> None:
        mark = self.balances.mark()  # before the accounts are read: see Balances.load
        async with self.pool.acquire() as conn:
            catalog = await load_catalog(conn)
            opt_outs = await load_opt_outs(conn)
        self.catalog = catalog
        for part in (self.acceptance, self.journal, self.dispatcher, self.inbound):
            part.catalog = catalog
        shared = self.acceptance.opt_outs  # the same set the MO path updates
        shared.intersection_update(opt_outs)
        shared.update(opt_outs)
        self.balances.load(
            ((a.id, a.balance_micros - a.reserved_micros, a.credit_limit_micros)
             for a in catalog.accounts.values()),
            mark,
        )  # fmt: skip
        self.delivery_ratio.update(self.stats.receipts)
        self.acceptance.quality = dict(self.delivery_ratio.ratio)
        await self._reconcile_connectors()

    async def _reconcile_connectors(self) -> None:
        wanted = {c.id: c for c in self.catalog.connectors.values() if c.enabled}
        for connector_id, running in list(self.connectors.items()):
            if wanted.get(connector_id) != running.conf:
                # Disabled, removed or changed: rebind with the new settings.
                del self.connectors[connector_id]
                self.dispatcher.links.pop(connector_id, None)
                await running.stop(self.config.daemon.shutdown_timeout)
        for connector_id, conf in wanted.items():
            if connector_id not in self.connectors:
                connector = CarrierConnector(
                    conf, self.dispatcher, self.inbound, self.stats, self.membership
                )
                self.connectors[connector_id] = connector
                self.dispatcher.links[connector_id] = connector
                connector.start()

    async def _after_beat(self) -> None:
        """The other instances' state is fresh: hand over what they can send and we cannot."""
        self.dispatcher.remote_up = self.membership.view.remote_up
        if self.dispatcher.remote_up:
            await self.dispatcher.hand_over()

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sms.reload_interval)
            try:
                await self.reload()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("sms_reload_failed", error=str(exc))

    async def _unpark_loop(self) -> None:
        """Parked receipts whose carrier id another instance stored: settled within a beat.

        Every tenth beat it looks whatever this instance parked itself: an instance
        that died leaves its parked receipts to the others.
        """
        beats = 0
        while True:
            await asyncio.sleep(self.config.cluster.heartbeat_seconds)
            beats += 1
            if self.journal.parked or beats % 10 == 0:
                self.journal.add(Unpark())

    async def _maintenance_loop(self) -> None:
        """What expires with time: receipts and MO nobody bound to take, messages held
        for a connector that stayed down, lockout records of addresses gone quiet."""
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL)
            self.dispatcher.expire()
            now = asyncio.get_running_loop().time()
            self.listener.ip_lockout.forget_idle(now)
            self.listener.user_lockout.forget_idle(now)
            try:
                async with self.pool.acquire() as conn:
                    await conn.execute(
                        "UPDATE deliveries SET state = 'expired' WHERE state = 'pending'"
                        " AND via = 'smpp' AND expires_at < now()"
                    )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("sms_maintenance_failed", error=str(exc))

    async def apply_config(self, config: Config) -> None:
        """SIGHUP: what the SMS core can change live (the TLS certificate)."""
        self.listener.reload_tls(config.smpp)

    async def stop(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.listener.stop_accepting()
        await _until(lambda: self.commit.idle, deadline)
        await self.listener.stop(max(0.1, min(2.0, deadline - loop.time())))
        await _until(
            lambda: not any(c.in_flight for c in self.connectors.values()),
            min(deadline, loop.time() + 2.0),
        )
        await asyncio.gather(
            *(c.stop(max(0.1, min(2.0, deadline - loop.time()))) for c in self.connectors.values())
        )
        await _until(lambda: self.journal.idle, deadline)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Hand what is still ours back at once: another instance, or this one
        # restarted, sends it without waiting for the leases to lapse.
        with contextlib.suppress(*_DB_ERRORS):
            await self.dispatcher.recover()
            await self.router.recover()
        await self.membership.stop()
        await self.signals.stop()


def _report_failure(task: asyncio.Task[None]) -> None:
    """These tasks run for the process's life: one that ends by an exception is a bug
    that stops the SMS core's work, and must be loud rather than silent."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("sms_task_failed", task=task.get_name(), exc_info=task.exception())


async def _until(done: Any, deadline: float) -> None:
    """Poll: the conditions span several parts, and this runs once, at shutdown."""
    loop = asyncio.get_running_loop()
    while not done() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
