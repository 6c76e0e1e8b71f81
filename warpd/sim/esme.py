"""``warpd sim-esme``: an asyncio ESME load generator with receipt tracking (issue 8).

N binds share one stream of parts: each bind takes parts while its window
has room (and, with ``rate``, while the offered rate allows), so the load is
open loop up to ``binds x window`` in flight. ESME_RTHROTTLED and
ESME_RMSGQFUL pause that bind with a doubling back-off and resubmit the part;
a lost connection resubmits what was in flight after reconnecting, for up to
``reconnect_for`` seconds. Receipts are matched to the ids the
submit_sm_resp gave, also when a receipt overtakes its response.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
from collections import Counter, deque
from typing import Any

import structlog

from protocols.smpp.constants import CommandStatus
from protocols.smpp.dlr import STAT_BY_STATE, ReceiptError, parse_receipt
from protocols.smpp.flags import is_receipt
from protocols.smpp.pdu import DeliverSm, Pdu
from protocols.smpp.session_events import SessionConfig
from protocols.smpp.tlv import Tag, tlv_int, tlv_str
from warpd.sim.carrier import status_name
from warpd.sim.esme_link import EsmeLink, Sent
from warpd.sim.esme_plan import EsmeConfig, EsmeSummary, Plan
from warpd.sim.stats import EventLog, percentile

log = structlog.get_logger(__name__)

_RETRY = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
_STATS = {int(state): stat for state, stat in STAT_BY_STATE.items()}
_UNBIND_TIMEOUT = 2.0
_RECONNECT_BACKOFF = (0.1, 2.0)
_FIRST_BIND_WITHIN = 1.0


class EsmeLoad:
    """One run of the load generator; ``await EsmeLoad(config).run()`` gives its summary."""

    def __init__(self, config: EsmeConfig) -> None:
        self.config = config
        self._plan = Plan(config)
        self._loop = asyncio.get_running_loop()
        self._session_config = SessionConfig(
            window=config.window,
            response_timeout=config.response_timeout,
            enquire_link_interval=config.enquire_link_interval,
            session_init_timeout=None,
        )
        self._ssl: ssl.SSLContext | None = None
        if config.tls:
            self._ssl = ssl.create_default_context()
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE
        self._planned = 0  # parts of the messages generated so far
        self._links: list[EsmeLink] = []
        self._senders: list[EsmeLink] = []  # bound links that transmit
        self._dirty: set[EsmeLink] = set()
        self._retry: deque[Sent] = deque()
        self._fresh: deque[Sent] = deque()
        self._next_message = 0
        # Messages to offer: count, or (with a duration) until the time is up.
        self._count = config.count if config.duration is None else sys.maxsize
        self._issued = 0
        self._settled = 0
        self._awaiting: dict[str, Sent] = {}  # message_id -> part, until its receipt
        self._early: dict[str, float] = {}  # receipts whose response has not come (yet)
        self._receipted: set[str] = set()
        self._statuses: Counter[str] = Counter()
        self._stats: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._resp_latency: list[float] = []
        self._receipt_latency: list[float] = []
        self._errors: list[str] = []
        self._wake: asyncio.TimerHandle | None = None
        self._wake_at = 0.0
        self._receipt_deadline: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = EventLog(config.log) if config.log is not None else None
        self._started = self._finished = 0.0  # perf_counter: what the summary reports
        self._offer_start = 0.0  # loop time: what the offered rate counts from
        #: perf_counter at the start of the batch being handled (latency stamps).
        self.stamp = 0.0

    async def run(self) -> EsmeSummary:
        self._started = self.stamp = time.perf_counter()
        self._offer_start = self._loop.time()
        kinds = [self.config.bind] * self.config.binds
        if self.config.bind == "transmitter":
            kinds.append("receiver")
        # A first bind fails fast (a wrong address); a lost one waits for a restart.
        give_up = self._loop.time() + _FIRST_BIND_WITHIN
        for kind in kinds:
            self._spawn(self._connect(kind, give_up))
        if self._count == 0:
            self._loop.call_later(self.config.hold, self._finish)
        try:
            await self._done
        finally:
            await self._close()
        return self._summary()

    # -- connections -----------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, kind: str, give_up: float, *, pause: bool = False) -> None:
        """Connect (and so bind) a ``kind`` link, retrying with back-off until ``give_up``.

        ``pause``: wait one back-off step first, so a peer that accepts and
        closes at once is not hammered.
        """
        config = self.config
        delay = _RECONNECT_BACKOFF[0]
        if pause:
            await asyncio.sleep(delay)
        while not self._done.done():
            try:
                _, link = await self._loop.create_connection(
                    lambda: EsmeLink(self, kind, self._session_config, give_up),
                    config.host,
                    config.port,
                    ssl=self._ssl,
                )
            except OSError as exc:
                if self._loop.time() + delay > give_up:
                    self.fail(f"cannot connect to {config.host}:{config.port}: {exc}")
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_BACKOFF[1])
                continue
            self._links.append(link)
            return

    def link_bound(self, link: EsmeLink) -> None:
        if link.transmits:
            self._senders.append(link)

    def link_closed(self, link: EsmeLink, reason: str, lost: list[Sent]) -> None:
        if link in self._senders:
            self._senders.remove(link)
        if link in self._links:
            self._links.remove(link)
        if self._done.done():
            return
        self._retry.extendleft(reversed(lost))
        self._counts["resubmitted"] += len(lost)
        if link.refused is not None:
            why = status_name(link.refused) if link.refused else "generic_nack"
            self.fail(f"{link.kind} bind refused: {why}")
            return
        now = self._loop.time()
        give_up = now + self.config.reconnect_for if link.was_bound else link.give_up
        if now >= give_up:
            self.fail(f"{link.kind} bind to {self.config.host}:{self.config.port} lost: {reason}")
            return
        log.info("sim_esme_reconnecting", kind=link.kind, reason=reason)
        self._counts["reconnects"] += 1
        self._spawn(self._connect(link.kind, give_up, pause=True))

    # -- sending ---------------------------------------------------------------

    def mark(self, link: EsmeLink) -> None:
        self._dirty.add(link)

    def flush(self, now: float) -> None:
        """Fill every window with room, then write each touched bind once."""
        if not self._done.done():
            self._fill(now)
        for link in self._dirty:
            link.flush()
        self._dirty.clear()

    def _fill(self, now: float) -> None:
        self.stamp = time.perf_counter()
        rate = self.config.rate
        for link in self._senders:
            if link.paused_until > now:
                self._wake_up(link.paused_until)
                continue
            free = link.session.window_free
            if free > 0:
                self._dirty.add(link)
            while free > 0:
                if rate is not None and self._issued >= (now - self._offer_start) * rate + 1:
                    self._wake_up(self._offer_start + self._issued / rate)
                    return
                sent = self._next_part()
                if sent is None:
                    return
                link.submit(sent, now)
                self._issued += 1
                free -= 1

    def _next_part(self) -> Sent | None:
        if self._retry:
            return self._retry.popleft()
        if not self._fresh:
            index = self._next_message
            if index >= self._count:
                return None
            duration = self.config.duration
            if duration is not None and self._loop.time() >= self._offer_start + duration:
                self._count = index  # time is up: what is in flight still settles
                self._check_done()
                return None
            self._next_message = index + 1
            parts = self._plan.parts(index)
            self._planned += len(parts)
            self._fresh.extend(Sent(index, part, pdu) for part, pdu in enumerate(parts))
        return self._fresh.popleft()

    def _wake_up(self, when: float) -> None:
        if self._wake is not None:
            if self._wake_at <= when:
                return
            self._wake.cancel()
        self._wake_at = when
        self._wake = self._loop.call_at(when, self._on_wake)

    def _on_wake(self) -> None:
        self._wake = None
        self.flush(max(self._loop.time(), self._wake_at))

    # -- what comes back -------------------------------------------------------

    def on_response(self, link: EsmeLink, sent: Sent, response: Pdu, now: float) -> None:
        status = response.command_status
        name = status_name(status)
        self._statuses[name] += 1
        message_id: str = getattr(response, "message_id", "")
        self._write_log(
            "resp",
            message=sent.message,
            part=sent.part,
            destination=sent.pdu.destination_addr,
            id=message_id,
            status=name,
        )
        if status in _RETRY:
            self._counts["resubmitted"] += 1
            self._wake_up(link.throttled(now))
            self._retry.appendleft(sent)
            return
        self._resp_latency.append(self.stamp - sent.at)
        self._settled += 1
        if status == 0:
            link.accepted()
            if self.config.receipts:
                early = self._early.pop(message_id, None)
                if early is None:
                    self._awaiting[message_id] = sent
                else:
                    self._counts["early_receipts"] += 1
                    self._matched(message_id, early - sent.at)
        self._check_done()

    def on_timeout(self, sent: Sent) -> None:
        self._counts["timeouts"] += 1
        self._settled += 1
        self._write_log("timeout", message=sent.message, part=sent.part)
        self._check_done()

    def on_deliver(self, pdu: DeliverSm, now: float) -> None:
        if not is_receipt(pdu.esm_class):
            self._counts["mo"] += 1
            return
        message_id = tlv_str(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID)
        state = tlv_int(pdu.tlvs, Tag.MESSAGE_STATE)
        stat = _STATS.get(state) if state is not None else None
        if message_id is None or stat is None:
            try:
                receipt = parse_receipt(pdu.short_message)
            except ReceiptError:
                receipt = None
            message_id = message_id or (receipt.message_id if receipt else "")
            stat = stat or (receipt.stat if receipt else None) or "UNKNOWN"
        self._counts["receipts"] += 1
        self._stats[stat] += 1
        self._write_log("receipt", id=message_id, stat=stat)
        sent = self._awaiting.pop(message_id, None)
        if sent is not None:
            self._matched(message_id, self.stamp - sent.at)
            self._check_done()
        elif message_id in self._receipted:
            self._counts["duplicate_receipts"] += 1
        else:
            self._early[message_id] = self.stamp

    def _matched(self, message_id: str, latency: float) -> None:
        self._counts["matched"] += 1
        self._receipted.add(message_id)
        self._receipt_latency.append(latency)

    def _check_done(self) -> None:
        if (
            self._next_message < self._count
            or self._fresh
            or self._settled < self._planned
            or self._done.done()
        ):
            return
        if not self._awaiting:
            self._finish()
        elif self._receipt_deadline is None:
            self._receipt_deadline = self._loop.call_later(
                self.config.receipt_timeout, self._finish
            )

    def fail(self, error: str) -> None:
        self._errors.append(error)
        self._finish()
        log.warning("sim_esme_failed", error=error)

    def _finish(self) -> None:
        if not self._done.done():
            self._finished = time.perf_counter()
            self._done.set_result(None)

    # -- the end ---------------------------------------------------------------

    async def _close(self) -> None:
        for handle in (self._wake, self._receipt_deadline):
            if handle is not None:
                handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        links = list(self._links)
        for link in links:
            link.unbind()
        waiting = [link.closed for link in links if not link.closed.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=_UNBIND_TIMEOUT)
        for link in links:
            link.close()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._log is not None:
            self._log.close()

    def _summary(self) -> EsmeSummary:
        elapsed = max(self._finished - self._started, 1e-9)
        resp = sorted(self._resp_latency)
        receipt = sorted(self._receipt_latency)
        counts = self._counts
        config = self.config

        def ms(values: list[float], fraction: float) -> float | None:
            value = percentile(values, fraction)
            return None if value is None else round(value * 1000, 3)

        return EsmeSummary(
            messages=self._next_message,
            parts=self._planned,
            submitted=self._issued,
            resubmitted=counts["resubmitted"],
            responses_by_status=dict(self._statuses),
            timeouts=counts["timeouts"],
            receipts_expected=config.receipts,
            receipts=counts["receipts"],
            receipts_by_stat=dict(self._stats),
            receipt_ids_matched=counts["matched"],
            unmatched_receipts=len(self._early),
            duplicate_receipts=counts["duplicate_receipts"],
            receipts_before_response=counts["early_receipts"],
            receipts_missing=len(self._awaiting) if config.receipts else 0,
            mo_received=counts["mo"],
            reconnects=counts["reconnects"],
            submit_to_resp_p50_ms=ms(resp, 0.5),
            submit_to_resp_p99_ms=ms(resp, 0.99),
            submit_to_receipt_p50_ms=ms(receipt, 0.5),
            submit_to_receipt_p99_ms=ms(receipt, 0.99),
            elapsed_s=round(elapsed, 3),
            rate=round(len(resp) / elapsed, 1),
            errors=tuple(self._errors),
        )

    def _write_log(self, kind: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.write({"kind": kind, **fields})


async def run_esme(config: EsmeConfig) -> EsmeSummary:
    """Run the load generator once and return its summary."""
    return await EsmeLoad(config).run()
