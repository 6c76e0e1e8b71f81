"""This instance among the others on one database: heartbeat, bind leases, customer binds.

One beat every ``heartbeat_seconds`` renews everything this instance holds
and reads where the others stand, in a handful of statements whatever the
traffic. What an instance holds is a lease: one that stops beating (kill -9,
a lost network) loses its carrier binds and its claims when the lease lapses,
and the others take them over; a clean stop hands them back at once.

Carrier binds: a connector's ``binds`` are slots 0..binds-1, each leased to
one instance, so the carrier never sees more binds than it allows however
many instances run, and each bind's TPS cap then holds in total. A bind
whose lease cannot be renewed in time closes rather than risk a slot held
twice. An instance holding more than its fair share gives one back when
another live instance is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import asyncpg
import structlog

from warpd import __version__
from warpd.cluster.policy import fair_share, surplus
from warpd.errors import ConfigError

log = structlog.get_logger(__name__)

_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_REGISTER = """
INSERT INTO instances (instance_id, host, pid, version, alive_until)
VALUES ($1, $2, $3, $4, now() + $5::interval)
ON CONFLICT (instance_id) DO UPDATE
   SET host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
       started_at = now(), heartbeat_at = now(), alive_until = EXCLUDED.alive_until,
       stopped_at = NULL
"""

# The lowest slot nobody holds; ON CONFLICT settles two instances racing for it.
_ACQUIRE = """
INSERT INTO connector_bind_leases AS l (connector_id, slot, instance_id, leased_until)
SELECT $1, s, $2, now() + $4::interval
  FROM generate_series(0, $3 - 1) AS s
 WHERE NOT EXISTS (SELECT 1 FROM connector_bind_leases h
                    WHERE h.connector_id = $1 AND h.slot = s AND h.leased_until > now())
 ORDER BY s LIMIT 1
ON CONFLICT (connector_id, slot) DO UPDATE
   SET instance_id = EXCLUDED.instance_id, leased_until = EXCLUDED.leased_until, up = false
 WHERE l.leased_until <= now()
RETURNING slot
"""

_RENEW_BINDS = """
UPDATE connector_bind_leases l SET leased_until = now() + $2::interval, up = u.up
  FROM unnest($3::bigint[], $4::int[], $5::bool[]) AS u(connector_id, slot, up)
 WHERE l.connector_id = u.connector_id AND l.slot = u.slot AND l.instance_id = $1
RETURNING l.connector_id, l.slot
"""

_PUT_CUSTOMER = """
INSERT INTO customer_binds (instance_id, smpp_user_id, binds, receivers, leased_until)
SELECT $1, u, b, r, now() + $2::interval
  FROM unnest($3::bigint[], $4::int[], $5::int[]) AS c(u, b, r)
ON CONFLICT (instance_id, smpp_user_id) DO UPDATE
   SET binds = EXCLUDED.binds, receivers = EXCLUDED.receivers,
       leased_until = EXCLUDED.leased_until
"""

# Per SMPP user, so two instances binding the same user at once count each other.
_CUSTOMER_LOCK = "SELECT pg_advisory_xact_lock(2002874992, $1::int)"  # "warp"
_CUSTOMER_ELSEWHERE = """
SELECT coalesce(sum(binds), 0) FROM customer_binds
 WHERE smpp_user_id = $1 AND instance_id <> $2 AND leased_until > now()
"""


class SlotHolder(Protocol):
    """A carrier bind that holds a lease on one of its connector's slots."""

    def lease_lost(self) -> None: ...


@dataclass(slots=True)
class _Held:
    holder: SlotHolder
    binds: int
    up: bool = False
    # Asked to close so another instance can have the slot: renewed until closed.
    giving_back: bool = False
    # Loop time until which the lease is known good; past it the bind closes.
    valid_until: float = 0.0


