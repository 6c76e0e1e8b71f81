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


@dataclass(frozen=True, slots=True)
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    log: LogConfig = field(default_factory=LogConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    embedded_postgres: EmbeddedPostgresConfig = field(default_factory=EmbeddedPostgresConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    # Where the values came from, for messages; not a TOML key.
    source: str = field(default="<defaults>", metadata={"internal": True})

    @property
    def embedded(self) -> bool:
        """True when warpd must run its own PostgreSQL cluster."""
        return not self.database.dsn
