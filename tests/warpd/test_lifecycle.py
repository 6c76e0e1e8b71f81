"""``warpd run`` as a process: real signals, sd_notify, the embedded default."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ports import free_port


def wait_ready(proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    limit = time.monotonic() + deadline
    while time.monotonic() < limit:
        assert proc.poll() is None, proc.communicate()[1].decode()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready within {deadline} s")


def start(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "warpd", "--config", str(config), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[int, float, str]:
    began = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, time.monotonic() - began, err.decode()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def test_sigterm_drains_and_exits_0_with_systemd_notifications(
    database_dsn: str, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    port = free_port()
    config = tmp_path / "warpd.toml"
    config.write_text(
        f"[database]\ndsn = '{database_dsn}'\n[http]\nlisten = '127.0.0.1:{port}'\n"
        "[smpp]\nlisten = '127.0.0.1:0'\n"
    )
    proc = start(config, "--migrate", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        wait_ready(proc, port, 20)
        messages = {sock.recv(4096).decode() for _ in range(2)}
        assert any(m.startswith("READY=1\nSTATUS=serving") for m in messages), messages
        assert "WATCHDOG=1" in messages | {sock.recv(4096).decode()}
    finally:
        code, took, err = stop(proc)
    assert code == 0, err
    assert took < 5
    seen = set()
    while True:
        try:
            seen.add(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(m.startswith("STOPPING=1") for m in seen):
            break
    assert any(m.startswith("STOPPING=1") for m in seen), seen


def test_unmigrated_schema_stops_start_up_with_exit_1(database_dsn: str, tmp_path: Path) -> None:
    config = tmp_path / "warpd.toml"
    config.write_text(
        f"[database]\ndsn = '{database_dsn}'\n[http]\nlisten = '127.0.0.1:0'\n"
        "[smpp]\nlisten = '127.0.0.1:0'\n"
    )
    proc = start(config)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "run 'warpd migrate' or start with --migrate" in err.decode()


def test_embedded_default_starts_serves_and_leaves_no_postgres() -> None:
    state = Path(tempfile.mkdtemp(prefix="warpd-embedded-"))
    port = free_port()
    config = state / "warpd.toml"
    config.write_text(
        f"[daemon]\nstate_dir = '{state}/state'\n[database]\nauto_migrate = true\n"
        f"[embedded_postgres]\nport = {free_port()}\n[http]\nlisten = '127.0.0.1:{port}'\n"
        "[smpp]\nlisten = '127.0.0.1:0'\n"
    )
    proc = start(config)
    try:
        began = time.monotonic()
        wait_ready(proc, port, 30)
        assert time.monotonic() - began < 30
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            assert b"warpd_ready 1.0" in r.read()
    finally:
        code, took, err = stop(proc, signal.SIGINT)
    assert code == 0, err
    assert took < 5
    leftovers = subprocess.run(
        ["pgrep", "-f", f"{state}/state/postgres"], capture_output=True, check=False
    )
    assert leftovers.stdout == b"", leftovers.stdout
    assert (state / "state" / "postgres" / "data" / "PG_VERSION").exists()
    shutil.rmtree(state, ignore_errors=True)
