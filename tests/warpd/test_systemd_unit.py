"""The shipped unit keeps the promises the README makes about it."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "warpd.service"


def test_unit_is_hardened_notify_service() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    expected = {
        "Type": "notify",
        "Restart": "on-failure",
        "User": "warpd",
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "StateDirectory": "warpd",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "KillSignal": "SIGTERM",
    }
    for key, value in expected.items():
        assert service[key] == value, key
    assert int(service["WatchdogSec"]) > 0
    assert int(service["LimitNOFILE"]) >= 65536
    assert service["ExecStart"].endswith("run")
    assert "-HUP" in service["ExecReload"]
