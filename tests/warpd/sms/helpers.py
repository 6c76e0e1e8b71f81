"""Provisioning and waiting helpers for the SMS core's tests (real PostgreSQL, real sockets)."""

from __future__ import annotations

import asyncio
import struct

from protocols.record import replace
from protocols.smpp.codec import decode, encode
from protocols.smpp.pdu import BindTransceiver, DeliverSm, Pdu, SubmitSm, make_response
from warpd.sim import SmscConfig, SmscSimulator

from .conftest import Running


async def start_simulator(**config: object) -> SmscSimulator:
    simulator = SmscSimulator(SmscConfig(port=0, **config))  # type: ignore[arg-type]
    await simulator.start()
    return simulator


async def add_connector(warpd: Running, name: str, port: int, **columns: object) -> int:
    fields = {
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "system_id": "sim",
        "password": "sim",
        "binds": 1,
        "window_size": 50,
        "tps": 1000,
        **columns,
    }
    names = ", ".join(fields)
    marks = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
    connector_id = await warpd.value(
        f"INSERT INTO connectors ({names}) VALUES ({marks}) RETURNING id", *fields.values()
    )
    assert isinstance(connector_id, int)
    return connector_id


async def only_route(warpd: Running, connector_ids: list[int], strategy: str = "failover") -> int:
    """Replace every MT route by one that sends everything to ``connector_ids`` in order."""
    await warpd.query("DELETE FROM mt_routes")
    route_id = await warpd.value(
        "INSERT INTO mt_routes (priority, prefix, strategy) VALUES (1, '', $1) RETURNING id",
        strategy,
    )
    for position, connector_id in enumerate(connector_ids):
        await warpd.query(
            "INSERT INTO mt_route_connectors (route_id, position, connector_id)"
            " VALUES ($1, $2, $3)",
            route_id,
            position,
            connector_id,
        )
    assert isinstance(route_id, int)
    return route_id


async def wait_for(predicate: object, timeout: float = 10.0, what: str = "condition") -> None:
    assert callable(predicate)
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def reloaded(warpd: Running, connector_ids: list[int], route_id: int | None = None) -> None:
    """Wait until the daemon's catalog has the connectors bound (and the route loaded)."""
    sms = warpd.daemon.sms
    assert sms is not None

    def ready() -> bool:
        up = all(c in sms.connectors and sms.connectors[c].up for c in connector_ids)
        routes = {r.id for r in sms.catalog.routing.mt_routes}
        return up and (route_id is None or route_id in routes)

    await wait_for(ready, what=f"connectors {connector_ids} bound")


async def ledger_matches_balances(warpd: Running) -> None:
    rows = await warpd.query(
        "SELECT a.id, a.balance_micros, coalesce(sum(l.amount_micros), 0) AS ledger"
        " FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id GROUP BY a.id"
    )
    for row in rows:
        assert row["balance_micros"] == row["ledger"], dict(row)


class Peer:
    """A raw SMPP peer: bytes in and out, so the tests see exactly what warpd sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.seq = 0
        self.delivered: list[DeliverSm] = []

    @classmethod
    async def connect(cls, warpd: Running) -> Peer:
        return cls(*await asyncio.open_connection(*warpd.smpp))

    def send(self, pdu: Pdu) -> None:
        self.writer.write(encode(pdu))

    async def request(self, pdu: Pdu) -> Pdu:
        self.seq += 1
        self.send(replace(pdu, sequence_number=self.seq))
        return await self.read()

    async def _next(self) -> Pdu:
        head = await self.reader.readexactly(4)
        (length,) = struct.unpack(">I", head)
        return decode(head + await self.reader.readexactly(length - 4))

    async def read(self, timeout: float = 5.0) -> Pdu:
        """The next PDU that is not a deliver_sm (those are answered and kept)."""
        async with asyncio.timeout(timeout):
            while True:
                pdu = await self._next()
                if not isinstance(pdu, DeliverSm):
                    return pdu
                self.delivered.append(pdu)
                self.send(make_response(pdu))

    async def deliveries(self, count: int, timeout: float = 10.0) -> list[DeliverSm]:
        """Wait until ``count`` deliver_sm have arrived (each answered ESME_ROK)."""
        async with asyncio.timeout(timeout):
            while len(self.delivered) < count:
                pdu = await self._next()
                if isinstance(pdu, DeliverSm):
                    self.delivered.append(pdu)
                    self.send(make_response(pdu))
        return self.delivered

    async def closed(self, timeout: float = 5.0) -> bool:
        async with asyncio.timeout(timeout):
            return await self.reader.read(1) == b""

    def close(self) -> None:
        self.writer.close()


async def bind(
    warpd: Running, system_id: str, password: str, cls: type = BindTransceiver
) -> tuple[Peer, Pdu]:
    peer = await Peer.connect(warpd)
    return peer, await peer.request(cls(system_id=system_id, password=password))


def submit(to: str = "447700900123", text: bytes = b"code 1") -> SubmitSm:
    return SubmitSm(
        source_addr="BANK",
        source_addr_ton=5,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=to,
        short_message=text,
        registered_delivery=1,
    )


async def take_carrier_away(warpd: Running, connector_id: int) -> int:
    """Point the connector at a closed port until it is down; returns the port it had."""
    sms = warpd.daemon.sms
    assert sms is not None
    port = await warpd.value("SELECT port FROM connectors WHERE id = $1", connector_id)
    assert isinstance(port, int)
    await warpd.query("UPDATE connectors SET port = 1 WHERE id = $1", connector_id)

    # The reload replaces the connector (new port): between the two it is not there.
    def carrier_gone() -> bool:
        connector = sms.connectors.get(connector_id)
        return connector is None or not connector.up

    await wait_for(carrier_gone, what="the carrier gone")
    return port
