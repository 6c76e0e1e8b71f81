"""warpd's voice service between real SIPp peers, a real rtpengine and PostgreSQL.

Every test gets a fresh database with a demo-like provisioning (an account with
a balance and a rate, an IP trunk for 127.0.0.1, gateways pointing at SIPp
UAS processes), its own UDP ports for warpd, each SIPp and SIPp's control
port (``-cp``: SIPp binds 8888 on every address otherwise). The rtpengine
daemon is shared by the module's tests on ports no other suite uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.media.conftest import RtpEngineDaemon, media
from warpd.billing.balances import Balances
from warpd.config.schema import RtpEngineConfig, SipConfig
from warpd.store.migrate import load_migrations, migrate
from warpd.voice.service import VoiceService

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).parent / "scenarios"
# 10 EUR; the rate is 0.06 EUR a minute billed 1/1 plus a 0.01 EUR connect fee.
BALANCE = 10_000_000
PER_MIN, CONNECT_FEE = 60_000, 10_000


def free_udp_port() -> int:
    return free_udp_ports(1)[0]


def free_udp_ports(count: int) -> list[int]:
    """Distinct ports free for UDP and for TCP (a SIPp told ``-t t1`` binds its ``-p`` port
    over TCP): all held open until all are chosen."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
            stream = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                stream.bind((HOST, port))
            except OSError:
                continue  # taken over TCP: keep the UDP socket so the next pick differs
            ports.append(port)
        return ports


def holds(port: int) -> bool:
    """Whether a socket on this machine holds ``port``: a UDP one, or a TCP one listening."""
    suffix = f":{port:04X}"
    for table, wanted in (("udp", None), ("tcp", "0A")):  # 0A: TCP_LISTEN
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()  # sl, local_address, rem_address, st, ...
            if fields[1].endswith(suffix) and wanted in (None, fields[3]):
                return True
    return False


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def voice_rtpengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtpEngineDaemon]:
    # Control ports picked free: two suites on one machine must not share a daemon
    # (offers to one and answers to the other fail with "Unknown call-id").
    daemon = RtpEngineDaemon(
        tmp_path_factory.mktemp("rtpengine-voice"),
        free_udp_port(),
        free_tcp_port(),
        media(1300),
        media(1899),  # 1900-1999: the recording tests' own rtpengine
    )
    daemon.start()
    yield daemon
    daemon.stop()


def sipp_binary() -> str:
    binary = shutil.which("sipp")
    if binary is None:
        pytest.fail("sipp not found: install the Debian package sip-tester", pytrace=False)
    return binary


@dataclass
class Sipp:
    """One SIPp process; ``wait()`` returns its exit code (0: every call succeeded)."""

    args: list[str]
    workdir: Path
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    async def start(self) -> Sipp:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            sipp_binary(), *self.args, cwd=self.workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return self

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    def errors(self) -> str:
        """SIPp's own error log (``-trace_err``), for assertion messages."""
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.workdir.glob("*err*"))

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class SippFactory:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Sipp] = []

    async def uas(self, port: int, scenario: str = "uas", extra: Sequence[str] = ()) -> Sipp:
        args = [
            *self._scenario(scenario), "-i", HOST, "-p", str(port),
            "-mi", HOST, "-mp", str(free_udp_port()),
            "-cp", str(free_udp_port()), "-nostdin", "-buff_size", "4194304", "-trace_err",
        ]  # fmt: skip
        if scenario == "uas":
            args.append("-rtp_echo")
        uas = await self._start([*args, *extra], f"uas-{port}")
        # Calls sent before SIPp binds meet an ICMP port unreachable, and warpd fails the
        # gateway over: wait for the socket (a loaded box takes SIPp a while to start).
        async with asyncio.timeout(10):
            while not holds(port):
                assert uas.process is not None
                if uas.process.returncode is not None:
                    raise AssertionError(f"SIPp UAS on {port} exited: {uas.errors()}")
                await asyncio.sleep(0.02)
        return uas

    async def uac(
        self, target: tuple[str, int], *, calls: int, rate: float = 10.0, hold_ms: int = 200,
        scenario: str = "uac", service: str = "441234567890", extra: Sequence[str] = (),
    ) -> Sipp:  # fmt: skip
        port = free_udp_port()
        args = [
            *self._scenario(scenario), f"{target[0]}:{target[1]}",
            "-i", HOST, "-p", str(port), "-s", service,
            "-m", str(calls), "-r", str(rate), "-d", str(hold_ms), "-l", str(calls),
            "-cp", str(free_udp_port()), "-nostdin", "-buff_size", "4194304",
            "-timeout", "25s", "-timeout_error", "-trace_err",
        ]  # fmt: skip
        return await self._start([*args, *extra], f"uac-{port}")

    def _scenario(self, name: str) -> list[str]:
        if (SCENARIOS / f"{name}.xml").exists():
            return ["-sf", str(SCENARIOS / f"{name}.xml")]
        return ["-sn", name]

    async def _start(self, args: list[str], name: str) -> Sipp:
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        # uac_pcap plays pcap/g711a.pcap and pcap/dtmf_2833_1.pcap from its directory.
        (workdir / "pcap").symlink_to("/usr/share/sip-tester")
        sipp = await Sipp(args, workdir).start()
        self.started.append(sipp)
        return sipp


