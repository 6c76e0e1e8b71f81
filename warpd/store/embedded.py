"""An embedded PostgreSQL cluster for the zero-configuration default.

With no DSN configured, ``warpd run`` keeps its own cluster under
``<state_dir>/postgres`` built with the machine's PostgreSQL binaries, listening
on a Unix socket only (so it never fights the system cluster for a TCP port),
and stops it on exit. initdb refuses to run as root, so when warpd is root the
cluster belongs to ``embedded_postgres.user`` (``postgres``). The test suite
uses the same class for its throwaway cluster.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from warpd.errors import StorageError

log = structlog.get_logger(__name__)

SUPERUSER = "warpd"
DATABASE = "warpd"


def find_bin_dir(configured: str = "") -> Path:
    """The configured directory, else the newest Debian ``/usr/lib/postgresql/N/bin``."""
    if configured:
        path = Path(configured)
    else:
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
        if not found:
            raise StorageError(
                "no PostgreSQL binaries in /usr/lib/postgresql/*/bin: install the "
                "'postgresql' package or set database.dsn"
            )
        path = found[-1]
    if not (path / "initdb").exists():
        raise StorageError(f"{path} has no initdb: set embedded_postgres.bin_dir")
    return path


@dataclass(frozen=True, slots=True)
class ClusterUser:
    """Who runs initdb/pg_ctl: ourselves, or ``user`` when we are root."""

    name: str
    uid: int | None
    gid: int | None

    @classmethod
    def resolve(cls, wanted: str) -> ClusterUser:
        if os.geteuid() != 0:
            return cls(pwd.getpwuid(os.geteuid()).pw_name, None, None)
        try:
            entry = pwd.getpwnam(wanted)
        except KeyError:
            raise StorageError(
                f"running as root needs the OS user {wanted!r} (embedded_postgres.user) "
                "to own the embedded cluster: initdb refuses root"
            ) from None
        if entry.pw_uid == 0:
            raise StorageError("embedded_postgres.user must not be root: initdb refuses root")
        return cls(wanted, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    """Owns one cluster directory; ``start`` returns a DSN, ``stop`` shuts it down."""

    def __init__(
        self,
        root: Path,
        *,
        bin_dir: str = "",
        port: int = 5433,
        user: str = "postgres",
        durable: bool = True,
    ) -> None:
        self.root = root.resolve()
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.port = port
        self._bin = find_bin_dir(bin_dir)
        self._user = ClusterUser.resolve(user)
        # Tests trade crash safety for speed; the daemon never does.
        self._durable = durable
        self._started_here = False

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={self.socket_dir}&port={self.port}"

    async def start(self, *, adopt: bool = True) -> str:
        """Start the cluster, or use the one already running there.

        ``adopt``: a running cluster becomes ours to stop (the daemon after a
        kill -9 left it behind). A command run beside a live daemon passes
        False, and leaves the daemon's cluster running when it is done.
        """
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            await self._initdb()
        if await self._pg_ctl("status", check=False) == 0:
            # A warpd killed with -9 leaves its cluster running: adopt it.
            log.info("embedded_postgres_adopted", data_dir=str(self.data_dir), own=adopt)
            self._started_here = adopt
        else:
            # Port and socket on the command line: they win over the values
            # initdb wrote, so a changed embedded_postgres.port takes effect.
            options = f"-p {self.port} -k '{self.socket_dir}'"
            await self._pg_ctl(
                "start", "-w", "-t", "60", "-o", options, "-l", str(self.root / "postgresql.log")
            )
            log.info("embedded_postgres_started", data_dir=str(self.data_dir))
            self._started_here = True
        await self._ensure_database()
        return self.dsn

    async def stop(self) -> None:
        if not self._started_here:
            return
        self._started_here = False
        await self._pg_ctl("stop", "-w", "-t", "30", "-m", "fast", check=False)
        log.info("embedded_postgres_stopped")

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._user.uid is not None:
            # The cluster user must reach its directory through ours.
            for parent in (self.root, *self.root.parents):
                if parent == Path("/"):
                    break
                mode = stat.S_IMODE(parent.stat().st_mode)
                if not mode & 0o001:
                    # Search (x) only: the cluster user can pass, not list.
                    log.warning("embedded_postgres_chmod_o+x", path=str(parent))
                    os.chmod(parent, mode | 0o001)
            for path in (self.root, self.socket_dir):
                os.chown(path, self._user.uid, self._user.gid or -1)
            self.root.chmod(0o700)

    async def _initdb(self) -> None:
        log.info("embedded_postgres_initdb", data_dir=str(self.data_dir), user=self._user.name)
        await self._run(
            str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions",
        )  # fmt: skip
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(self.port),
            "max_connections": "200",
            "fsync": "on" if self._durable else "off",
            "synchronous_commit": "on" if self._durable else "off",
            "full_page_writes": "on" if self._durable else "off",
        }
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        await self._run("sh", "-c", f"cat >> '{self.data_dir}/postgresql.conf'", stdin=conf)

    async def _ensure_database(self) -> None:
        conn = await asyncpg.connect(
            user=SUPERUSER, database="postgres", host=str(self.socket_dir), port=self.port
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()

    async def create_database(self, name: str) -> str:
        """A fresh database in this cluster (tests); returns its DSN."""
        conn = await asyncpg.connect(
            user=SUPERUSER, database="postgres", host=str(self.socket_dir), port=self.port
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql://{SUPERUSER}@/{name}?host={self.socket_dir}&port={self.port}"

    async def _pg_ctl(self, *args: str, check: bool = True) -> int:
        return await self._run(
            str(self._bin / "pg_ctl"), "-D", str(self.data_dir), *args, check=check
        )

    async def _run(self, *argv: str, check: bool = True, stdin: str | None = None) -> int:
        # A thread, not the loop's subprocess API: uvloop cannot switch user.
        result = await asyncio.to_thread(
            subprocess.run,
            argv,
            input=stdin.encode() if stdin is not None else None,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            user=self._user.uid,
            group=self._user.gid,
            extra_groups=[] if self._user.uid is not None else None,
            # A terminal's Ctrl-C goes to the whole foreground process group;
            # the cluster must hear of shutdown from us, in order, not from it.
            start_new_session=True,
            cwd=str(self.root),
            check=False,
        )
        if check and result.returncode != 0:
            raise StorageError(
                f"{Path(argv[0]).name} failed with exit code {result.returncode}: "
                f"{result.stdout.decode(errors='replace').strip()[-2000:]}"
            )
        return result.returncode
