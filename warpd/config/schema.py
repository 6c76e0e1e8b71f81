"""The configuration schema: one frozen dataclass per TOML table.

Each field's metadata carries what the loader validates (``min``, ``max``,
``choices``), whether it is a secret (masked by ``check-config``) and whether
SIGHUP can change it (``reload``). ``config/warpd.example.toml`` documents every
key; ``tests/warpd/test_config.py`` checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/warpd/warpd.toml")


def opt(default: Any, **meta: Any) -> Any:
    """A field with a default and validation metadata."""
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    # Where the embedded PostgreSQL cluster and other state live (systemd's
    # StateDirectory=warpd gives /var/lib/warpd).
    state_dir: Path = opt(Path("/var/lib/warpd"))
    # How long a graceful shutdown may drain in-flight work before it cuts.
    shutdown_timeout: float = opt(10.0, min=0.1, max=600.0)


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = opt("info", choices=("debug", "info", "warning", "error"), reload=True)
    # auto: readable lines on a TTY, JSON lines otherwise (journald, files).
    format: str = opt("auto", choices=("auto", "json", "console"))


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    # Empty: warpd runs its own PostgreSQL cluster under daemon.state_dir.
    dsn: str = opt("", secret=True)
    pool_min: int = opt(2, min=1, max=1000)
    pool_max: int = opt(10, min=1, max=1000)
    connect_timeout: float = opt(10.0, min=0.1, max=300.0)
    command_timeout: float = opt(30.0, min=0.1, max=3600.0)
    # Apply pending migrations at start-up instead of refusing to start.
    auto_migrate: bool = opt(False)


@dataclass(frozen=True, slots=True)
class EmbeddedPostgresConfig:
    # Directory with initdb/pg_ctl; empty picks the newest /usr/lib/postgresql/*/bin.
    bin_dir: str = opt("")
    # Names the Unix socket (.s.PGSQL.<port>); the cluster listens on no TCP port.
    port: int = opt(5433, min=1, max=65535)
    # The OS user that owns the cluster when warpd runs as root (initdb refuses root).
    user: str = opt("postgres")


@dataclass(frozen=True, slots=True)
class HttpConfig:
    # host:port, [v6]:port; loopback by default: the admin API is behind it.
    listen: str = opt("127.0.0.1:8080")
    # Requests larger than this are refused with 413 before they are read.
    max_body_bytes: int = opt(1_048_576, min=1024, max=64 * 1_048_576)
    # Seconds from connect to the end of the first request's headers (slowloris guard).
    header_timeout: float = opt(10.0, min=0.5, max=600.0)
    # Seconds a request's body may take to arrive once its head is in (slow bodies
    # get 408 and the connection closed).
    body_timeout: float = opt(30.0, min=0.5, max=600.0)


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    # Names this instance in claims and leases; stable across restarts, so a
    # restarted instance takes its own unfinished work back at once. Empty:
    # the host name.
    instance_id: str = opt("")
    # How long a claim on a queued message lasts without renewal; another
    # instance takes the work over once it lapses.
    lease_seconds: float = opt(60.0, min=5.0, max=3600.0)
    # How often this instance says it is alive, renews its carrier-bind and
    # customer-bind leases and reads where the others stand; a third of the
    # lease or less, so one missed beat never loses a lease.
    heartbeat_seconds: float = opt(2.0, min=0.2, max=600.0)


@dataclass(frozen=True, slots=True)
class SmppConfig:
    # Customer SMPP listener, host:port or [v6]:port; empty turns it off.
    listen: str = opt("0.0.0.0:2775")
    # TLS listener; it needs tls_cert and tls_key. Empty turns it off.
    tls_listen: str = opt("")
    # PEM files, re-read on SIGHUP (reload).
    tls_cert: str = opt("", reload=True)
    tls_key: str = opt("", reload=True)
    # Seconds from connect to a completed bind (session_init_timer).
    session_init_timeout: float = opt(30.0, min=1.0, max=600.0)
    # Seconds without a received PDU before warpd sends enquire_link.
    enquire_link_interval: float = opt(30.0, min=1.0, max=3600.0)
    # Seconds without traffic (enquire_link aside) before warpd unbinds; 0: never.
    inactivity_timeout: float = opt(0.0, min=0.0, max=86400.0)
    # Seconds a deliver_sm waits for its deliver_sm_resp.
    response_timeout: float = opt(30.0, min=1.0, max=600.0)
    # Submits a bind may have awaiting their commit; past it warpd stops
    # reading that socket (TCP back-pressure).
    window: int = opt(100, min=1, max=10_000)


@dataclass(frozen=True, slots=True)
class SmsConfig:
    # Most messages in one group commit; a commit starts as soon as the one
    # before it ends, so batches grow with load and latency stays one commit.
    batch_max: int = opt(2000, min=1, max=100_000)
    # Accepted messages waiting for a commit before new ones get ESME_RMSGQFUL / 503.
    queue_max: int = opt(20_000, min=1, max=10_000_000)
    # Messages a connector holds in memory; the rest wait in PostgreSQL.
    connector_queue_max: int = opt(50_000, min=100, max=10_000_000)
    # Seconds the oldest message waiting for a connector may have waited before
    # new ones for it get ESME_RMSGQFUL / 503 instead of joining the queue; 0
    # queues without limit (store and forward through any outage).
    max_queue_age: float = opt(0.0, min=0.0, max=2_592_000.0)
    # Default validity when the sender gives none, in seconds.
    default_validity: float = opt(172_800.0, min=60.0, max=2_592_000.0)
    # How long a receipt or MO waits for the customer to bind and take it, in seconds.
    delivery_ttl: float = opt(259_200.0, min=60.0, max=2_592_000.0)
    # Seconds between reloads of routes, rates and accounts from the database.
    reload_interval: float = opt(5.0, min=0.5, max=3600.0)


@dataclass(frozen=True, slots=True)
class DemoConfig:
    # Provision the demo account, user, connector and route, and run the SMSC
    # simulator in-process as that connector's carrier (the README's run command).
    enabled: bool = opt(False)
    # Where the in-process simulator listens; 0 picks a free port.
    simulator_port: int = opt(2776, min=0, max=65535)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    # Seconds a verified API key stays cached; a revocation made on another
    # instance takes effect within this (on this instance, at once). (reload)
    key_cache_seconds: float = opt(5.0, min=0.0, max=300.0, reload=True)
    # Per-key token bucket for keys without their own rate: requests per
    # second and burst; beyond it 429 with Retry-After. (reload)
    default_rate_per_s: float = opt(100.0, min=0.1, max=1_000_000.0, reload=True)
    default_burst: int = opt(200, min=1, max=1_000_000, reload=True)
    # Most messages in one POST /v1/sms/batch.
    batch_max: int = opt(1000, min=1, max=10_000)
    # Seconds an Idempotency-Key's first answer is replayed.
    idempotency_ttl: float = opt(86_400.0, min=60.0, max=2_592_000.0)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    # SHA-256 (hex) of the admin API token; empty turns the admin API off.
    # The example config shows how to make a token and its hash.
    token_hash: str = opt("", secret=True, reload=True)
    # Addresses (CIDR) the admin API answers; others get 403. (reload)
    allowed_ips: tuple[str, ...] = opt(("127.0.0.0/8", "::1/128"), reload=True)


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    # Seconds a receipt or MO is retried before it expires (24 h).
    max_retry: float = opt(86_400.0, min=60.0, max=2_592_000.0)
    # Exponential back-off: the first retry waits backoff_initial seconds, each
    # next one twice as long, never more than backoff_max.
    backoff_initial: float = opt(5.0, min=0.1, max=3600.0)
    backoff_max: float = opt(3600.0, min=1.0, max=86_400.0)
    # Seconds for one POST (connect and answer) when the webhook sets none.
    timeout: float = opt(5.0, min=0.1, max=60.0)
    # POSTs in flight to one URL's host, and in all.
    per_endpoint: int = opt(4, min=1, max=1000)
    max_in_flight: int = opt(200, min=1, max=100_000)
    # Deliver to URLs resolving to loopback, private or link-local addresses
    # (tests and the demo); off, such URLs are refused when set and when sent.
    allow_private: bool = opt(False)


@dataclass(frozen=True, slots=True)
class SipConfig:
    # Run the voice B2BUA (SIP trunks, calls through RTPEngine, voice CDRs).
    enabled: bool = opt(False)
    # UDP listener, host:port or [v6]:port; empty turns it off.
    listen: str = opt("127.0.0.1:5060")
    # TCP listener (RFC 3261 18.3); empty turns it off.
    tcp_listen: str = opt("127.0.0.1:5060")
    # TLS listener, on when tls_cert and tls_key are set; empty turns it off.
    tls_listen: str = opt("127.0.0.1:5061")
    # PEM files of the TLS listener, re-read on SIGHUP (reload).
    tls_cert: str = opt("", reload=True)
    tls_key: str = opt("", reload=True)
    # CA file (PEM) that gateways' certificates are checked against (transport
    # tls); empty: the system's CAs.
    tls_ca: str = opt("")
    # Open TCP/TLS connections one source address may hold; more are refused.
    max_connections_per_ip: int = opt(64, min=1, max=100_000)
    # Seconds a connection may stay without a message before it is closed.
    idle_timeout: float = opt(300.0, min=1.0, max=86_400.0)
    # Seconds a peer has to complete a message's headers once it started one
    # (and to send its first after connecting): slowloris connections go.
    header_timeout: float = opt(10.0, min=0.5, max=600.0)
    # host:port written in Via, Contact and From; empty: the listen address.
    advertised: str = opt("")
    # SO_RCVBUF/SO_SNDBUF of the SIP socket: bursts of 800+ calls/s overflow
    # the kernel's default (~208 KB) and datagrams are dropped.
    socket_buffer_bytes: int = opt(8_388_608, min=65_536, max=268_435_456)
    # Seconds without any answer from a gateway before the next one is tried.
    gateway_timeout: float = opt(4.0, min=0.1, max=64.0)
    # Seconds a call may ring unanswered before the PBX gets 480.
    ring_timeout: float = opt(120.0, min=1.0, max=600.0)
    # Longest call, in seconds; then warpd hangs up both legs.
    max_duration: float = opt(14_400.0, min=1.0, max=86_400.0)
    # Overload control: while the event loop runs this late (smoothed, ms), new
    # INVITEs get 503 with Retry-After and calls in progress go on; 0: off.
    overload_lag_ms: float = opt(250.0, min=0.0, max=10_000.0)
    # What a trunk at its channel limit answers: 503 or 486 (Busy Here).
    channel_limit_status: int = opt(503, choices=(503, 486))
    # SIP requests per second (and twice that as burst) one source address
    # may send, over any transport, before the rest are dropped; 0: no limit.
    source_rate: float = opt(5000.0, min=0.0, max=1_000_000.0)
    # The same for responses, a budget of their own: a request flood from (or
    # spoofed as) a gateway's address does not starve the gateway's answers.
    response_rate: float = opt(20000.0, min=0.0, max=1_000_000.0)
    # Seconds between reloads of trunks, gateways, routes, rates and DIDs.
    reload_interval: float = opt(10.0, min=0.5, max=3600.0)
    # Digest authentication of trunks without an IP match: the realm, the
    # algorithms offered (strongest first, RFC 8760) and the nonce key; an empty
    # key is random per process (set one shared by all instances).
    realm: str = opt("warpd")
    digest_algorithms: tuple[str, ...] = opt(("SHA-256", "MD5"))
    nonce_key: str = opt("", secret=True)
    # Digest guessing: this many wrong answers within the window, from one address
    # or for one username, lock it out (403, no challenge) for the lockout seconds,
    # doubling on each repeat up to an hour; addresses that answered right for a
    # username keep using it while it is locked. 0 turns the lockout off.
    digest_max_failures: int = opt(10, min=0, max=10_000)
    digest_failure_window: float = opt(300.0, min=1.0, max=86_400.0)
    digest_lockout: float = opt(60.0, min=1.0, max=3600.0)
    # Seconds between OPTIONS probes of each gateway (down after no answer); 0: off.
    options_interval: float = opt(30.0, min=0.0, max=3600.0)
    # Bounds of the Expires warpd grants a REGISTER (RFC 3261 10.3: 423 below).
    register_min_expires: int = opt(60, min=1, max=86_400)
    register_max_expires: int = opt(3600, min=60, max=604_800)
    # RFC 4028 session timers: the smallest Session-Expires accepted (422 with
    # Min-SE below it). A PBX that asks for one must refresh within it, or
    # warpd ends the call (a dead PBX does not hold a channel for hours).
    min_session_expires: int = opt(90, min=1, max=86_400)
    # The Session-Expires warpd asks of carriers (RFC 4028; 90 or more in
    # production): the carrier's 2xx picks who refreshes. When warpd does, it
    # sends UPDATE (or re-INVITE) at half the interval; a 408/481 answer, or no
    # refresh from a carrier that refreshes, clears the call. 0: not asked.
    carrier_session_expires: int = opt(1800, min=0, max=86_400)
    # SIP INFO DTMF (application/dtmf-relay, application/dtmf) played into the
    # other side's RTP as RFC 4733 events by RTPEngine (its "inject DTMF" flag
    # on every call routes the media through its codec handler).
    info_dtmf: bool = opt(True)


@dataclass(frozen=True, slots=True)
class RtpEngineConfig:
    # Start and own a local userspace rtpengine (Debian rtpengine-daemon) on
    # loopback; off, use the instances listed in `instances`.
    embedded: bool = opt(True)
    # ng control addresses (host:port) of external rtpengines.
    instances: tuple[str, ...] = opt(())
    # The embedded rtpengine: binary (empty: from PATH), ng port, media
    # address and port range.
    binary: str = opt("")
    ng_port: int = opt(2223, min=1, max=65535)
    media_address: str = opt("127.0.0.1")
    port_min: int = opt(30000, min=1024, max=65535)
    port_max: int = opt(39999, min=1024, max=65535)
    # Where the embedded rtpengine writes the calls of trunks with record_calls
    # (empty: <state_dir>/recordings; pcaps/ and metadata/ under it), and how:
    # pcap (userspace, one pcap file per call) or proc (needs the kernel module).
    recording_dir: str = opt("")
    recording_method: str = opt("pcap", choices=("pcap", "proc"))
    # Seconds before an ng request is resent (same cookie), and sends per request.
    timeout: float = opt(0.5, min=0.05, max=10.0)
    attempts: int = opt(3, min=1, max=10)


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    # Months of partitions made ahead of time (messages, parts, deliveries,
    # webhook attempts, MO, voice CDRs), so no row waits for one.
    months_ahead: int = opt(2, min=1, max=24)
    # Retire a month once its last day is older than this many days; 0 keeps
    # everything. At least 31 when set, beyond any validity or delivery TTL.
    keep_days: int = opt(0, min=0, max=36_500)
    # "drop" the retired months, or "archive": move them to the warpd_archive
    # schema for the operator to dump and drop.
    mode: str = opt("drop", choices=("drop", "archive"))
    # Seconds between maintenance runs.
    interval: float = opt(3600.0, min=1.0, max=86_400.0)


@dataclass(frozen=True, slots=True)
class EventsConfig:
    # AMQP URL of the RabbitMQ that gets warpd's events (amqp://user:pass@host/vhost);
    # empty: no events, and the outbox stays empty.
    amqp_url: str = opt("", secret=True)
    # The topic exchange events are published to (declared durable).
    exchange: str = opt("warpd.events")
    # Outbox rows published per batch, and seconds between polls when idle.
    batch: int = opt(500, min=1, max=10_000)
    poll_interval: float = opt(0.2, min=0.01, max=60.0)
    # Seconds a batch waits for RabbitMQ's confirms before the connection is
    # given up as lost (a dead peer does not always close the socket).
    confirm_timeout: float = opt(10.0, min=0.1, max=600.0)
    # Reconnect back-off after RabbitMQ is lost: first and longest wait, s.
    backoff_initial: float = opt(0.5, min=0.01, max=60.0)
    backoff_max: float = opt(30.0, min=0.1, max=3600.0)


@dataclass(frozen=True, slots=True)
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    log: LogConfig = field(default_factory=LogConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    embedded_postgres: EmbeddedPostgresConfig = field(default_factory=EmbeddedPostgresConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    smpp: SmppConfig = field(default_factory=SmppConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    rtpengine: RtpEngineConfig = field(default_factory=RtpEngineConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    # Where the values came from, for messages; not a TOML key.
    source: str = field(default="<defaults>", metadata={"internal": True})

    @property
    def embedded(self) -> bool:
        """True when warpd must run its own PostgreSQL cluster."""
        return not self.database.dsn
