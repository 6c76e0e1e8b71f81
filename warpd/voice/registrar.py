"""The registrar for PBXs that REGISTER (RFC 3261 section 10.3), bindings in PostgreSQL.

Bindings live in ``sip_registrations`` (so a restart, or another instance,
keeps them) and in memory for routing. Where an inbound call goes is decided
here too: a PBX behind NAT registers a Contact it cannot be reached at, so when
the Contact's host is not the address the REGISTER came from, the call goes to
that source address instead (what Kamailio's ``fix_nated_contact`` does).
``plan_register`` is pure: the REGISTER, the bounds and the clock in, the
bindings to store and the response's Contact lines out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from protocols.sip.errors import SipError
from protocols.sip.message import SipRequest
from protocols.sip.transaction import Addr, StreamAddr, Transport, transport_of
from protocols.sip.uri import SipUri, parse_uri


@dataclass(frozen=True, slots=True)
class Binding:
    trunk_id: int
    contact: str  # the Contact URI as registered
    source: Addr  # where the REGISTER came from
    call_id: str
    cseq: int
    expires_at: dt.datetime

    def target(self) -> Addr:
        """Where calls for this binding are sent (RFC 3581 thinking: trust the source).

        A REGISTER over TCP or TLS names its connection: calls go back on it (the
        PBX may be reachable no other way, RFC 5626 section 5.3)."""
        if isinstance(self.source, StreamAddr):
            return self.source
        host, port = _contact_addr(self.contact)
        if host == self.source[0]:
            return (host, port)
        return self.source


def _contact_addr(contact: str) -> tuple[str, int]:
    try:
        uri = parse_uri(contact)
    except SipError:
        return ("", 0)
    if not isinstance(uri, SipUri):
        return ("", 0)
    return (uri.host.strip("[]"), uri.port or 5060)


@dataclass(frozen=True, slots=True)
class RegisterPlan:
    """What a REGISTER asks for: bindings to set (expires > 0) and contacts to remove."""

    status: int
    store: tuple[Binding, ...] = ()
    remove: tuple[str, ...] = ()
    remove_all: bool = False
    min_expires: int | None = None


def plan_register(
    request: SipRequest,
    trunk_id: int,
    source: Addr,
    now: dt.datetime,
    *,
    min_expires: int,
    max_expires: int,
) -> RegisterPlan:
    """10.3 steps 6-8: the Expires of each Contact, bounded; ``*`` with 0 removes all."""
    try:
        default = request.expires
        if request.contact_star:
            if default != 0:
                return RegisterPlan(400)
            return RegisterPlan(200, remove_all=True)
        contacts = request.contact
        cseq = request.cseq.number
    except SipError:
        return RegisterPlan(400)
    store: list[Binding] = []
    remove: list[str] = []
    for contact in contacts:
        expires = contact.expires if contact.expires is not None else default
        expires = 3600 if expires is None else expires
        uri = str(contact.uri)
        if expires == 0:
            remove.append(uri)
            continue
        if expires < min_expires:
            return RegisterPlan(423, min_expires=min_expires)
        expires = min(expires, max_expires)
        at = now + dt.timedelta(seconds=expires)
        store.append(Binding(trunk_id, uri, source, request.call_id, cseq, at))
    return RegisterPlan(200, tuple(store), tuple(remove))


class Registrar:
    """In-memory bindings per trunk, written through to ``sip_registrations``."""

    def __init__(self, pool: asyncpg.Pool, instance: str) -> None:
        self._pool = pool
        self._instance = instance
        self._bindings: dict[int, dict[str, Binding]] = {}

    async def load(self) -> int:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT trunk_id, contact, source, transport, call_id, cseq, expires_at"
                " FROM sip_registrations WHERE expires_at > now()"
            )
        for r in rows:
            host, _, port = r["source"].rpartition(":")
            source: Addr = (host.strip("[]"), int(port))
            if r["transport"] != "udp":
                source = StreamAddr(source[0], source[1], Transport(r["transport"].upper()))
            binding = Binding(
                r["trunk_id"], r["contact"], source, r["call_id"], r["cseq"], r["expires_at"]
            )
            self._bindings.setdefault(binding.trunk_id, {})[binding.contact] = binding
        return len(rows)

    async def apply(self, trunk_id: int, plan: RegisterPlan, user_agent: str | None) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if plan.remove_all:
                await conn.execute("DELETE FROM sip_registrations WHERE trunk_id = $1", trunk_id)
            if plan.remove:
                await conn.execute(
                    "DELETE FROM sip_registrations WHERE trunk_id = $1 AND contact = ANY($2)",
                    trunk_id, list(plan.remove),
                )  # fmt: skip
            await conn.executemany(
                "INSERT INTO sip_registrations (trunk_id, contact, source, transport, call_id,"
                " cseq, user_agent, instance, expires_at) VALUES ($1, $2, $3, $9, $4, $5,"
                " $6, $7, $8) ON CONFLICT (trunk_id, contact) DO UPDATE SET"
                " source = excluded.source, transport = excluded.transport,"
                " call_id = excluded.call_id, cseq = excluded.cseq,"
                " user_agent = excluded.user_agent, instance = excluded.instance,"
                " expires_at = excluded.expires_at",
                [
                    (b.trunk_id, b.contact, f"{b.source[0]}:{b.source[1]}", b.call_id, b.cseq,
                     user_agent, self._instance, b.expires_at,
                     transport_of(b.source).value.lower())
                    for b in plan.store
                ],
            )  # fmt: skip
        current = self._bindings.setdefault(trunk_id, {})
        if plan.remove_all:
            current.clear()
        for contact in plan.remove:
            current.pop(contact, None)
        for binding in plan.store:
            current[binding.contact] = binding

    def bindings(self, trunk_id: int, now: dt.datetime) -> list[Binding]:
        """Live bindings of a trunk, the most recently refreshed first."""
        live = [b for b in self._bindings.get(trunk_id, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: b.expires_at, reverse=True)
