"""A TCP proxy in front of PostgreSQL that the tests cut and restore (asyncpg's own test base
does the same): ``cut()`` aborts every relayed connection and refuses new ones until
``restore()``; ``cut(blackhole=True)`` is a partition instead: nothing is answered or closed,
bytes in either direction are dropped, new connections are accepted and never served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit, urlunsplit


class PgProxy:
    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        #: A throwaway cluster listens on a Unix socket only (host=/dir&port=N in the query).
        self._socket_dir = query.get("host", [None])[0]
        self._port = int(query.get("port", [parts.port or 5432])[0])
        self._host = parts.hostname or "127.0.0.1"
        self._dsn = parts
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.cut_active = False
        self.blackhole = False
        self.refused = 0
        self.aborted = 0
        self.port = 0

    @property
    def dsn(self) -> str:
        """The same database, through the proxy on 127.0.0.1."""
        netloc = self._dsn.netloc
        userinfo = netloc.rsplit("@", 1)[0] if "@" in netloc else "postgres"
        return urlunsplit(
            ("postgresql", f"{userinfo}@127.0.0.1:{self.port}", self._dsn.path, "", "")
        )

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._socket_dir and self._socket_dir.startswith("/"):
            path = f"{self._socket_dir}/.s.PGSQL.{self._port}"
            return await asyncio.open_unix_connection(path)
        return await asyncio.open_connection(self._host, self._port)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self, blackhole: bool = False) -> None:
        self.cut_active = True
        self.blackhole = blackhole
        if blackhole:
            return
        for writer in list(self._writers):
            self.aborted += 1
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        """Serve again; connections that lived through a partition are reset."""
        if self.blackhole:
            self.blackhole = False
            self.cut()
        self.cut_active = False

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_active:
            self.refused += 1
            if self.blackhole:
                self._writers.add(writer)  # held open, never served, reset by restore()
                return
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await self._upstream()
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, self._open), _pipe(up_reader, writer, self._open)
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    def _open(self) -> bool:
        return not self.blackhole


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, open_: Callable[[], bool]
) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            if open_():  # a partition drops what crosses it
                writer.write(data)
                await writer.drain()
    writer.transport.abort()