@dataclass(frozen=True, slots=True)
class View:
    """Where the other live instances stand, as of the last beat."""

    live: frozenset[str] = frozenset()
    #: Connectors with a bind up on another live instance.
    remote_up: frozenset[int] = frozenset()
    #: connector_id -> instance_id -> slots held.
    held: dict[int, dict[str, int]] = field(default_factory=dict)
    #: smpp_user_id -> binds on other instances.
    remote_binds: dict[int, int] = field(default_factory=dict)


class Membership:
    def __init__(
        self,
        pool: asyncpg.Pool,
        instance_id: str,
        *,
        lease_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self.instance_id = instance_id
        self.view = View(live=frozenset({instance_id}))
        self._pool = pool
        self._lease = timedelta(seconds=lease_seconds)
        # Never slower than a third of the lease: one missed beat keeps every lease.
        self._beat = min(heartbeat_seconds, lease_seconds / 3)
        self._held: dict[tuple[int, int], _Held] = {}
        self._released: set[tuple[int, int]] = set()
        self._slots_changed = asyncio.Event()
        self._customers: dict[int, tuple[int, int]] = {}  # user -> (binds, receivers) here
        self._customers_dirty: set[int] = set()
        self._last_given_back: dict[int, float] = {}
        self.beats = 0
        #: Run after every beat that read the others' state.
        self.on_beat: list[Callable[[], Awaitable[None]]] = []

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        """Register, refusing a second live process under the same instance id."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT host, pid, alive_until > now() AND stopped_at IS NULL AS alive"
                " FROM instances WHERE instance_id = $1 FOR UPDATE",
                self.instance_id,
            )
            if row is not None and row["alive"] and _another_process(row["host"], row["pid"]):
                raise ConfigError(
                    "[cluster]",
                    "instance_id",
                    f"{self.instance_id!r} is live as pid {row['pid']} on {row['host']};"
                    " give each instance its own",
                )
            await conn.execute(
                _REGISTER,
                self.instance_id,
                socket.gethostname(),
                os.getpid(),
                __version__,
                self._lease,
            )
            # A restart after a crash: what the previous process leased is ours to
            # take again, and nobody else's to wait for.
            await conn.execute(
                "DELETE FROM connector_bind_leases WHERE instance_id = $1", self.instance_id
            )
            await conn.execute(
                "DELETE FROM customer_binds WHERE instance_id = $1", self.instance_id
            )

    async def stop(self) -> None:
        """A clean stop: the others need not wait for the leases to lapse."""
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM connector_bind_leases WHERE instance_id = $1", self.instance_id
                )
                await conn.execute(
                    "DELETE FROM customer_binds WHERE instance_id = $1", self.instance_id
                )
                await conn.execute(
                    "UPDATE instances SET stopped_at = now(), alive_until = now()"
                    " WHERE instance_id = $1",
                    self.instance_id,
                )
        except _DB_ERRORS as exc:
            log.warning("cluster_stop_unrecorded", error=str(exc))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._heartbeat(started)
            except _DB_ERRORS as exc:
                log.warning("cluster_heartbeat_failed", error=str(exc))
            self._expire(loop.time())
            await asyncio.sleep(self._beat)

    # -- carrier binds -----------------------------------------------------------

    async def acquire_slot(self, connector_id: int, binds: int, holder: SlotHolder) -> int:
        """Wait until a slot of the connector is leased to ``holder``; returns it."""
        loop = asyncio.get_running_loop()
        while True:
            if self._yielding(connector_id, binds, loop.time()):
                await asyncio.sleep(self._beat)
                continue
            try:
                async with self._pool.acquire() as conn:
                    slot = await conn.fetchval(
                        _ACQUIRE, connector_id, self.instance_id, binds, self._lease
                    )
            except _DB_ERRORS as exc:
                log.warning("cluster_bind_lease_failed", connector_id=connector_id, error=str(exc))
                slot = None
            if slot is not None:
                key = (connector_id, int(slot))
                self._released.discard(key)
                self._held[key] = _Held(holder, binds, valid_until=loop.time() + self._valid())
                return int(slot)
            self._slots_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._beat):
                    await self._slots_changed.wait()

    def _yielding(self, connector_id: int, binds: int, now: float) -> bool:
        """Gave a bind back lately and holds its share: leave the free slot to the
        instance that was short, for a lease; after that, take it (that one may be
        unable to reach the carrier, and a slot left idle is capacity lost)."""
        given = self._last_given_back.get(connector_id)
        if given is None or now - given >= self._lease.total_seconds():
            return False
        return self.slots_held(connector_id) >= fair_share(binds, len(self.view.live))

    def set_up(self, connector_id: int, slot: int, up: bool) -> None:
        held = self._held.get((connector_id, slot))
        if held is not None:
            held.up = up

    def release_slot(self, connector_id: int, slot: int) -> None:
        """The bind is closed: the slot goes back (at the next beat, or lapses)."""
        key = (connector_id, slot)
        if self._held.pop(key, None) is not None:
            self._released.add(key)

    def slots_held(self, connector_id: int) -> int:
        return sum(1 for c, _ in self._held if c == connector_id)

    # -- customer binds ----------------------------------------------------------

    async def reserve_customer_bind(self, smpp_user_id: int, max_binds: int, here: int) -> bool:
        """May one more bind of this user open here, counting its binds everywhere?

        ``here`` is its binds on this instance. Without the database the
        local count decides: a customer keeps binding through an outage.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_CUSTOMER_LOCK, smpp_user_id)
                elsewhere = await conn.fetchval(_CUSTOMER_ELSEWHERE, smpp_user_id, self.instance_id)
                if here + int(elsewhere) >= max_binds:
                    return False
                receivers = self._customers.get(smpp_user_id, (0, 0))[1]
                await conn.execute(
                    _PUT_CUSTOMER,
                    self.instance_id,
                    self._lease,
                    [smpp_user_id],
                    [here + 1],
                    [receivers],
                )
        except _DB_ERRORS as exc:
            log.warning("cluster_customer_bind_unchecked", error=str(exc))
            return here < max_binds
        return True

    def customer_binds(self, smpp_user_id: int, binds: int, receivers: int) -> None:
        """This instance now has ``binds`` of the user (``receivers`` of them RX/TRX)."""
        self._customers[smpp_user_id] = (binds, receivers)
        self._customers_dirty.add(smpp_user_id)

    def remote_binds(self, smpp_user_id: int) -> int:
        return self.view.remote_binds.get(smpp_user_id, 0)

    # -- the beat ----------------------------------------------------------------

    def _valid(self) -> float:
        # Renewed at the start of a beat; keep a beat of margin before the lapse.
        return self._lease.total_seconds() - self._beat

    async def _heartbeat(self, started: float) -> None:
        keys = list(self._held)
        ups = [self._held[k].up for k in keys]
        released, self._released = self._released, set()
        dirty, self._customers_dirty = self._customers_dirty, set()
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE instances SET heartbeat_at = now(), alive_until = now() + $2::interval"
                " WHERE instance_id = $1",
                self.instance_id,
                self._lease,
            )
            if released:
                await conn.execute(
                    "DELETE FROM connector_bind_leases l USING unnest($2::bigint[], $3::int[])"
                    " AS r(c, s) WHERE l.connector_id = r.c AND l.slot = r.s"
                    " AND l.instance_id = $1",
                    self.instance_id,
                    [c for c, _ in released],
                    [s for _, s in released],
                )
                self._slots_changed.set()
            renewed = {
                (r["connector_id"], r["slot"])
                for r in await conn.fetch(
                    _RENEW_BINDS,
                    self.instance_id,
                    self._lease,
                    [c for c, _ in keys],
                    [s for _, s in keys],
                    ups,
                )
            }
            users = list(self._customers)
            await conn.execute(
                _PUT_CUSTOMER,
                self.instance_id,
                self._lease,
                users,
                [self._customers[u][0] for u in users],
                [self._customers[u][1] for u in users],
            )
            gone = [u for u in dirty if self._customers.get(u, (0, 0)) == (0, 0)]
            for user in gone:
                self._customers.pop(user, None)
            if gone:
                await conn.execute(
                    "DELETE FROM customer_binds WHERE instance_id = $1"
                    " AND smpp_user_id = any($2::bigint[]) AND binds = 0",
                    self.instance_id,
                    gone,
                )
            self.view = _view(
                self.instance_id,
                await conn.fetch(
                    "SELECT instance_id FROM instances"
                    " WHERE alive_until > now() AND stopped_at IS NULL"
                ),
                await conn.fetch(
                    "SELECT connector_id, instance_id, up FROM connector_bind_leases"
                    " WHERE leased_until > now()"
                ),
                await conn.fetch(
                    "SELECT smpp_user_id, sum(binds)::int AS binds FROM customer_binds"
                    " WHERE instance_id <> $1 AND leased_until > now() GROUP BY 1",
                    self.instance_id,
                ),
            )
        self.beats += 1
        valid_until = started + self._valid()
        for key in keys:
            held = self._held.get(key)
            if held is None:
                continue
            if key in renewed:
                held.valid_until = valid_until
            else:  # taken over while we could not renew: another instance holds it now
                log.warning("cluster_bind_lease_lost", connector_id=key[0], slot=key[1])
                self._held.pop(key, None)
                held.holder.lease_lost()
        self._give_back(started)
        if self._view_has_free_slots():
            self._slots_changed.set()
        for hook in self.on_beat:
            await hook()

    def _expire(self, now: float) -> None:
        """Leases not renewed in time: close those binds before anyone else may open one."""
        for key, held in list(self._held.items()):
            if now > held.valid_until:
                log.warning("cluster_bind_lease_expired", connector_id=key[0], slot=key[1])
                self._held.pop(key, None)
                self._released.add(key)
                held.holder.lease_lost()

    def _give_back(self, now: float) -> None:
        """Hand one bind per connector to a live instance that is short, at most once a lease."""
        by_connector: dict[int, list[tuple[int, _Held]]] = defaultdict(list)
        for (connector_id, slot), held in self._held.items():
            by_connector[connector_id].append((slot, held))
        for connector_id, slots in by_connector.items():
            if any(h.giving_back for _, h in slots):
                continue  # one at a time: the last is still closing
            binds = slots[0][1].binds
            held_by = self.view.held.get(connector_id, {})
            if not surplus(binds, len(slots), held_by, self.view.live, self.instance_id):
                continue
            last = self._last_given_back.get(connector_id, -1e9)
            if now - last < self._lease.total_seconds():
                continue
            self._last_given_back[connector_id] = now
            slot, held = max(slots, key=lambda s: s[0])
            log.info("cluster_bind_given_back", connector_id=connector_id, slot=slot)
            held.giving_back = True
            held.holder.lease_lost()  # the bind releases the slot once it is closed

    def _view_has_free_slots(self) -> bool:
        return (
            any(
                sum(self.view.held.get(c, {}).values()) < h.binds
                for (c, _), h in self._held.items()
            )
            or not self._held
        )


def _view(
    me: str,
    instances: Iterable[asyncpg.Record],
    leases: Iterable[asyncpg.Record],
    customers: Iterable[asyncpg.Record],
) -> View:
    live = frozenset({me, *(r["instance_id"] for r in instances)})
    held: dict[int, dict[str, int]] = defaultdict(dict)
    remote_up: set[int] = set()
    for row in leases:
        per = held[row["connector_id"]]
        per[row["instance_id"]] = per.get(row["instance_id"], 0) + 1
        if row["up"] and row["instance_id"] != me and row["instance_id"] in live:
            remote_up.add(row["connector_id"])
    return View(
        live=live,
        remote_up=frozenset(remote_up),
        held=dict(held),
        remote_binds={r["smpp_user_id"]: r["binds"] for r in customers},
    )


def _another_process(host: str, pid: int) -> bool:
    """Is the registered holder of our instance id a process other than a dead us?"""
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # our predecessor, killed: its leases are ours to take back
    except PermissionError:
        return True
    return True
