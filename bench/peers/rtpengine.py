"""RTPEngine (Debian ``rtpengine-daemon``), userspace only, shared by every media row."""

from __future__ import annotations

import shutil
import socket
import time

from bench.harness.proc import HOST, Service, free_port
from bench.peers.base import PeerUnavailable, apt_install, rundir


class RtpEngine:
    name = "rtpengine"

    # Media ports below Linux's ephemeral range (32768-60999), where free_port() picks the
    # SIP ports of the peers: an overlap once left the Sippy B2BUA without its port.
    def __init__(self, port_min: int = 20000, port_max: int = 32699) -> None:
        self.ng_port = free_port(socket.SOCK_DGRAM)
        self.cli_port = free_port()
        self.port_min, self.port_max = port_min, port_max
        self.service: Service | None = None

    def install(self) -> None:
        if shutil.which("rtpengine") is None:
            apt_install("rtpengine-daemon")
        if shutil.which("rtpengine") is None:
            raise PeerUnavailable("rtpengine not found after installing rtpengine-daemon")

    def start(self) -> None:
        run = rundir(self.name)
        self.service = Service.start(
            self.name,
            [
                "rtpengine",
                "--config-file=none",
                "--table=-1",
                f"--interface=lo/{HOST}",
                f"--listen-ng={HOST}:{self.ng_port}",
                f"--listen-cli={HOST}:{self.cli_port}",
                f"--port-min={self.port_min}",
                f"--port-max={self.port_max}",
                # A deleted call frees its ports at once (the default keeps them 30 s),
                # or thousands of calls a second run out of ports, not of CPU.
                "--delete-delay=0",
                "--foreground",
                "--log-stderr",
                "--log-level=4",
                f"--pidfile={run / 'rtpengine.pid'}",
            ],
            run,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.health():
                return
            time.sleep(0.1)
        raise PeerUnavailable(f"rtpengine did not answer ping: {self.service.tail()}")

    def health(self) -> bool:
        """An ng ping answered with pong."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.3)
            try:
                probe.sendto(b"bench d7:command4:pinge", (HOST, self.ng_port))
                return b"pong" in probe.recv(200)
            except OSError:
                return False

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
