"""A local rtpengine owned by the daemon, like the embedded PostgreSQL.

Debian's ``rtpengine-daemon`` in userspace mode (``--table=-1``: no kernel
module), on one loopback interface, with its own ng port and media port range
(test-peers.md, "RTPEngine"). ``start`` returns once it answers an ng ping;
``stop`` terminates it (SIGTERM, then SIGKILL). Its log goes to
``<rundir>/rtpengine.log``. With a ``recording_dir`` it records the calls
whose offer asks (``record call``): ``pcap`` files under ``pcaps/``, the
call's metadata under ``metadata/``.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import structlog

from warpd.errors import WarpdError

log = structlog.get_logger(__name__)


class RtpEngineProcess:
    def __init__(
        self,
        rundir: Path,
        *,
        binary: str = "",
        ng_port: int = 2223,
        media_address: str = "127.0.0.1",
        port_min: int = 30000,
        port_max: int = 39999,
        recording_dir: Path | None = None,
        recording_method: str = "pcap",
    ) -> None:
        self.rundir = rundir
        self.binary = binary
        self.ng_port = ng_port
        self.media_address = media_address
        self.port_min = port_min
        self.port_max = port_max
        self.recording_dir = recording_dir
        self.recording_method = recording_method
        self._process: asyncio.subprocess.Process | None = None

    @property
    def ng_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.ng_port)

    def command(self, binary: str) -> list[str]:
        recording = []
        if self.recording_dir is not None:
            recording = [
                f"--recording-dir={self.recording_dir}",
                f"--recording-method={self.recording_method}",
            ]
        return [
            binary,
            "--config-file=none",
            "--table=-1",
            f"--interface=lo/{self.media_address}",
            f"--listen-ng=127.0.0.1:{self.ng_port}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            "--foreground",
            "--log-stderr",
            "--log-level=5",
            f"--pidfile={self.rundir / 'rtpengine.pid'}",
            *recording,
        ]

    async def start(self, timeout: float = 10.0) -> tuple[str, int]:
        binary = self.binary or shutil.which("rtpengine") or "/usr/bin/rtpengine"
        if not shutil.which(binary):
            raise WarpdError(
                "rtpengine not found: install Debian's rtpengine-daemon "
                "(bash config/setup.sh run does) or set rtpengine.embedded = false"
            )
        self.rundir.mkdir(parents=True, exist_ok=True)
        if self.recording_dir is not None:
            self.recording_dir.mkdir(parents=True, exist_ok=True)
        with (self.rundir / "rtpengine.log").open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(binary), stdout=out, stderr=out, start_new_session=True
            )
        try:
            await asyncio.wait_for(self._wait_for_pong(), timeout)
        except (TimeoutError, WarpdError) as exc:
            await self.stop()
            raise WarpdError(
                f"rtpengine did not answer ping on port {self.ng_port}: "
                f"see {self.rundir / 'rtpengine.log'}"
            ) from exc
        log.info("rtpengine_started", ng=self.ng_address, pid=self._process.pid)
        return self.ng_address

    async def _wait_for_pong(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.setblocking(False)
            probe.connect(self.ng_address)
            loop = asyncio.get_running_loop()
            while True:
                if self._process is None or self._process.returncode is not None:
                    raise WarpdError("rtpengine exited at start")
                try:
                    probe.send(b"warpd_start d7:command4:pinge")
                    async with asyncio.timeout(0.1):
                        reply = await loop.sock_recv(probe, 100)
                    if reply == b"warpd_start d6:result4:ponge":
                        return
                except (TimeoutError, ConnectionRefusedError):
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.info("rtpengine_stopped")
