"""RabbitMQ and Redis for Jasmin: the machine's own when they answer, else started here.

Where a RabbitMQ (guest/guest) and a Redis already listen on 127.0.0.1's
standard ports, Jasmin is pointed at them and their CPU is counted through
the processes holding those ports; on the machine's RabbitMQ Jasmin gets a
vhost of its own for the run, deleted afterwards, so no queue from an earlier
run (Jasmin's queues are durable) feeds old messages into this one.
Otherwise the Debian packages are installed when missing and a private
instance runs on ports of its own, with
its data in the run directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.harness.proc import HOST, Service, free_port, listening_pids, tcp_answers, wait_tcp
from bench.peers.base import PeerUnavailable, apt_install, rundir

JASMIN_CONFIGS = Path(__file__).resolve().parent / "jasmin"


class Redis:
    name = "redis"

    def __init__(self) -> None:
        self.port = 6379
        self.service: Service | None = None

    def install(self) -> None:
        if not tcp_answers(self.port) and shutil.which("redis-server") is None:
            apt_install("redis-server")

    def start(self) -> None:
        if tcp_answers(self.port):
            return  # the machine's own
        self.port = free_port()
        run = rundir(self.name)
        self.service = Service.start(
            self.name,
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                run,
            ],
            run,
        )
        wait_tcp(self.port, 15, "redis-server", self.service.process)

    def health(self) -> bool:
        return tcp_answers(self.port)

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else listening_pids(self.port)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


class RabbitMq:
    name = "rabbitmq"

    def __init__(self) -> None:
        self.port = 5672
        self.vhost = "/"
        self.service: Service | None = None

    def install(self) -> None:
        if not tcp_answers(self.port) and shutil.which("rabbitmq-server") is None:
            apt_install("rabbitmq-server")

    def start(self) -> None:
        if tcp_answers(self.port):
            self.vhost = f"warpd-bench-{os.getpid()}-{time.monotonic_ns()}"
            _rabbitmqctl("add_vhost", self.vhost)
            _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
            return
        self.port = free_port()
        run = rundir(self.name)
        shutil.rmtree(run / "mnesia", ignore_errors=True)  # a fresh broker: no queues left over
        # ../shared/peers/jasmin's env and config files, with this run's directory and ports.
        env_file = (JASMIN_CONFIGS / "rabbitmq-env.conf").read_text().replace("@RUN@", str(run))
        env_file = env_file.replace("NODE_PORT=5672", f"NODE_PORT={self.port}")
        env_file = env_file.replace("DIST_PORT=25672", f"DIST_PORT={free_port()}")
        env_file = env_file.replace("NODENAME=rabbit@localhost", "NODENAME=benchrabbit@localhost")
        conf = (JASMIN_CONFIGS / "rabbitmq.conf").read_text()
        conf = conf.replace("127.0.0.1:5672", f"{HOST}:{self.port}")
        (run / "rabbitmq-env.conf").write_text(env_file)
        (run / "rabbitmq.conf").write_text(conf)
        env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(run / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(run / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(run / "enabled_plugins"),
        }
        (run / "enabled_plugins").write_text("[].\n")
        # Debian's rabbitmq-server drops to the rabbitmq user when started as root.
        for directory in (run / "mnesia", run / "log"):
            directory.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            for path in (run, run / "mnesia", run / "log", *run.glob("rabbitmq*")):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.service = Service.start(self.name, ["rabbitmq-server"], run, env=env)
        wait_tcp(self.port, 60, "rabbitmq-server", self.service.process)
        time.sleep(1)  # the listener opens a moment before the broker accepts logins

    def health(self) -> bool:
        return tcp_answers(self.port)

    def pids(self) -> list[int]:
        if self.service is not None:
            return self.service.pids()
        pids = listening_pids(self.port)
        if not pids:
            raise PeerUnavailable(f"no process found listening on {self.port}")
        return pids

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop(grace=15)
        elif self.vhost != "/":
            _rabbitmqctl("delete_vhost", self.vhost)
            self.vhost = "/"


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerUnavailable(f"rabbitmqctl {' '.join(args)} failed: {done.stderr[-300:]}")
