"""TLS both ways: customers binding to the TLS listener, a connector binding to a TLS carrier
(Sinch: TLS on 3601), and the listener's certificate re-read on SIGHUP."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest_asyncio

from protocols.smpp.pdu import BindTransceiver
from warpd.sim import EsmeConfig, run_esme

from .conftest import Running, start_warpd, stop_warpd
from .helpers import add_connector, bind, only_route, reloaded, start_simulator


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, as an operator would make one)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def replace_pair(cert: Path, new_cert: Path, new_key: Path) -> None:
    cert.write_bytes(new_cert.read_bytes())
    cert.with_suffix(".key").write_bytes(new_key.read_bytes())


@pytest_asyncio.fixture
async def tls_warpd(database_dsn: str, tmp_path: Path) -> Running:
    cert, key = certificate(tmp_path, "warpd")
    running = await start_warpd(
        database_dsn,
        tmp_path / "state",
        0,
        smpp=f"tls_listen = '127.0.0.1:0'\ntls_cert = '{cert}'\ntls_key = '{key}'\n",
    )
    running.tls_cert = cert  # type: ignore[attr-defined]
    yield running  # type: ignore[misc]
    await stop_warpd(running)


def tls_port(warpd: Running) -> int:
    sms = warpd.daemon.sms
    assert sms is not None
    return sms.listener.addresses[1][1]


async def test_customer_binds_over_tls_and_tls_only_users_refused_in_clear(
    tls_warpd: Running,
) -> None:
    port = tls_port(tls_warpd)
    summary = await run_esme(
        EsmeConfig(
            port=port,
            system_id=tls_warpd.system_id,
            password=tls_warpd.password,
            count=10,
            tls=True,
            receipt_timeout=10,
        )
    )
    assert summary.receipt_ids_matched == 10
    # Verified against the certificate as a careful client would.
    context = ssl.create_default_context(cafile=str(tls_warpd.tls_cert))  # type: ignore[attr-defined]
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.close()
    await tls_warpd.query("UPDATE smpp_users SET tls_required = true")
    await asyncio.sleep(1.2)
    _, resp = await bind(tls_warpd, tls_warpd.system_id, tls_warpd.password, BindTransceiver)
    assert resp.command_status == 0x0D  # ESME_RBINDFAIL on the plain listener
    summary = await run_esme(
        EsmeConfig(
            port=port,
            system_id=tls_warpd.system_id,
            password=tls_warpd.password,
            count=2,
            tls=True,
            receipt_timeout=10,
        )
    )
    assert summary.receipt_ids_matched == 2


async def test_sighup_reloads_the_certificate(tls_warpd: Running, tmp_path: Path) -> None:
    port = tls_port(tls_warpd)
    new_cert, new_key = certificate(tmp_path, "renewed")
    # The operator replaces the files in place and sends SIGHUP.
    replace_pair(Path(tls_warpd.tls_cert), new_cert, new_key)  # type: ignore[attr-defined]
    assert await tls_warpd.daemon.reload()
    context = ssl.create_default_context(cafile=str(new_cert))
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    peer = writer.get_extra_info("peercert")
    assert ("commonName", "renewed") in peer["subject"][0]
    writer.close()


async def test_a_connector_binds_to_a_tls_carrier(warpd: Running, tmp_path: Path) -> None:
    cert, key = certificate(tmp_path, "carrier")
    carrier = await start_simulator(tls_cert=cert, tls_key=key)
    try:
        connector = await add_connector(
            warpd, "sinch-like", carrier.port, tls=True, options=f'{{"tls_ca": "{cert}"}}'
        )
        route = await only_route(warpd, [connector])
        await reloaded(warpd, [connector], route)
        host, port = warpd.smpp
        summary = await run_esme(
            EsmeConfig(
                host=host,
                port=port,
                system_id=warpd.system_id,
                password=warpd.password,
                count=5,
                receipt_timeout=10,
            )
        )
        assert summary.receipt_ids_matched == 5
        assert carrier.stats.submits == 5
    finally:
        await carrier.stop()
