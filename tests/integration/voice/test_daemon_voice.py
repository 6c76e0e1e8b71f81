"""The daemon with [sip] enabled: its own rtpengine, the demo's voice rows, calls served."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import HOST, SippFactory, cdrs, free_udp_ports
from warpd.config import parse
from warpd.daemon import Daemon
from warpd.systemd import Notifier


def ping(port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(b"t1 d7:command4:pinge", (HOST, port))
        return sock.recv(100)


async def test_demo_daemon_owns_rtpengine_and_completes_a_call(
    database_dsn: str, tmp_path: Path, sipp: SippFactory
) -> None:
    sip_port, ng_port, carrier, simulator = free_udp_ports(4)
    text = (
        f"[database]\ndsn = '{database_dsn}'\npool_min = 1\npool_max = 4\n"
        f"[http]\nlisten = '127.0.0.1:0'\n[smpp]\nlisten = '127.0.0.1:0'\n"
        f"[daemon]\nstate_dir = '{tmp_path}'\nshutdown_timeout = 3.0\n"
        f"[demo]\nenabled = true\nsimulator_port = {simulator}\n"
        f"[sip]\nenabled = true\nlisten = '127.0.0.1:{sip_port}'\ntcp_listen = '127.0.0.1:0'\n"
        "reload_interval = 3600.0\n"
        f"[rtpengine]\nng_port = {ng_port}\nport_min = 45000\nport_max = 45499\n"
    )
    path = tmp_path / "warpd.toml"
    path.write_text(text)
    config = parse(text, str(path), {})
    daemon = Daemon(config, config_path=path, migrate=True, notifier=Notifier({}))
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        async with asyncio.timeout(30):
            await daemon.ready.wait()
        # SMS and voice spend from one view of each account.
        assert daemon.voice is not None
        assert daemon.sms is not None
        assert daemon.voice.balances is daemon.sms.balances
        credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
        assert credentials["sip"] == {"host": HOST, "port": sip_port, "gateway": "127.0.0.1:5070"}
        assert await asyncio.to_thread(ping, ng_port) == b"t1 d6:result4:ponge"
        # The demo carrier is 127.0.0.1:5070; this test moves it to a port of its own.
        conn = await asyncpg.connect(database_dsn)
        try:
            await conn.execute("UPDATE carrier_gateways SET port = $1", carrier)
        finally:
            await conn.close()
        assert await daemon.reload()  # SIGHUP: the voice directory is read again
        await sipp.uas(carrier)
        uac = await sipp.uac((HOST, sip_port), calls=2, service="02079460000")
        assert await uac.wait() == 0, uac.errors()
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 20) == 0
    pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=1)
    try:
        rows = await cdrs(pool)
    finally:
        await pool.close()
    assert [(r["disposition"], r["dst_e164"]) for r in rows] == [("ANSWERED", "442079460000")] * 2
    assert all(r["price_micros"] > 0 for r in rows)
    # The daemon stopped its rtpengine on the way out.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(b"t2 d7:command4:pinge", (HOST, ng_port))
        try:
            reply = sock.recv(100)
        except (TimeoutError, ConnectionRefusedError):
            reply = b""
    assert reply == b""
