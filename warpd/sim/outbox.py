"""Receipts and MO on their way to the ESME: one queue, any bound receiver, retried.

A carrier delivers a receipt or an MO to any RX/TRX bind of the system_id
(smpp.md section 3) and keeps it until one acknowledges it. So does this: a
deliver_sm that is not acknowledged (its link closed, it timed out, or the
ESME answered a temporary error) goes back to the queue, and the queue drains
round-robin into the receivers' windows whenever the simulator flushes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.flags import is_receipt
from protocols.smpp.pdu import DeliverSm, Pdu
from warpd.sim.stats import SmscStats

if TYPE_CHECKING:
    from warpd.sim.smsc_link import SmscLink

#: deliver_sm_resp statuses that mean "try again later", not "never".
TEMPORARY = frozenset(
    {CommandStatus.ESME_RX_T_APPN, CommandStatus.ESME_RMSGQFUL, CommandStatus.ESME_RTHROTTLED}
)
RETRY_AFTER = 1.0  # seconds before a temporarily refused deliver_sm is queued again


@dataclass(slots=True)
class Delivery:
    """A receipt or MO deliver_sm; ``done`` (MO sent on command) completes on its ack."""

    pdu: DeliverSm
    done: asyncio.Future[None] | None = None
    attempts: int = 0


class Outbox:
    def __init__(
        self, stats: SmscStats, later: Callable[[float, Callable[[], None]], None]
    ) -> None:
        self._stats = stats
        self._later = later  # run a callback after a delay (the simulator's timer heap)
        self._queue: deque[Delivery] = deque()
        self._receivers: list[SmscLink] = []
        self._turn = 0  # round-robin start among receivers

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, delivery: Delivery) -> None:
        self._queue.append(delivery)

    def receiver_bound(self, link: SmscLink) -> None:
        self._receivers.append(link)

    def link_closed(self, link: SmscLink, in_flight: list[Delivery]) -> None:
        if link in self._receivers:
            self._receivers.remove(link)
        # What it had not acknowledged goes out first, in its order, to the next receiver.
        self._queue.extendleft(reversed(in_flight))

    def dispatch(self, now: float, touched: set[SmscLink]) -> None:
        """Fill receivers' windows from the queue; every receiver written to joins ``touched``."""
        queue = self._queue
        receivers = self._receivers
        count = len(receivers)
        if not queue or not count:
            return
        start = self._turn = (self._turn + 1) % count
        stats = self._stats
        for i in range(count):
            link = receivers[(start + i) % count]
            free = link.session.window_free
            if free <= 0:
                continue
            for _ in range(min(free, len(queue))):
                delivery = queue.popleft()
                link.deliver(delivery, now)
                if delivery.attempts:
                    stats.receipts_resent += 1
                elif is_receipt(delivery.pdu.esm_class):
                    stats.receipts_sent += 1
                delivery.attempts += 1
            touched.add(link)
            if not queue:
                return

    def acknowledged(self, delivery: Delivery, response: Pdu) -> None:
        status = response.command_status
        stats = self._stats
        done = delivery.done
        if status == 0:
            if is_receipt(delivery.pdu.esm_class):
                stats.receipts_acked += 1
            else:
                stats.mo_acked += 1
            if done is not None and not done.done():
                done.set_result(None)
        elif status in TEMPORARY:
            self._later(RETRY_AFTER, lambda: self._queue.append(delivery))
        else:
            stats.receipts_refused += 1
            if done is not None and not done.done():
                done.set_exception(SmppError(status, "deliver_sm refused"))

    def timed_out(self, delivery: Delivery) -> None:
        self._queue.append(delivery)

    def cancel_waiters(self) -> None:
        for delivery in self._queue:
            if delivery.done is not None and not delivery.done.done():
                delivery.done.cancel()
