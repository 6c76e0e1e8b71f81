"""One pool connection kept by a writer that commits many times a second.

Given back after every transaction, a pooled connection is reset by asyncpg
(RESET ALL, advisory unlocks, UNLISTEN, CLOSE ALL): a round trip and work for
PostgreSQL per batch, as many as there are batches. A writer keeps one
instead, and gives it back after a failure (the pool checks and resets it)
or when it stops.
"""

from __future__ import annotations

import contextlib

import asyncpg
from asyncpg.pool import PoolConnectionProxy


class HeldConnection:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: PoolConnectionProxy | None = None

    async def get(self) -> PoolConnectionProxy:
        if self._conn is not None and not _usable(self._conn):
            await self.release()
        if self._conn is None:
            self._conn = await self._pool.acquire()
        return self._conn

    async def release(self) -> None:
        """After a failure, or to stop: the pool takes it back (and resets or replaces it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            # The pool takes a lost connection back itself: releasing it again fails.
            with contextlib.suppress(asyncpg.InterfaceError):
                await self._pool.release(conn)


def _usable(conn: PoolConnectionProxy) -> bool:
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # lost, and already back in the pool
        return False
