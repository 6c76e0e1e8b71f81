"""The daemon's lifecycle: start in dependency order, serve, drain, stop.

SIGTERM/SIGINT begin a graceful shutdown: /ready turns 503, listeners stop
accepting, in-flight work drains within ``daemon.shutdown_timeout``, the pool
closes and an embedded cluster stops. SIGHUP reloads what can change without
a restart. systemd hears READY=1, STOPPING=1 and WATCHDOG=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from warpd import config as config_mod
from warpd import demo
from warpd import log as log_mod
from warpd.api import demo_access
from warpd.api.keys import KEY_STORE
from warpd.api.server import HttpServer, apply_config, make_app, start_webhooks
from warpd.billing.balances import Balances
from warpd.config import Config
from warpd.errors import ConfigError
from warpd.events import start_events
from warpd.metrics import Metrics
from warpd.sim import SmscSimulator
from warpd.sms.metrics import SmsCollector
from warpd.sms.service import SmsCore
from warpd.store import Database, EmbeddedPostgres
from warpd.store.partitions import start_maintenance
from warpd.systemd import Notifier
from warpd.voice.service import VoiceService, start_voice

log = structlog.get_logger(__name__)

ReloadHook = Callable[[Config], Awaitable[None]]


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        migrate: bool = False,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.metrics = Metrics()
        self._config_path = config_path
        self._migrate = migrate or config.database.auto_migrate
        self._notifier = notifier or Notifier()
        self._stop: asyncio.Event | None = None
        self.ready = asyncio.Event()
        self.http: HttpServer | None = None
        self.database: Database | None = None
        self.sms: SmsCore | None = None
        self.voice: VoiceService | None = None
        self.demo_simulator: SmscSimulator | None = None
        # Components that can apply a new config on SIGHUP register here.
        self.reload_hooks: list[ReloadHook] = []

    def request_stop(self) -> None:
        if self._stop is not None and not self._stop.is_set():
            log.info("shutdown_requested")
            self._stop.set()

    async def run(self, *, install_signals: bool = True) -> int:
        """Serve until asked to stop; exit code 0 after a clean drain."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if install_signals:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                async with asyncio.TaskGroup() as tasks:
                    watchdog = tasks.create_task(self._watchdog())
                    await self._stop.wait()
                    watchdog.cancel()
                self._begin_drain()
            log.info("stopped")
            return 0
        finally:
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        dsn = cfg.database.dsn
        if cfg.embedded:
            pg = EmbeddedPostgres(
                cfg.daemon.state_dir / "postgres",
                bin_dir=cfg.embedded_postgres.bin_dir,
                port=cfg.embedded_postgres.port,
                user=cfg.embedded_postgres.user,
            )
            stack.push_async_callback(pg.stop)
            dsn = await pg.start()
        self.database = await Database.connect(dsn, cfg.database)
        stack.push_async_callback(self.database.close, cfg.daemon.shutdown_timeout)
        schema = await self.database.ensure_schema(apply=self._migrate)
        self.metrics.schema_version.set(schema.current)
        self.metrics.watch_database(self.database)
        # Months of partitions ahead and retention (issue 14); events on or off before
        # anything writes a row an event describes.
        await start_maintenance(stack, cfg.retention, self.database.pool)
        await start_events(stack, cfg.events, self.database.pool, self.metrics.registry)
        demo_credentials = await self._start_demo(stack) if cfg.demo.enabled else None
        # One view of what each account can spend, for SMS and voice alike.
        balances = Balances()
        if cfg.sip.enabled:  # after the database (and the demo's rows); stops before it
            self.voice = await start_voice(
                stack, cfg, self.database.pool, self.metrics.registry, balances=balances
            )
            self.reload_hooks.append(self.voice.apply_config)  # trunks, routes, rates, TLS now
        self.sms = SmsCore(cfg, self.database.pool, dsn, balances=balances)
        await self.sms.start()
        stack.push_async_callback(self.sms.stop, cfg.daemon.shutdown_timeout)
        self.metrics.registry.register(SmsCollector(self.sms))
        self.reload_hooks.append(self.sms.apply_config)

        # Admin changes reload the SMS core's catalog and balances at once.
        app = make_app(
            cfg,
            self.database,
            self.metrics,
            acceptance=self.sms.acceptance,
            on_change=self.sms.reload,
            connectors=self.sms.connectors,
        )
        membership = self.sms.membership
        app[KEY_STORE].instances = lambda: len(membership.view.live)
        self.http = HttpServer(app, cfg.http.listen, cfg.daemon.shutdown_timeout)
        await self.http.start()
        stack.push_async_callback(self.http.stop)
        await start_webhooks(stack, cfg, self.database, self.metrics.registry)
        if demo_credentials is not None:
            demo_credentials["http"] = await demo_access.attach(
                app, self.database, demo.credentials_path(cfg), demo.ACCOUNT, self.http.addresses[0]
            )
        self.reload_hooks.append(lambda new: apply_config(app, new))

        self.metrics.start_time.set(time.time())
        self.metrics.ready.set(1)
        # Start-up's objects live as long as the process: frozen out of the collector's
        # scans, and young collections every 10,000 allocations rather than 700 (at
        # 1,000 calls/s the collector took ~6% of the CPU, issue 10).
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        self.ready.set()
        self._notifier.ready(f"serving, schema v{schema.current}")
        log.info("ready", schema_version=schema.current, embedded_postgres=cfg.embedded)
        if demo_credentials is not None:
            credentials = demo.listening_credentials(demo_credentials, self.sms.listener.addresses)
            demo.write_credentials(demo.credentials_path(cfg), credentials)
            print(
                f"warpd demo ready; credentials in {demo.credentials_path(cfg)}:\n"
                + json.dumps(credentials, indent=2),
                flush=True,
            )

    async def _start_demo(self, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        """The demo's carrier (the SMSC simulator, in this process) and its rows."""
        assert self.database is not None
        simulator = self.demo_simulator = demo.simulator(self.config)
        await simulator.start()
        stack.push_async_callback(simulator.stop)
        async with self.database.pool.acquire() as conn:
            return await demo.provision(conn, self.config, simulator.port)

    def _begin_drain(self) -> None:
        self._notifier.stopping()
        self.metrics.ready.set(0)
        self.ready.clear()
        if self.http is not None:
            self.http.drain()
        log.info("draining", deadline_s=self.config.daemon.shutdown_timeout)

    async def _watchdog(self) -> None:
        interval = self._notifier.watchdog_interval
        if interval is None:
            return
        while True:
            self._notifier.watchdog()
            await asyncio.sleep(interval)

    async def reload(self) -> bool:
        """Re-read the config file; apply what can change live, keep the rest."""
        try:
            new = config_mod.load(self._config_path)
        except ConfigError as exc:
            log.error("reload_refused", error=str(exc))
            self.metrics.reloads.labels("error").inc()
            return False
        needs_restart = _restart_only_changes(self.config, new)
        if needs_restart:
            log.warning("reload_needs_restart", keys=needs_restart)
        log_mod.configure(new.log.level, self.config.log.format)
        self.config = dataclasses.replace(self.config, log=new.log)
        for hook in self.reload_hooks:
            await hook(new)
        self.metrics.reloads.labels("ok").inc()
        log.info("reloaded", source=new.source)
        return True


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    """Dotted keys whose change SIGHUP cannot apply (metadata ``reload`` unset)."""
    changed: list[str] = []
    for table in dataclasses.fields(old):
        if table.metadata.get("internal"):
            continue
        before, after = getattr(old, table.name), getattr(new, table.name)
        for fld in dataclasses.fields(before):
            if fld.metadata.get("reload"):
                continue
            if getattr(before, fld.name) != getattr(after, fld.name):
                changed.append(f"{table.name}.{fld.name}")
    return changed
