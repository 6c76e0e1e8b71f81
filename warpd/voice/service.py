"""The voice service inside the daemon: start after the database, stop on drain.

Start: a local rtpengine (when ``rtpengine.embedded``) and the ng pool, the CDR
writer, the directory snapshot, crashed calls closed, then the SIP listeners
(UDP, TCP, TLS: each can be off).
Background tasks reload the directory, ping rtpengines and refresh the
active-call heartbeat. Stop: refuse new calls, let calls in progress end within
the drain deadline, flush CDRs, close the socket and the media.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from pathlib import Path

import asyncpg
import structlog
from prometheus_client import CollectorRegistry

from media.pool import InstanceState, PoolSettings, RtpEngineAddress, RtpEnginePool
from protocols.sip.digest import DigestAlgorithm
from protocols.sip.endpoint import Endpoint, EndpointConfig
from protocols.sip.transaction import Transport
from warpd import tls
from warpd.billing.balances import Balances, load_balances
from warpd.config.loader import parse_listen
from warpd.config.schema import Config, RtpEngineConfig, SipConfig
from warpd.errors import ConfigError
from warpd.voice import overload
from warpd.voice.auth import TrunkAuth
from warpd.voice.b2bua import B2bua, VoiceSettings
from warpd.voice.cdr import CdrWriter
from warpd.voice.guard import DigestGuard
from warpd.voice.limits import SourceBudgets
from warpd.voice.metrics import VoiceMetrics
from warpd.voice.queries import load_directory
from warpd.voice.recovery import HEARTBEAT, heartbeat, recover
from warpd.voice.registrar import Registrar
from warpd.voice.rtpengine_process import RtpEngineProcess
from warpd.voice.transport import SipTransport, open_udp_socket
from warpd.voice.transport_stream import SipStreams, StreamLimits

log = structlog.get_logger(__name__)

# How often every rtpengine is pinged: a dead one ends its calls within this
# plus the ng timeouts (3 x 0.5 s by default).
MEDIA_PING = 2.0
MAX_TRANSACTIONS = 400_000


class VoiceService:
    def __init__(
        self,
        sip: SipConfig,
        rtpengine: RtpEngineConfig,
        pool: asyncpg.Pool,
        *,
        state_dir: Path,
        instance: str = "",
        registry: CollectorRegistry | None = None,
        balances: Balances | None = None,
    ) -> None:
        self.sip = sip
        self.rtpengine_config = rtpengine
        self.pool = pool
        self.state_dir = state_dir
        self.instance = instance or socket.gethostname()
        self.registry = registry
        self.balances = balances
        self.metrics = VoiceMetrics(registry)
        self.process: RtpEngineProcess | None = None
        self.media: RtpEnginePool | None = None
        self.cdrs: CdrWriter | None = None
        self.b2bua: B2bua | None = None
        self.transport: SipTransport | None = None
        self.streams: SipStreams | None = None
        self.local_addr: tuple[str, int] = ("", 0)
        self._tls: ssl.SSLContext | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> tuple[str, int]:
        await self._start_media()
        assert self.media is not None
        self.cdrs = CdrWriter(self.pool, balances=self.balances)
        self.cdrs.start()
        async with self.pool.acquire() as conn:
            directory = await load_directory(conn)
        await recover(self.pool, self.instance, directory, self.media)
        if self.balances is not None:
            # Before the first call can end, and with what the recovery charged (the
            # SMS core reloads it from then on).
            async with self.pool.acquire() as conn:
                self.balances.load(await load_balances(conn))
        sock = None
        if self.sip.listen:
            host, port = parse_listen(self.sip.listen)
            sock = open_udp_socket(host, port, self.sip.socket_buffer_bytes)
        streams = await self._listen_streams()
        # Port 0 (tests) advertises the port the kernel chose.
        bound = [sock.getsockname()[:2]] if sock is not None else []
        bound += streams.addresses.values()
        advertised = self.sip.advertised or _host_port(*bound[0])
        # Requests over TCP/TLS name the listener of their transport in their Via.
        host = _host_of(advertised)
        sent_by = tuple((t, f"{host}:{a[1]}") for t, a in streams.addresses.items())
        # A call keeps ~4 transactions for 32 s after it is set up (Timers L, M, J, K):
        # 1,000 calls/s needs ~130,000; the endpoint's default cap is 50,000.
        endpoint = Endpoint(
            EndpointConfig(advertised, max_transactions=MAX_TRANSACTIONS, stream_sent_by=sent_by),
            _random_id,
        )
        settings = VoiceSettings(
            advertised=advertised,
            stream_advertised=sent_by,
            instance=self.instance,
            gateway_timeout=self.sip.gateway_timeout,
            ring_timeout=self.sip.ring_timeout,
            max_duration=self.sip.max_duration,
            channel_status=self.sip.channel_limit_status,
            register_min_expires=self.sip.register_min_expires,
            register_max_expires=self.sip.register_max_expires,
            min_session_expires=self.sip.min_session_expires,
            carrier_session_expires=self.sip.carrier_session_expires,
            info_dtmf=self.sip.info_dtmf,
            overload_lag=self.sip.overload_lag_ms / 1000,
        )
        registrar = Registrar(self.pool, self.instance)
        await registrar.load()
        self.b2bua = B2bua(
            settings=settings,
            endpoint=endpoint,
            media=self.media,
            cdrs=self.cdrs,
            directory=directory,
            metrics=self.metrics,
            auth=self._trunk_auth(),
            registrar=registrar,
            balances=self.balances,
        )
        budgets = SourceBudgets(self.sip.source_rate, self.sip.response_rate)
        self.transport = SipTransport(
            endpoint,
            self.b2bua.dialogs,
            self.b2bua.on_event,
            self.b2bua.on_ack_timeout,
            admit=budgets.allow,
        )
        self.b2bua.flush = self.transport.flush
        self.local_addr = bound[0]
        if sock is not None:
            await self.transport.start(sock)
        await streams.serve(self.transport)
        self._tasks = [
            asyncio.create_task(self._reload_loop(), name="voice-reload"),
            asyncio.create_task(self._media_watch(), name="voice-rtpengine-watch"),
            asyncio.create_task(self._heartbeat_loop(), name="voice-heartbeat"),
        ]
        if self.sip.overload_lag_ms > 0:
            watching = overload.watch(self.b2bua.load, self.metrics.loop_lag)
            self._tasks.append(asyncio.create_task(watching, name="voice-loop-lag"))
        if self.sip.options_interval > 0:
            self._tasks.append(asyncio.create_task(self._probe_loop(), name="voice-options"))
        log.info("voice_started", listen=[_host_port(*a) for a in bound], instance=self.instance)
        return self.local_addr

    async def _listen_streams(self) -> SipStreams:
        sip = self.sip
        limits = StreamLimits(sip.max_connections_per_ip, sip.idle_timeout, sip.header_timeout)
        self.streams = streams = SipStreams(limits, client_tls=self._client_tls)
        if sip.tcp_listen:
            await streams.listen(Transport.TCP, *parse_listen(sip.tcp_listen))
        if sip.tls_listen and sip.tls_cert:
            self._tls = tls.server_context(sip.tls_cert, sip.tls_key)
            await streams.listen(Transport.TLS, *parse_listen(sip.tls_listen), self._tls)
        return streams

    def _client_tls(self) -> ssl.SSLContext:
        return tls.client_context(self.sip.tls_ca or None)

    def stream_addr(self, transport: Transport) -> tuple[str, int]:
        """Where the TCP or TLS listener is bound (tests: port 0 picks one)."""
        assert self.streams is not None
        return self.streams.addresses[transport]

    def _trunk_auth(self) -> TrunkAuth:
        try:
            algorithms = tuple(DigestAlgorithm(name) for name in self.sip.digest_algorithms)
        except ValueError as exc:
            raise ConfigError("config", "sip.digest_algorithms", str(exc)) from None
        key = self.sip.nonce_key.encode() or None
        sip = self.sip
        guard = None
        if sip.digest_max_failures > 0:
            guard = DigestGuard(
                sip.digest_max_failures, sip.digest_failure_window, sip.digest_lockout
            )
        return TrunkAuth(sip.realm, algorithms, key, guard=guard, metrics=self.metrics)

    async def _start_media(self) -> None:
        cfg = self.rtpengine_config
        addresses: list[RtpEngineAddress] = []
        if cfg.embedded:
            self.process = RtpEngineProcess(
                self.state_dir / "rtpengine",
                binary=cfg.binary,
                ng_port=cfg.ng_port,
                media_address=cfg.media_address,
                port_min=cfg.port_min,
                port_max=cfg.port_max,
                recording_dir=Path(cfg.recording_dir or self.state_dir / "recordings"),
                recording_method=cfg.recording_method,
            )
            host, port = await self.process.start()
            addresses.append(RtpEngineAddress("local", host, port))
        for text in cfg.instances:
            host, port = parse_listen(text)
            addresses.append(RtpEngineAddress(text, host, port))
        settings = PoolSettings(
            instance_prefix=f"warpd-{self.instance}".replace(" ", "_"),
            timeout=cfg.timeout,
            attempts=cfg.attempts,
            # One slow reply under load must not refuse every call for a minute
            # (the pool's default) when there is a single rtpengine: re-check
            # it on the next media ping instead.
            disable_seconds=MEDIA_PING,
            ping_interval=MEDIA_PING,
        )
        self.media = RtpEnginePool(addresses, settings, registry=self.registry)
        await self.media.open()

    async def apply_config(self, config: Config) -> None:
        """SIGHUP: the directory now, and the TLS listener's certificate."""
        if self._tls is not None and config.sip.tls_cert:
            tls.reload_pair(self._tls, config.sip.tls_cert, config.sip.tls_key, name="sip")
        await self.reload()

    async def reload(self) -> None:
        if self.b2bua is None:
            return
        guard = None if self.b2bua.auth is None else self.b2bua.auth.guard
        if guard is not None:  # addresses gone quiet: a scan must not grow memory for ever
            guard.forget_idle(asyncio.get_running_loop().time())
        async with self.pool.acquire() as conn:
            self.b2bua.set_directory(await load_directory(conn))

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sip.reload_interval)
            try:
                await self.reload()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("voice_reload_failed", error=str(exc))

    async def _media_watch(self) -> None:
        """Ping every rtpengine each MEDIA_PING seconds; calls on a dead one are ended."""
        assert self.media is not None
        while True:
            await self.media.ping_all()
            down = {
                name for name, state in self.media.states().items() if state is InstanceState.DOWN
            }
            if down and self.b2bua is not None:
                self.b2bua.media_lost(down)
            await asyncio.sleep(MEDIA_PING)

    async def _probe_loop(self) -> None:
        while True:
            if self.b2bua is not None:
                self.b2bua.probe_gateways()
            await asyncio.sleep(self.sip.options_interval)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await heartbeat(self.pool, self.instance)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("voice_heartbeat_failed", error=str(exc))

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until no call is in progress and every CDR is written (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            if self.b2bua is not None:
                await self.b2bua.idle()
            if self.cdrs is not None:
                await self.cdrs.flushed()

    def drain(self) -> None:
        if self.b2bua is not None:
            self.b2bua.draining = True

    async def stop(self, timeout: float = 10.0) -> None:
        if self.b2bua is not None:
            await self.b2bua.drain(timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.streams is not None:
            self.streams.close()
        if self.transport is not None:
            self.transport.close()
        if self.cdrs is not None:
            await self.cdrs.close(timeout)
        if self.media is not None:
            self.media.close()
        if self.process is not None:
            await self.process.stop()
        log.info("voice_stopped")


def _random_id() -> str:
    return os.urandom(8).hex()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host_of(host_port: str) -> str:
    """The host of ``host[:port]`` or ``[v6][:port]``."""
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.endswith("]")):
        return host_port
    return host


async def start_voice(
    stack: contextlib.AsyncExitStack,
    config: Config,
    pool: asyncpg.Pool,
    registry: CollectorRegistry | None = None,
    *,
    balances: Balances | None = None,
) -> VoiceService:
    """Start the voice service inside the daemon; it stops (draining calls) with ``stack``."""
    service = VoiceService(
        config.sip,
        config.rtpengine,
        pool,
        state_dir=config.daemon.state_dir,
        instance=config.cluster.instance_id,
        registry=registry,
        balances=balances,
    )
    stack.push_async_callback(service.stop, config.daemon.shutdown_timeout)
    await service.start()
    return service
