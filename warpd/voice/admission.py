"""Admission of a new call: from the INVITE and the in-memory directory to a plan or a refusal.

Outbound (PBX -> carrier): the trunk's numbering rules, channel and CPS
limits, the account's balance, a route and a rate. Inbound (carrier ->
customer): the called number is a DID, whose trunk's registered contact (or its
single static address) is the one target, under the same channel limit.
``Admission`` keeps the counters these checks need (channels in use, CPS
buckets, charges not yet in the directory's balances); the checks themselves
are the pure functions of ``limits``, ``routes`` and ``rating``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from protocols.sip.message import SipRequest
from protocols.sip.transaction import Addr, transport_of
from warpd.billing.balances import Balances
from warpd.voice.cdr import Cdr
from warpd.voice.limits import CallLimits, TokenBucket, admit
from warpd.voice.rating import VoiceRate, best_rate, price_micros
from warpd.voice.routes import find_route, gateways_for
from warpd.voice.session_timer import SessionTimer, negotiate
from warpd.voice.trunks import Account, Directory, Gateway, Trunk, caller_id, normalise

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What admission decided: where to try, at which price (None: free, inbound)."""

    gateways: tuple[Gateway, ...]
    dst: str
    caller: str | None
    rate: VoiceRate | None
    max_forwards: int
    timer: SessionTimer | None = None
    record: bool = False  # the trunk's calls are recorded by RTPEngine


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    headers: Headers = ()


def _checks(invite: SipRequest, min_se: int) -> tuple[int, SessionTimer | None] | Refused:
    """Max-Forwards left and the session timer, or why the INVITE cannot be taken."""
    hops = _hops(invite)
    if isinstance(hops, Refused):
        return hops
    timer = negotiate(invite, min_se)
    if timer == 422:
        return Refused(422, (("Min-SE", str(min_se)),))
    if isinstance(timer, int):
        return Refused(timer)
    return hops, timer


def _hops(invite: SipRequest) -> int | Refused:
    if not invite.contact:
        return Refused(400)
    if not invite.body:
        return Refused(488)  # late offer: RTPEngine needs the SDP offer in the INVITE
    max_forwards = invite.max_forwards
    if max_forwards is not None and max_forwards <= 0:
        return Refused(483)
    return 70 if max_forwards is None else min(70, max_forwards - 1)


