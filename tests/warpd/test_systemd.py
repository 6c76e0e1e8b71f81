from __future__ import annotations

import os
import socket
import uuid

from warpd.systemd import Notifier


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert notifier.watchdog_interval is None


def test_abstract_socket_and_watchdog_interval() -> None:
    name = f"warpd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier(
            {
                "NOTIFY_SOCKET": "@" + name,
                "WATCHDOG_USEC": "3000000",
                "WATCHDOG_PID": str(os.getpid()),
            }
        )
        assert notifier.watchdog_interval == 1.5
        assert notifier.ready("serving")
        assert sock.recv(100) == b"READY=1\nSTATUS=serving"
        assert notifier.watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_watchdog_for_another_pid_or_garbage_is_off() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval is None


def test_a_vanished_socket_is_not_fatal() -> None:
    assert not Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"}).stopping()