@pytest_asyncio.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[SippFactory]:
    factory = SippFactory(tmp_path / "sipp")
    yield factory
    for process in factory.started:
        await process.stop()


@dataclass
class Provisioned:
    account_id: int
    trunk_id: int
    gateway_ports: list[int]
    gateway_ids: list[int]


async def provision(
    conn: asyncpg.Connection, gateways: int = 2, *, max_channels: int = 200, max_cps: float = 500.0
) -> Provisioned:
    plan = await conn.fetchval(
        "INSERT INTO rate_plans (name, currency) VALUES ('p', 'EUR') RETURNING id"
    )
    account = await conn.fetchval(
        "INSERT INTO accounts (name, currency, rate_plan_id)"
        " VALUES ('acme', 'EUR', $1) RETURNING id",
        plan,
    )
    await conn.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, $2, 'topup')",
        account, BALANCE,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO voice_rates (rate_plan_id, prefix, price_per_min_micros, connect_fee_micros,"
        " first_increment_s, next_increment_s) VALUES ($1, '44', $2, $3, 1, 1)",
        plan, PER_MIN, CONNECT_FEE,
    )  # fmt: skip
    trunk = await conn.fetchval(
        "INSERT INTO sip_trunks (account_id, name, auth_mode, allowed_ips, max_channels, max_cps,"
        " country_code) VALUES ($1, 'pbx', 'ip', '{127.0.0.1/32}', $2, $3, '44') RETURNING id",
        account, max_channels, max_cps,
    )  # fmt: skip
    route = await conn.fetchval("INSERT INTO voice_routes (prefix) VALUES ('44') RETURNING id")
    ports, ids = [], []
    for position in range(gateways):
        port = free_udp_port()
        gateway = await conn.fetchval(
            "INSERT INTO carrier_gateways (name, host, port) VALUES ($1, $2, $3) RETURNING id",
            f"gw{position}", HOST, port,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO voice_route_gateways (route_id, position, gateway_id) VALUES ($1, $2, $3)",
            route, position, gateway,
        )  # fmt: skip
        ports.append(port)
        ids.append(gateway)
    return Provisioned(account, trunk, ports, ids)


@pytest_asyncio.fixture
async def voice_pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn, load_migrations())
    yield pool
    await pool.close()


@contextlib.asynccontextmanager
async def running_voice(
    pool: asyncpg.Pool,
    rtpengine: RtpEngineDaemon,
    state_dir: Path,
    *,
    media_config: RtpEngineConfig | None = None,
    balances: Balances | None = None,
    **sip: object,
) -> AsyncIterator[VoiceService]:
    """``media_config``: another RTPEngine set-up than ``rtpengine`` (an embedded one);
    ``balances``: the view of what accounts can spend that the daemon shares with SMS."""
    # No OPTIONS probing: SIPp's UAS would count a probe as one of its calls.
    settings = {
        "enabled": True, "listen": f"{HOST}:0", "tcp_listen": f"{HOST}:0", "gateway_timeout": 2.0,
        "options_interval": 0.0, **sip,
    }  # fmt: skip
    service = VoiceService(
        SipConfig(**settings),  # type: ignore[arg-type]
        media_config or RtpEngineConfig(embedded=False, instances=(f"{HOST}:{rtpengine.ng_port}",)),
        pool,
        state_dir=state_dir,
        instance="test",
        balances=balances,
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop(1.0)  # calls a test leaves up are hung up after 1 s


async def cdrs(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM voice_cdrs ORDER BY start_at")
