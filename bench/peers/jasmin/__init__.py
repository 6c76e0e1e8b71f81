"""Jasmin 0.11.0 (PyPI, its own venv) with RabbitMQ and Redis: the SMS peer.

0.11.0, not 0.11.1: 0.11.1 loses every delivery receipt (jookies/jasmin#1236).
Three daemons run, as Jasmin is deployed: ``jasmind.py`` (SMPP server, HTTP
API, router, connectors, jCli), ``dlrd.py`` (receipts to customers) and
``dlrlookupd.py`` (maps carrier ids to Jasmin's). Their configs are the
known-good ones from ../shared/peers/jasmin, copied beside this file; the
suite changes only ports, the broker addresses and file locations, then
applies ``jcli-setup.txt`` (the upstream connector "sink" to the simulator,
the customer foo/bar, default MT and MO routes) through jCli.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import time
import warnings
from pathlib import Path

from bench.harness.proc import HOST, Service, free_port, tcp_answers, wait_tcp
from bench.peers.base import PeerUnavailable, rundir, venv_install, venv_ready
from bench.peers.brokers import RabbitMq, Redis

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import telnetlib  # jCli is a telnet console; the module is in 3.11 and 3.12

HERE = Path(__file__).resolve().parent
REQUIREMENT = "jasmin==0.11.0"
VENV = "venv-jasmin"
USER, PASSWORD = "foo", "bar"
#: the login jcli-setup.txt gives Jasmin's connector to the carrier (the simulator)
UPSTREAM = ("sinkuser", "sinkpw")
#: jasmind's lock file (lockfile.FileLock("/tmp/jasmind")), and how long to wait for it
LOCK, LOCK_WAIT = Path("/tmp/jasmind.lock"), 600.0
PROMPTS: list[bytes | re.Pattern[bytes]] = [b"jcli : ", b"> "]


class Jasmin:
    name = "jasmin"

    def __init__(self, upstream_port: int, connectors: int = 1) -> None:
        self.upstream_port = upstream_port
        self.connectors = connectors
        self.ports = {key: free_port() for key in ("smpp", "pb", "cm", "router", "http", "jcli")}
        self.rabbitmq, self.redis = RabbitMq(), Redis()
        self.bin: Path | None = None
        self.services: list[Service] = []

    @property
    def smpp_port(self) -> int:
        return self.ports["smpp"]

    @property
    def http_port(self) -> int:
        return self.ports["http"]

    def installed(self) -> bool:
        return venv_ready(VENV, "jasmind.py")

    def install(self) -> None:
        self.bin = venv_install(VENV, REQUIREMENT, "jasmind.py")
        self.rabbitmq.install()
        self.redis.install()

    def _spec(self) -> Path:
        assert self.bin is not None
        # Jasmin reads the AMQP 0-9-1 spec from /etc/jasmin/resource; txamqp ships the same file.
        found = sorted(
            self.bin.parent.glob(
                "lib/python*/site-packages/txamqp/specs/standard/amqp0-9-1.stripped.xml"
            )
        )
        if not found:
            raise PeerUnavailable("txamqp's amqp0-9-1 spec not found in Jasmin's venv")
        return found[0]

    def _configs(self, run: Path) -> dict[str, Path]:
        overrides: dict[str, dict[str, object]] = {
            "smpp-server": {"port": self.ports["smpp"]},
            "smpp-server-pb": {"port": self.ports["pb"]},
            "smpp-server-pb-client": {"port": self.ports["pb"]},
            "client-management": {"port": self.ports["cm"]},
            "router": {"port": self.ports["router"]},
            "http-api": {"port": self.ports["http"]},
            "jcli": {"port": self.ports["jcli"]},
            "amqp-broker": {
                "host": HOST,
                "port": self.rabbitmq.port,
                "vhost": self.rabbitmq.vhost,
                "spec": self._spec(),
            },
            "redis-client": {"host": HOST, "port": self.redis.port},
        }
        written = {}
        for name in ("jasmin.cfg", "dlr.cfg", "dlrlookupd.cfg"):
            config = configparser.RawConfigParser()
            config.read(HERE / name)
            for section in config.sections():
                for key, value in overrides.get(section, {}).items():
                    config.set(section, key, str(value))
            written[name] = run / name
            with written[name].open("w") as out:
                config.write(out)
        return written

    def _wait_for_lock(self) -> None:
        """jasmind takes the fixed lock /tmp/jasmind (one per machine): on a shared machine
        another run's Jasmin may hold it, so wait for that one to stop rather than fail."""
        deadline = time.monotonic() + LOCK_WAIT
        if LOCK.exists():
            print(f"bench: waiting for another Jasmin to release {LOCK}", flush=True)
        while LOCK.exists():
            if time.monotonic() > deadline:
                raise PeerUnavailable(
                    f"another jasmind holds {LOCK} (Jasmin runs one per machine); "
                    "stop it, or delete the file if no jasmind is running"
                )
            time.sleep(1.0)

    def start(self) -> None:
        assert self.bin is not None, "install() first"
        self._wait_for_lock()
        self.rabbitmq.start()
        self.redis.start()
        run = rundir(self.name)
        shutil.rmtree(run / "etc", ignore_errors=True)  # no configuration persisted by a last run
        (run / "etc" / "jasmin" / "store").mkdir(parents=True)
        (run / "log").mkdir(exist_ok=True)
        env = {**os.environ, "ROOT_PATH": str(run), "LOG_PATH": str(run / "log")}
        configs = self._configs(run)
        python = self.bin / "python"
        for daemon, config in (
            ("jasmind", "jasmin.cfg"),
            ("dlrd", "dlr.cfg"),
            ("dlrlookupd", "dlrlookupd.cfg"),
        ):
            self.services.append(
                Service.start(
                    daemon, [python, self.bin / f"{daemon}.py", "-c", configs[config]], run, env=env
                )
            )
        try:
            wait_tcp(self.ports["jcli"], 60, "jasmind", self.services[0].process)
            self.transcript = jcli(self.ports["jcli"], self._setup())
            (run / "jcli-transcript.txt").write_text(self.transcript)
            wait_tcp(self.ports["smpp"], 30, "jasmind's SMPP server")
            wait_tcp(self.ports["http"], 30, "jasmind's HTTP API")
            self._wait_connector()
        except Exception:
            self.stop()
            raise

    def _setup(self) -> list[str]:
        """jcli-setup.txt pointed at the simulator, and for more connectors than one, their
        copies (sink2, sink3, ...) under a round-robin MT route that takes every message."""
        setup = (
            (HERE / "jcli-setup.txt")
            .read_text()
            .replace("port 2776", f"port {self.upstream_port}")
            .splitlines()
        )
        first = setup[: setup.index("smppccm -1 sink") + 1]
        extra = []
        for number in range(2, self.connectors + 1):
            extra += [line.replace("cid sink", f"cid sink{number}") for line in first]
            extra[-1] = f"smppccm -1 sink{number}"
        if self.connectors > 1:
            names = ";".join(
                ["smppc(sink)"] + [f"smppc(sink{n})" for n in range(2, self.connectors + 1)]
            )
            extra += [
                "filter -a",
                "type TransparentFilter",
                "fid all",
                "ok",
                "mtrouter -a",
                "type RandomRoundrobinMTRoute",
                "order 10",
                "filters all",
                f"connectors {names}",
                "rate 0.0",
                "ok",
            ]
        return first + extra + setup[len(first) :]

    def _wait_connector(self) -> None:
        """Every upstream connector has bound to the simulator (jCli lists them BOUND_TRX)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listing = jcli(self.ports["jcli"], ["smppccm -l"])
            if listing.count("BOUND_TRX") >= self.connectors:
                return
            time.sleep(0.5)
        raise PeerUnavailable(f"Jasmin's connector did not bind upstream: {listing[-600:]}")

    def health(self) -> bool:
        return all(s.process.poll() is None for s in self.services) and tcp_answers(
            self.ports["smpp"]
        )

    def jasmind_pids(self) -> list[int]:
        """The daemon holding the customer binds."""
        return self.services[0].pids() if self.services else []

    def processes(self) -> dict[str, list[int]]:
        """Each daemon's processes, and the brokers' (their CPU is part of Jasmin's cost)."""
        parts = {service.name: service.pids() for service in self.services}
        return parts | {"rabbitmq": self.rabbitmq.pids(), "redis": self.redis.pids()}

    def pids(self) -> list[int]:
        """Jasmin's daemons and the brokers it depends on (their CPU is part of its cost)."""
        own = [pid for s in self.services for pid in s.pids()]
        return own + self.rabbitmq.pids() + self.redis.pids()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        self.redis.stop()
        self.rabbitmq.stop()


def jcli(port: int, lines: list[str]) -> str:
    """Feed jCli one command per line (as ``jcli.py`` in ../shared does); returns the transcript."""
    console = telnetlib.Telnet(HOST, port, timeout=10)
    try:
        console.read_until(b"Username: ", 5)
        console.write(b"jcliadmin\r\n")
        console.read_until(b"Password: ", 5)
        console.write(b"jclipwd\r\n")
        transcript = [console.expect(PROMPTS, 5)[2]]
        for line in lines:
            if line.strip():
                console.write(line.encode() + b"\r\n")
                transcript.append(console.expect(PROMPTS, 15)[2])
        console.write(b"quit\r\n")
    finally:
        console.close()
    return b"".join(transcript).decode(errors="replace")
