"""The one acceptance path, shared by SMPP and HTTP (ARCHITECTURE.md "MT").

validate -> route -> price -> hold the charge -> group commit -> id. Everything
before the commit is a pure look-up in memory (the catalog, the router, the
tariffs, the balances); the commit is the only wait, and it is shared by
every message that arrived meanwhile. A refusal raises ``Refused`` with a
stable code and both protocols' status before anything is queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from protocols.smpp.errors import SmppError
from warpd.billing.balances import Balances
from warpd.billing.tariff import sms_cost, sms_rate
from warpd.config.schema import SmsConfig
from warpd.errors import NoRoute
from warpd.routing.mt import route_mt
from warpd.routing.numbers import InvalidNumber, normalize_msisdn
from warpd.routing.table import network_of
from warpd.sms.catalog import Catalog
from warpd.sms.commit import GroupCommit, Pending, new_message_id
from warpd.sms.model import Accepted, Outbound, Refused, Submission
from warpd.sms.parts import plan
from warpd.sms.stats import SmsStats


class Acceptance:
    def __init__(
        self,
        commit: GroupCommit,
        balances: Balances,
        stats: SmsStats,
        config: SmsConfig,
        *,
        instance_id: str,
        lease: timedelta,
    ) -> None:
        self.catalog = Catalog()
        self.opt_outs: set[tuple[int, str]] = set()
        #: Set by the dispatcher: may this instance keep one more message for a connector?
        self.has_room: Callable[[int], bool] = lambda connector_id: True
        #: Set by the dispatcher: seconds the oldest message waiting where a message with
        #: these candidates would queue has waited (sms.max_queue_age).
        self.route_age: Callable[[Sequence[int]], float] = lambda candidates: 0.0
        #: Set by the dispatcher: told of each message left to wait in the table, by the
        #: future its commit resolves.
        self.tabled: Callable[[asyncio.Future[Accepted]], None] = lambda future: None
        #: connector_id -> recent delivery ratio (warpd/sms/quality.py), for least cost.
        self.quality: Mapping[int, float] = {}
        self._commit = commit
        self._balances = balances
        self._stats = stats
        self._config = config
        self._instance = instance_id
        self._lease = lease
        self._validity = timedelta(seconds=config.default_validity)
        self._turn = 0

    def submit_nowait(self, sub: Submission) -> asyncio.Future[Accepted]:
        """Queue ``sub`` for the next commit; the future resolves once it is committed.

        Raises Refused at once for what policy refuses; the future fails with
        Refused when the commit does (insufficient funds by the database's
        count, PostgreSQL unavailable).
        """
        try:
            return self._accept(sub)
        except Refused as refusal:
            self._stats.refused[sub.account_id, refusal.code] += 1
            raise

    def _accept(self, sub: Submission) -> asyncio.Future[Accepted]:
        now = datetime.now(UTC)
        catalog = self.catalog
        account = catalog.accounts.get(sub.account_id)
        if account is None or account.status != "active":
            raise Refused("account_suspended", "the account is not active")
        try:
            destination = normalize_msisdn(sub.destination_addr, sub.dest_ton, sub.dest_npi)
        except InvalidNumber as exc:
            raise Refused("invalid_destination", str(exc)) from None
        if not sub.source_addr:
            raise Refused("invalid_source", "source_addr is empty")
        if (sub.account_id, destination) in self.opt_outs:
            raise Refused("opted_out", f"{destination} opted out of this account's messages")
        expires_at = sub.expires_at or now + self._validity
        if expires_at <= now:
            raise Refused("invalid_expiry", "the validity period has already ended")
        if sub.schedule_at is not None and sub.schedule_at >= expires_at:
            raise Refused("invalid_schedule", "scheduled after the message expires")
        mcc_mnc = network_of(catalog.routing, destination)
        self._turn += 1
        try:
            decision = route_mt(
                catalog.routing,
                account_id=sub.account_id,
                destination=destination,
                source=sub.source_addr,
                mcc_mnc=mcc_mnc,
                quality=self.quality,
                turn=self._turn,
                at=now,
            )
        except NoRoute as exc:
            raise Refused("no_route", str(exc)) from None
        max_age = self._config.max_queue_age
        if max_age and self.route_age(decision.candidates) > max_age:
            # Back-pressure, not delay: the sender may retry later or send elsewhere.
            raise Refused(
                "queue_full", f"messages on this route have waited over {max_age:g} s to be sent"
            )
        if account.rate_plan_id is None:
            raise Refused("no_rate", "the account has no rate plan")
        rate = sms_rate(
            catalog.tariffs,
            rate_plan_id=account.rate_plan_id,
            msisdn=destination,
            mcc_mnc=mcc_mnc,
            at=now,
        )
        if rate is None:
            raise Refused("no_rate", f"no rate for {destination} in the account's plan")
        connector_id = decision.candidates[0]
        connector = catalog.connectors.get(connector_id)
        split_mode = connector.split_mode if connector is not None else "udh8"
        try:
            parts = plan(sub.body, sub.data_coding, sub.esm_class, sub.tlvs, split_mode)
        except SmppError as exc:
            raise Refused("invalid_message", str(exc), command_status=exc.command_status) from None
        price = rate.price_micros * parts.billed
        # What the first carrier charges us, for the CDR's margin (price - cost).
        cost = sms_cost(
            catalog.routing, connector_id=connector_id, msisdn=destination, mcc_mnc=mcc_mnc, at=now
        )
        if not self._balances.hold(sub.account_id, price):
            raise Refused("insufficient_funds", "balance and credit limit do not cover the price")
        message_id = new_message_id()
        outbound: Outbound | None = None
        if sub.schedule_at is None and self.has_room(connector_id):
            outbound = Outbound(
                message_id,
                sub.account_id,
                sub.source_addr,
                sub.source_ton,
                sub.source_npi,
                destination,
                sub.dest_ton,
                sub.dest_npi,
                sub.esm_class,
                sub.data_coding,
                sub.registered_delivery,
                sub.body,
                sub.tlvs,
                parts.pdus,
                decision.candidates,
                expires_at,
                split_mode,
            )
        claimed = outbound is not None
        record = (
            message_id,
            sub.account_id,
            sub.channel,
            sub.smpp_user_id,
            sub.api_key_id,
            sub.client_ref,
            sub.source_addr,
            sub.source_ton,
            sub.source_npi,
            destination,
            sub.dest_ton,
            sub.dest_npi,
            mcc_mnc,
            sub.esm_class,
            sub.data_coding,
            sub.registered_delivery,
            sub.body,
            sub.tlvs,
            parts.pdus,
            decision.route_id,
            connector_id,
            self._instance if claimed else None,
            now + self._lease if claimed else None,
            price,
            account.currency,
            sub.schedule_at,
            sub.schedule_at or now,
            expires_at,
            sub.callback_url,
            (cost or 0) * parts.billed,
        )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        accepted = Accepted(message_id, parts.billed, price, account.currency)
        reserve = account.charge_mode == "on_delivery"
        pending = Pending(record, accepted, sub.account_id, outbound, future, loop.time(), reserve)
        try:
            self._commit.add(pending)
        except Refused:
            self._balances.release(sub.account_id, price)
            raise
        if not claimed:
            self.tabled(future)
        return future

    async def submit(self, sub: Submission) -> Accepted:
        return await self.submit_nowait(sub)

    async def submit_many(self, subs: Sequence[Submission]) -> list[Accepted | Refused]:
        """Each message's answer, in order; they share commits with everything else."""
        futures: list[asyncio.Future[Accepted] | Refused] = []
        for sub in subs:
            try:
                futures.append(self.submit_nowait(sub))
            except Refused as refusal:
                futures.append(refusal)
        results: list[Accepted | Refused] = []
        for item in futures:
            if isinstance(item, Refused):
                results.append(item)
                continue
            try:
                results.append(await item)
            except Refused as refusal:
                results.append(refusal)
        return results