class Admission:
    def __init__(
        self,
        directory: Directory,
        channel_status: int,
        min_se: int = 90,
        balances: Balances | None = None,
    ) -> None:
        self.directory = directory
        self.balances = balances
        self.channel_status = channel_status
        self.min_se = min_se
        self.down: set[int] = set()  # gateways OPTIONS probing found dead
        self._channels: dict[int, int] = {}
        self._buckets: dict[int, TokenBucket] = {}
        self._unposted: dict[int, int] = {}
        self._turns = itertools.count()

    def set_directory(self, directory: Directory) -> None:
        self.directory = directory
        self._unposted.clear()

    def channels(self, trunk_id: int) -> int:
        return self._channels.get(trunk_id, 0)

    def taken(self, trunk_id: int) -> None:
        self._channels[trunk_id] = self._channels.get(trunk_id, 0) + 1

    def released(self, trunk_id: int, account_id: int | None, price: int) -> None:
        self._channels[trunk_id] = max(0, self._channels.get(trunk_id, 0) - 1)
        if account_id is not None and price:
            self._unposted[account_id] = self._unposted.get(account_id, 0) + price

    def _available(self, account: Account) -> int:
        """What ``account`` may still spend: the live view SMS shares (its messages not yet
        committed and the calls whose charge is not yet posted held), else, before that
        view has loaded the account, the directory's snapshot less the calls ended since."""
        balances = self.balances
        if balances is not None and balances.balance(account.id) is not None:
            return balances.available(account.id)
        return (
            account.balance_micros
            + account.credit_limit_micros
            - account.reserved_micros
            - self._unposted.get(account.id, 0)
        )

    def _limits(self, trunk: Trunk, now: float, available: int, minimum: int = 1) -> Refused | None:
        bucket = self._buckets.get(trunk.id)
        if bucket is None or bucket.rate != trunk.max_cps:
            bucket = TokenBucket.full(trunk.max_cps, max(1.0, trunk.max_cps), now)
        allowed, self._buckets[trunk.id] = bucket.take(now)
        verdict = admit(
            CallLimits(trunk.max_channels, self.channel_status),
            self.channels(trunk.id),
            allowed,
            bucket.wait_for_token(now),
            available,
            minimum_micros=minimum,
        )
        if verdict.allowed:
            return None
        retry = (("Retry-After", str(verdict.retry_after)),) if verdict.retry_after else ()
        return Refused(verdict.status, retry)

    def outbound(
        self, invite: SipRequest, trunk: Trunk, cdr: Cdr, now: float
    ) -> CallPlan | Refused:
        directory = self.directory
        checked = _checks(invite, self.min_se)
        if isinstance(checked, Refused):
            return checked
        hops, timer = checked
        account = directory.accounts.get(trunk.account_id)
        if account is None or not account.active:
            return Refused(403)
        cdr.currency = account.currency
        dst = normalise(cdr.dst_raw, trunk)
        if dst is None:
            return Refused(484)
        cdr.dst_e164 = dst
        cdr.src_e164 = normalise(cdr.src_raw, trunk)
        available = self._available(account)
        rate = best_rate(directory.rates.get(account.rate_plan_id or 0, ()), dst)
        # The cheapest answered call: its connect fee and first increment.
        minimum = 1 if rate is None else price_micros(rate, 1)
        refused = self._limits(trunk, now, available, minimum)
        if refused is not None:
            return refused
        route = find_route(directory, account.id, dst)
        if route is None:
            return Refused(404)
        if rate is None:
            return Refused(403)
        cdr.route_id = route.id
        gateways = gateways_for(directory, route, dst, turn=next(self._turns), down=self.down)
        if not gateways:
            return Refused(503)
        caller = caller_id(directory, trunk, cdr.src_e164)
        return CallPlan(tuple(gateways), dst, caller, rate, hops, timer, trunk.record_calls)

    def inbound(
        self,
        invite: SipRequest,
        source: Gateway,
        cdr: Cdr,
        now: float,
        targets: Callable[[Trunk], list[Addr]],
    ) -> CallPlan | Refused:
        directory = self.directory
        checked = _checks(invite, self.min_se)
        if isinstance(checked, Refused):
            return checked
        hops, timer = checked
        dst = cdr.dst_raw.lstrip("+")
        did = directory.dids.get(dst)
        trunk = None if did is None or did.trunk_id is None else directory.trunk(did.trunk_id)
        if did is None or trunk is None:
            return Refused(404)
        cdr.direction, cdr.dst_e164 = "inbound", dst
        cdr.account_id, cdr.trunk_id = did.account_id, trunk.id
        src = cdr.src_raw.lstrip("+")
        cdr.src_e164 = src if src.isdigit() else None
        refused = self._limits(trunk, now, available=1)  # inbound calls are not charged
        if refused is not None:
            return refused
        addrs = targets(trunk)
        if not addrs:
            return Refused(480)  # the PBX is not registered
        gateways = tuple(
            Gateway(source.id, f"trunk {trunk.name}", a[0], a[1], transport_of(a).value.lower())
            for a in addrs
        )
        return CallPlan(gateways, dst, cdr.src_e164, None, hops, timer, trunk.record_calls)


def static_targets(trunk: Trunk) -> list[Addr]:
    """An IP trunk's one host (a /32 or /128), at the SIP port, when nothing registered."""
    hosts: list[Addr] = [
        (str(n.network_address), 5060) for n in trunk.networks if n.prefixlen == n.max_prefixlen
    ]
    return hosts[:1]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
