"""Sippy B2BUA (PyPI ``sippy`` 2.5.0) in its own venv: the closest pure-Python SIP peer.

Run without RADIUS accounting or authentication and with a static route to
the SIPp UAS, as in test-peers.md; no RTP proxy (signalling only).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from bench.harness.proc import HOST, Service, free_port
from bench.peers.base import PeerUnavailable, rundir, venv_install, venv_ready
from bench.peers.kamailio import options_answered

REQUIREMENT = "sippy==2.5.0"
VENV = "venv-sippy"


class Sippy:
    name = "sippy"

    def __init__(self, uas_port: int) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.uas_port = uas_port
        self.bin: Path | None = None
        self.service: Service | None = None

    def installed(self) -> bool:
        return venv_ready(VENV, "b2bua")

    def install(self) -> None:
        self.bin = venv_install(VENV, REQUIREMENT, "b2bua")

    def start(self) -> None:
        assert self.bin is not None, "install() first"
        run = rundir(self.name)
        self.service = Service.start(
            self.name,
            [
                self.bin / "b2bua",
                f"--sip_address={HOST}",
                f"--sip_port={self.port}",
                f"--static_route={HOST}:{self.uas_port}",
                "--foreground=on",
                "--acct_enable=off",
                "--auth_enable=off",
                f"--logfile={run / 'b2bua.log'}",
                f"--b2bua_socket={run / 'b2bua.sock'}",
                f"--pidfile={run / 'b2bua.pid'}",
            ],
            run,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.health():
                return
            if self.service.process.poll() is not None:
                break
            time.sleep(0.2)
        self.service.stop()
        raise PeerUnavailable(f"sippy b2bua did not answer OPTIONS: {self.service.tail()}")

    def health(self) -> bool:
        return options_answered(self.port)

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
