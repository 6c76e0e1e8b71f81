"""A registry of dialogs for a UA core (RFC 3261 sections 12.2.2, 13.3.1.4), sans-I/O.

A UAS or B2BUA keeps every dialog it holds here, each with an ``owner`` (the
call it belongs to) and the address its peer is reached at. The table matches
in-dialog requests and 2xx retransmissions to their dialog (a request with a
To tag that matches nothing is answered 481 by the caller, 12.2.2), and drives
the 13.3.1.4 2xx retransmissions of every dialog from one timer queue:
``get_timer`` / ``handle_timer(now)`` / ``datagrams_to_send()`` /
``next_event()``, like the transaction endpoint.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from protocols.sip.dialog import AckTimeout, Dialog, DialogId, id_of_request, id_of_response
from protocols.sip.message import SipRequest, SipResponse
from protocols.sip.transaction import Addr

OwnerT = TypeVar("OwnerT")


@dataclass(slots=True)
class DialogEntry(Generic[OwnerT]):
    dialog: Dialog
    owner: OwnerT
    addr: Addr


@dataclass(frozen=True, slots=True)
class DialogAckTimeout(Generic[OwnerT]):
    """13.3.1.4: no ACK for our 2xx within 64*T1; the owner should send BYE."""

    owner: OwnerT
    timeout: AckTimeout


class DialogTable(Generic[OwnerT]):
    def __init__(self, max_dialogs: int = 200_000) -> None:
        self.max_dialogs = max_dialogs
        self._entries: dict[DialogId, DialogEntry[OwnerT]] = {}
        self._heap: list[tuple[float, int, DialogId]] = []
        self._seq = 0
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[DialogAckTimeout[OwnerT]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, dialog: Dialog, owner: OwnerT, addr: Addr) -> DialogEntry[OwnerT]:
        if len(self._entries) >= self.max_dialogs and dialog.id not in self._entries:
            raise OverflowError("dialog table full")
        entry = DialogEntry(dialog, owner, addr)
        self._entries[dialog.id] = entry
        self._schedule(dialog.id, dialog)
        return entry

    def remove(self, dialog_id: DialogId) -> None:
        self._entries.pop(dialog_id, None)

    def get(self, dialog_id: DialogId) -> DialogEntry[OwnerT] | None:
        return self._entries.get(dialog_id)

    def match_request(self, request: SipRequest) -> DialogEntry[OwnerT] | None:
        """The dialog an in-dialog request (To tag present) belongs to, or None (481)."""
        return self._entries.get(id_of_request(request))

    def match_response(self, response: SipResponse) -> DialogEntry[OwnerT] | None:
        """The dialog of a response to a request we sent (our tag is in From)."""
        return self._entries.get(id_of_response(response))

    # -- 2xx retransmission (13.3.1.4) ------------------------------------------------

    def start_2xx(self, dialog_id: DialogId, response: SipResponse, now: float) -> None:
        entry = self._entries.get(dialog_id)
        if entry is None:
            raise KeyError(dialog_id)
        entry.dialog.start_2xx(response, now)
        self._schedule(dialog_id, entry.dialog)

    def receive_ack(self, ack: SipRequest) -> DialogEntry[OwnerT] | None:
        """The dialog an ACK belongs to (its 2xx retransmission stopped), or None."""
        entry = self._entries.get(id_of_request(ack))
        if entry is not None:
            entry.dialog.receive_ack(ack)
        return entry

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, dialog_id = heap[0]
            entry = self._entries.get(dialog_id)
            if entry is not None and entry.dialog.get_timer() == deadline:
                return deadline
            heapq.heappop(heap)  # stale: the dialog was acknowledged, re-armed or removed
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, dialog_id = heapq.heappop(heap)
            entry = self._entries.get(dialog_id)
            if entry is None:
                continue
            dialog = entry.dialog
            deadline = dialog.get_timer()
            if deadline is None or deadline > now:
                continue
            dialog.handle_timer(now)
            for response in dialog.responses_to_send():
                self._out.append((response.serialize(), entry.addr))
            while (timeout := dialog.next_event()) is not None:
                self._events.append(DialogAckTimeout(entry.owner, timeout))
            self._schedule(dialog_id, dialog)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> DialogAckTimeout[OwnerT] | None:
        return self._events.popleft() if self._events else None

    def _schedule(self, dialog_id: DialogId, dialog: Dialog) -> None:
        deadline = dialog.get_timer()
        if deadline is None:
            return
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, dialog_id))
