"""Real rtpengine daemons for the media tests (test-peers.md, "RTPEngine").

Each daemon runs in userspace mode (``--table=-1``) on loopback with its own ng
port (22230-22239), CLI port (22240-22249) and media port range (inside
40000-43999), so they never collide with each other or with other suites. A
missing binary fails the test with instructions: it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"


@dataclass
class RtpEngineDaemon:
    """One rtpengine process; ``start()`` returns once it answers a ping."""

    rundir: Path
    ng_port: int
    cli_port: int
    port_min: int
    port_max: int
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.ng_port)

    def command(self, binary: str) -> list[str]:
        return [
            binary,
            "--config-file=none",
            "--table=-1",
            f"--interface=lo/{HOST}",
            f"--listen-ng={HOST}:{self.ng_port}",
            f"--listen-cli={HOST}:{self.cli_port}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            "--foreground",
            "--log-stderr",
            "--log-level=6",
            f"--pidfile={self.rundir / 'rtpengine.pid'}",
            *self.extra_args,
        ]

    def start(self) -> None:
        binary = shutil.which("rtpengine") or (
            "/usr/bin/rtpengine" if Path("/usr/bin/rtpengine").exists() else None
        )
        if binary is None:
            pytest.fail(
                "rtpengine binary not found: install the Debian package rtpengine-daemon "
                "(apt-get install -y --no-install-recommends rtpengine-daemon)",
                pytrace=False,
            )
        self.rundir.mkdir(parents=True, exist_ok=True)
        log = (self.rundir / "rtpengine.log").open("ab")
        self.process = subprocess.Popen(self.command(binary), stdout=log, stderr=log)
        log.close()
        self._wait_for_pong()

    def _wait_for_pong(self, limit: float = 10.0) -> None:
        deadline = time.monotonic() + limit
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.05)
            probe.connect(self.address)
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    break
                try:
                    probe.send(b"fixture_probe d7:command4:pinge")
                    if probe.recv(100) == b"fixture_probe d6:result4:ponge":
                        return
                except (TimeoutError, ConnectionRefusedError):
                    continue
        log = (self.rundir / "rtpengine.log").read_text(errors="replace")[-2000:]
        self.stop()
        pytest.fail(f"rtpengine on {self.address} did not answer ping; log:\n{log}", pytrace=False)

    def stop(self) -> None:
        """Kill the daemon (SIGKILL: a test that stops it wants it gone now)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


# Under pytest-xdist each worker starts its own daemons: their control ports and
# media port ranges must not meet another worker's. WARPD_TEST_SLOT shifts a whole
# run, so that two runs on one machine (two checkouts) stay apart too: slots 0-9.
WORKER = int(os.environ.get("WARPD_TEST_SLOT", "0")) + int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0
)
assert 0 <= WORKER < 10, f"WARPD_TEST_SLOT + worker must be 0-9, not {WORKER}"


def port(base: int) -> int:
    """A control port: 22230.. for the first worker, 100 further for each next one."""
    return base + 100 * WORKER


def media(offset: int) -> int:
    """A media port, ``offset`` (0-2399) into this worker's block of 2,400 from 40000."""
    assert 0 <= offset < 2400, offset
    return 40000 + 2400 * WORKER + offset


@pytest.fixture(scope="session")
def rtpengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtpEngineDaemon]:
    """A daemon shared by the tests that only need one."""
    daemon = RtpEngineDaemon(
        tmp_path_factory.mktemp("rtpengine-a"), port(22230), port(22240), media(0),
        media(299),
    )  # fmt: skip
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def rtpengine_pair(tmp_path: Path) -> Iterator[tuple[RtpEngineDaemon, RtpEngineDaemon]]:
    """Two fresh daemons, for failover tests that stop and restart them."""
    first = RtpEngineDaemon(tmp_path / "b", port(22231), port(22241), media(300), media(599))
    second = RtpEngineDaemon(tmp_path / "c", port(22232), port(22242), media(600), media(899))
    first.start()
    try:
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()
