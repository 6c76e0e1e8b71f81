"""Kamailio (Debian ``kamailio``, 5.6) as a stateful proxy, with or without RTPEngine media.

``kamailio.cfg`` is the known-good proxy from ../shared/peers/kamailio (tm,
sl, rr, record-route, forwarding to the SIPp UAS); ``kamailio-rtpengine.cfg``
adds the rtpengine module (offer on the INVITE, answer on the reply with SDP,
delete on BYE), which Debian ships in the ``kamailio`` package itself. The
suite rewrites only the listen address, the UAS address, the ctl socket and
the ng port. Shared memory is raised (``-m``) as >2000 CPS needs.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from bench.harness.proc import HOST, Service, free_port
from bench.peers.base import PeerUnavailable, apt_install, rundir

HERE = Path(__file__).resolve().parent
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


class Kamailio:
    def __init__(self, uas_port: int, rtpengine_ng_port: int | None = None) -> None:
        self.media = rtpengine_ng_port is not None
        self.name = "kamailio-rtpengine" if self.media else "kamailio"
        self.port = free_port(socket.SOCK_DGRAM)
        self.uas_port, self.ng_port = uas_port, rtpengine_ng_port
        self.service: Service | None = None

    def installed(self) -> bool:
        return shutil.which("kamailio") is not None

    def install(self) -> None:
        if shutil.which("kamailio") is None:
            apt_install("kamailio")
        if shutil.which("kamailio") is None:
            raise PeerUnavailable("kamailio not found after installing the kamailio package")
        if self.media and not (MODULES / "rtpengine.so").exists():
            raise PeerUnavailable(f"{MODULES / 'rtpengine.so'} missing from the kamailio package")

    def config(self, run: Path) -> Path:
        source = HERE / ("kamailio-rtpengine.cfg" if self.media else "kamailio.cfg")
        text = (
            source.read_text()
            .replace("listen=udp:127.0.0.1:5060", f"listen=udp:{HOST}:{self.port}")
            .replace('"sip:127.0.0.1:5070"', f'"sip:{HOST}:{self.uas_port}"')
            .replace("@RUN@", str(run))
            .replace("@NG_PORT@", str(self.ng_port))
        )
        target = run / "kamailio.cfg"
        target.write_text(text)
        return target

    def start(self) -> None:
        run = rundir(self.name)
        config = self.config(run)
        (run / "kamailio.pid").unlink(missing_ok=True)  # a stale one makes kamailio refuse to start
        self.service = Service.start(
            self.name,
            [
                "kamailio",
                "-f",
                config,
                "-P",
                run / "kamailio.pid",
                "-m",
                "2048",
                "-M",
                "32",
                "-DD",
                "-E",
                "-Y",
                run,
            ],
            run,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.health():
                return
            if self.service.process.poll() is not None:
                break
            time.sleep(0.2)
        self.service.stop()
        raise PeerUnavailable(f"{self.name} did not answer OPTIONS: {self.service.tail()}")

    def health(self) -> bool:
        return options_answered(self.port)

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


def options_answered(port: int) -> bool:
    """An OPTIONS with Max-Forwards 0 gets a SIP response (483 from a proxy, any from a UA)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        probe.settimeout(0.5)
        # The reply goes to the Via's sent-by: our own port.
        via = f"{HOST}:{probe.getsockname()[1]};branch=z9hG4bKb{time.monotonic_ns()}"
        request = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {via}\r\n"
            f"From: <sip:bench@{HOST}>;tag=b\r\nTo: <sip:{HOST}>\r\n"
            f"Call-ID: health-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        try:
            probe.sendto(request, (HOST, port))
            return probe.recv(2000).startswith(b"SIP/2.0 ")
        except OSError:
            return False
