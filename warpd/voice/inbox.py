"""What a call's task reads: its events, and the mailbox they wait in.

SIP events reach a call already matched to it (``b2bua``); ``MediaLost`` is
warpd's own. The mailbox is a list and one waiter rather than an
``asyncio.Queue`` with an ``asyncio.timeout`` per wait: a call waits on every
step, and the queue cost ~2 KB per call and a timer context per event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from protocols.sip.dialogs import DialogAckTimeout
from protocols.sip.errors import SipError
from protocols.sip.message import SipMessage
from protocols.sip.transaction import (
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionTimeout,
)
from warpd.voice.legs import Side


@dataclass(frozen=True, slots=True)
class MediaLost:
    """The RTPEngine instance holding this call's media stopped answering."""

    instance: str


CallEvent = RequestReceived | ResponseReceived | TransactionTimeout | CancelReceived | MediaLost
Inbox = tuple[Side, CallEvent | DialogAckTimeout[object]]


class Mailbox:
    """A call's inbox: a list and one waiter. An ``asyncio.Queue`` plus
    ``asyncio.timeout`` per wait cost ~2 KB per call and a timer context per event."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        # A list, not a deque: a call's inbox holds an event or two, and an empty
        # deque is ~600 bytes of every active call.
        self._items: list[Inbox] = []
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Inbox) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, timeout: float) -> Inbox | None:
        """The next item, or None after ``timeout`` seconds without one."""
        if not self._items:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            handle = loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiter = None
        return self._items.pop(0) if self._items else None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def q850_of(message: SipMessage) -> int | None:
    """The Q.850 cause a Reason header (RFC 3326) gives, if any."""
    try:
        return next((r.cause for r in message.reason if r.protocol.upper() == "Q.850"), None)
    except SipError:
        return None
