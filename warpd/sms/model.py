"""What the SMS core hands between acceptance, the dispatcher and receipts.

``Submission`` is one message as a customer gave it, whichever channel it
came by; ``Accepted`` and ``Refused`` are the only two answers it gets.
``Outbound`` is the dispatcher's working copy of an accepted message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from protocols.smpp.constants import CommandStatus
from warpd.errors import WarpdError

# SMPP 3.4 section 5.1.3 leaves 0x400-0x4FF to the SMSC vendor: warpd answers
# these where no standard status says what happened (README "SMPP statuses").
STATUS_OPTED_OUT = 0x400
STATUS_INSUFFICIENT_FUNDS = 0x401
STATUS_ACCOUNT_SUSPENDED = 0x402

# code -> (SMPP command_status, HTTP status). The codes are a stable API.
REFUSALS: dict[str, tuple[int, int]] = {
    "invalid_destination": (CommandStatus.ESME_RINVDSTADR, 400),
    "invalid_source": (CommandStatus.ESME_RINVSRCADR, 400),
    "invalid_message": (CommandStatus.ESME_RINVMSGLEN, 400),
    "invalid_expiry": (CommandStatus.ESME_RINVEXPIRY, 400),
    "invalid_schedule": (CommandStatus.ESME_RINVSCHED, 400),
    "no_route": (CommandStatus.ESME_RSUBMITFAIL, 422),
    "no_rate": (CommandStatus.ESME_RSUBMITFAIL, 422),
    "opted_out": (STATUS_OPTED_OUT, 422),
    "insufficient_funds": (STATUS_INSUFFICIENT_FUNDS, 402),
    "account_suspended": (STATUS_ACCOUNT_SUSPENDED, 403),
    "throttled": (CommandStatus.ESME_RTHROTTLED, 429),
    "queue_full": (CommandStatus.ESME_RMSGQFUL, 503),
    # PostgreSQL cannot commit: retry later, and never an id for it.
    "unavailable": (CommandStatus.ESME_RMSGQFUL, 503),
    # The account already has a message with this client reference.
    "duplicate": (CommandStatus.ESME_RSUBMITFAIL, 409),
}


class Refused(WarpdError):
    """A message not accepted: a stable ``code``, a reason, and both protocols' status."""

    def __init__(self, code: str, message: str, *, command_status: int | None = None) -> None:
        super().__init__(message)
        status, http = REFUSALS[code]
        self.code = code
        self.message = message
        self.command_status = status if command_status is None else command_status
        self.http_status = http


@dataclass(frozen=True, slots=True)
class Submission:
    """One MT message as the customer gave it (SMPP submit_sm/data_sm or HTTP).

    ``body`` is the encoded short message (its UDH included when esm_class
    says UDHI) or the whole message_payload; ``tlvs`` are TLVs relayed
    upstream as they came (SAR values of a customer-segmented part).
    """

    account_id: int
    channel: str
    source_addr: str
    destination_addr: str
    body: bytes
    data_coding: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    source_ton: int = 5
    source_npi: int = 0
    dest_ton: int = 1
    dest_npi: int = 1
    tlvs: bytes = b""
    smpp_user_id: int | None = None
    api_key_id: int | None = None
    client_ref: str | None = None
    callback_url: str | None = None
    schedule_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: uuid.UUID
    parts: int
    price_micros: int
    currency: str


@dataclass(slots=True, eq=False)
class Outbound:
    """An accepted message on its way upstream.

    Mutable on purpose: the dispatcher moves it along its candidate
    connectors and counts attempts, and a copy per step would cost the hot
    path for nothing (only the dispatcher's task touches it).
    """

    id: uuid.UUID
    account_id: int
    source_addr: str
    source_ton: int
    source_npi: int
    destination_addr: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    body: bytes
    tlvs: bytes
    #: submit_sm PDUs upstream; each is settled by its own receipt.
    parts: int
    candidates: tuple[int, ...]
    expires_at: datetime
    #: How a long body is split upstream (the first candidate's split_mode), so
    #: every attempt sends the same parts.
    split_mode: str = "udh8"
    candidate: int = 0
    attempts: int = 0
    #: Part numbers still to be sent upstream; None: all of them.
    pending_parts: tuple[int, ...] | None = None
    #: Part numbers the carrier accepted, with its id for each.
    carrier_ids: dict[int, str] = field(default_factory=dict)
    #: Every part accepted upstream, or the message ended without being sent.
    finished: bool = False
    #: The concatenation reference once the message has been split for a connector.
    concat_ref: int | None = None

    @property
    def connector_id(self) -> int:
        return self.candidates[self.candidate]
