"""What a customer is owed when a message reaches its final state.

One event JSON per receipt, the same for an SMPP bind, a webhook and the
event stream (README "Receipt events"); the SMPP bind also gets what it needs
to write an Appendix B deliver_sm without looking the message up again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocols.smpp.flags import esm_udhi, receipt_wanted
from protocols.smpp.text import TextError, decode_text
from warpd.sms.catalog import Catalog

_TEXT_CHARS = 20


@dataclass(frozen=True, slots=True)
class Finished:
    """A message row just made final."""

    id: uuid.UUID
    account_id: int
    channel: str
    smpp_user_id: int | None
    registered_delivery: int
    state: str
    error_code: int | None
    parts: int
    source_addr: str
    source_ton: int
    source_npi: int
    destination_addr: str
    dest_ton: int
    dest_npi: int
    text: str
    client_ref: str | None
    callback_url: str | None
    created_at: datetime
    done_at: datetime

    @classmethod
    def from_record(cls, row: Any) -> Finished:
        """From a ``messages`` row (asyncpg Record or mapping)."""
        return cls(
            row["id"],
            row["account_id"],
            row["channel"],
            row["smpp_user_id"],
            row["registered_delivery"],
            row["state"],
            row["error_code"],
            row["parts"],
            row["source_addr"],
            row["source_ton"],
            row["source_npi"],
            row["destination_addr"],
            row["dest_ton"],
            row["dest_npi"],
            _first_chars(row["body"], row["data_coding"], row["esm_class"]),
            row["client_ref"],
            row["callback_url"],
            row["created_at"],
            row["done_at"],
        )

    @property
    def delivered(self) -> bool:
        return self.state == "delivered"


@dataclass(frozen=True, slots=True)
class Target:
    via: str
    smpp_user_id: int | None
    webhook_id: int | None
    url: str | None
    payload: dict[str, Any]


def receipt_event(done: Finished) -> dict[str, Any]:
    return {
        "type": "dlr",
        "message_id": str(done.id),
        "account_id": done.account_id,
        "state": done.state,
        "parts": done.parts,
        "error_code": done.error_code or 0,
        "client_ref": done.client_ref,
        "to": done.destination_addr,
        "from": done.source_addr,
        "submitted_at": done.created_at.isoformat(),
        "done_at": done.done_at.isoformat(),
    }


def deliveries_for(done: Finished, catalog: Catalog) -> Iterator[Target]:
    """Where this final state goes: the submitting SMPP user when its
    registered_delivery asked, the message's callback URL, and every webhook
    of the account that subscribed to receipts."""
    event = receipt_event(done)
    if (
        done.channel == "smpp"
        and done.smpp_user_id is not None
        and receipt_wanted(done.registered_delivery, done.delivered)
    ):
        smpp = {
            **event,
            "smpp": {
                # A receipt travels back: its source is the handset.
                "source_addr": done.destination_addr,
                "source_ton": done.dest_ton,
                "source_npi": done.dest_npi,
                "destination_addr": done.source_addr,
                "dest_ton": done.source_ton,
                "dest_npi": done.source_npi,
                "text": done.text,
            },
        }
        yield Target("smpp", done.smpp_user_id, None, None, smpp)
    if done.callback_url:
        yield Target("webhook", None, None, done.callback_url, event)
    for hook in catalog.webhooks.get(done.account_id, ()):
        if "dlr" in hook.events:
            yield Target("webhook", None, hook.id, None, event)


def _first_chars(body: bytes, data_coding: int, esm_class: int) -> str:
    """Appendix B's ``text:`` field: the first 20 characters, UDH left out."""
    if esm_udhi(esm_class) and body:
        body = body[1 + body[0] :]
    try:
        text = decode_text(body[: _TEXT_CHARS * 2], data_coding)
    except TextError:  # the cut fell inside a character; the field is informative only
        return ""
    return "" if isinstance(text, bytes) else text[:_TEXT_CHARS]
