"""RabbitMQ for the events tests: the one on 127.0.0.1:5672, else a throwaway node.

Like the PostgreSQL fixture: ``WARPD_TEST_AMQP_URL`` names a broker to use;
otherwise the local one on 5672 (guest/guest) if it answers, else a node of
Debian's rabbitmq-server started on free ports under a temporary directory
and stopped after the session. A missing rabbitmq-server is an install step
(config/setup.sh), not a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ports import free_port

LOCAL = "amqp://guest:guest@127.0.0.1:5672/"
SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"  # a connection.start frame
        except OSError:
            return False


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    external = os.environ.get("WARPD_TEST_AMQP_URL")
    if external:
        yield external
        return
    if _answers(5672):
        yield LOCAL
        return
    if not SERVER.exists():
        pytest.fail("RabbitMQ is needed: apt-get install rabbitmq-server (config/setup.sh test)")
    root = Path(tempfile.mkdtemp(prefix="warpd-test-amqp-"))
    port = free_port()
    (root / "enabled_plugins").write_text("[].\n")
    env = dict(
        os.environ,
        HOME=str(root),
        RABBITMQ_NODENAME=f"warpd-test-{os.getpid()}@localhost",
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(free_port()),
        RABBITMQ_MNESIA_BASE=str(root / "mnesia"),
        RABBITMQ_LOG_BASE=str(root / "log"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(root / "enabled_plugins"),
        RABBITMQ_CONFIG_FILE=str(root / "rabbitmq"),
    )
    process = subprocess.Popen(
        [str(SERVER)], env=env, cwd=root, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"rabbitmq-server did not start; its logs are in {root / 'log'}")
            time.sleep(0.5)
        yield f"amqp://guest:guest@127.0.0.1:{port}/"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


class Outage:
    """A TCP relay in front of RabbitMQ that can cut every connection and refuse new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
