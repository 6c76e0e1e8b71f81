"""Connectors through the admin API and CLI on a running warpd: live state, rebind, refusals."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.warpd.api.conftest import ADMIN_TOKEN, Http
from tests.warpd.api.test_cli import Cli
from tests.warpd.api.test_sms import wait_state


async def live(http: Http, connector_id: int) -> dict[str, Any]:
    status, body = await http.call("GET", "/v1/admin/connectors")
    assert status == 200, body
    (row,) = [c for c in body["connectors"] if c["id"] == connector_id]
    return row  # type: ignore[no-any-return]


async def bound_again(http: Http, connector_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        row = await live(http, connector_id)
        if all(b["health"] == "bound" for b in row["live"]["binds"]):
            return row
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


async def test_live_state_rebind_and_its_refusals(
    http: Http, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = await http.running.value("SELECT id FROM connectors ORDER BY id LIMIT 1")
    row = await live(http, demo)
    assert row["live"]["up"] is True
    assert [b["health"] for b in row["live"]["binds"]] == ["bound", "bound"]  # the demo's two
    sms = http.running.daemon.sms
    assert sms is not None
    sessions = [b.session for b in sms.connectors[demo].binds]

    status, body = await http.call("POST", f"/v1/admin/connectors/{demo}/rebind")
    assert (status, body["binds_dropped"]) == (202, 2), body
    # Answered once the carrier has seen the unbinds: no bind of the old sessions is up.
    assert not any(b["health"] == "bound" for b in body["live"]["binds"]), body
    await bound_again(http, demo)
    assert all(
        b.session is not old for b, old in zip(sms.connectors[demo].binds, sessions, strict=True)
    )
    # And messages flow on the new binds.
    _, (key,) = await http.customer()
    status, sent = await http.call(
        "POST", "/v1/sms", key, {"to": "+447700900123", "from": "WARPD", "text": "after"}
    )
    assert status == 202, sent
    assert (await wait_state(http, key, sent["id"], "delivered"))["state"] == "delivered"
    status, audit = await http.call("GET", "/v1/admin/audit")
    assert any(e["action"] == "connector.rebind" for e in audit["entries"])

    # The CLI goes through the same endpoint of the running daemon.
    host, port = http.base.removeprefix("http://").split(":")
    config = tmp_path / "cli.toml"
    config.write_text(f"[database]\ndsn = '{http.running.dsn}'\n[http]\nlisten = '{host}:{port}'\n")
    cli = Cli(config)
    monkeypatch.delenv("WARPD_ADMIN_TOKEN", raising=False)
    code, _ = await cli("connector", "rebind", str(demo))
    assert code == 2  # no token
    monkeypatch.setenv("WARPD_ADMIN_TOKEN", ADMIN_TOKEN)
    name = (await live(http, demo))["name"]
    code, body = await cli("connector", "rebind", name)
    assert code == 0, body
    if isinstance(body, str):  # the daemon's own log lines share this process's stdout
        body = json.loads(body[body.index("{\n") :])
    assert body["binds_dropped"] == 2, body
    await bound_again(http, demo)

    # Unknown: 404. Disabled (no binds on this instance): 409, as JSON.
    status, body = await http.call("POST", "/v1/admin/connectors/999999/rebind")
    assert (status, body["code"]) == (404, "not_found")
    status, body = await http.call("PATCH", f"/v1/admin/connectors/{demo}", json={"enabled": False})
    assert (status, body["enabled"], body["live"]) == (200, False, None), body
    status, body = await http.call("POST", f"/v1/admin/connectors/{demo}/rebind")
    assert (status, body["code"]) == (409, "connector_not_running")
    code, _ = await cli("connector", "rebind", str(demo))
    assert code == 1
