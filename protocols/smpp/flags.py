"""esm_class and registered_delivery tests for the per-message paths (SMPP 3.4 5.2.12, 5.2.17).

``EsmClass`` and ``RegisteredDelivery`` (constants.py) name the bits for
readers; an ``IntFlag`` operator builds a new flag object on every call, so
code that looks at every message tests plain ints with these instead.
"""

from __future__ import annotations

#: esm_class bits 7-6: GSM network features.
ESM_CLASS_UDHI = 0x40
ESM_CLASS_REPLY_PATH = 0x80
#: esm_class bits 1-0: messaging mode.
ESM_CLASS_MODE_MASK = 0x03
#: esm_class bits 5-2: message type, a value (compare, do not test single bits).
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_TYPE_DEFAULT = 0x00
ESM_CLASS_TYPE_RECEIPT = 0x04  # SMSC delivery receipt
ESM_CLASS_TYPE_SME_DELIVERY_ACK = 0x08
ESM_CLASS_TYPE_MANUAL_USER_ACK = 0x10
ESM_CLASS_TYPE_INTERMEDIATE = 0x20  # intermediate delivery notification
_STATUS_REPORTS = frozenset(
    {
        ESM_CLASS_TYPE_RECEIPT,
        ESM_CLASS_TYPE_SME_DELIVERY_ACK,
        ESM_CLASS_TYPE_MANUAL_USER_ACK,
        ESM_CLASS_TYPE_INTERMEDIATE,
    }
)

#: registered_delivery bits 1-0: the SMSC delivery receipt asked for (a value).
RECEIPT_MASK = 0x03
RECEIPT_NONE = 0x00
RECEIPT_FINAL = 0x01  # on final success or failure
RECEIPT_FAILURE = 0x02  # on failure only
RECEIPT_SUCCESS = 0x03  # on success only: SMPP 5.0 (3.4 reserves the value)
#: registered_delivery bit 4.
INTERMEDIATE_NOTIFICATION = 0x10


def esm_udhi(esm_class: int) -> bool:
    """The short_message starts with a user data header (UDHI, bit 6)."""
    return bool(esm_class & ESM_CLASS_UDHI)


def message_type(esm_class: int) -> int:
    """esm_class bits 5-2: 0 for a plain message, ESM_CLASS_TYPE_* otherwise."""
    return esm_class & ESM_CLASS_TYPE_MASK


def is_receipt(esm_class: int) -> bool:
    """An SMSC delivery receipt (message type 0x04)."""
    return esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_TYPE_RECEIPT


def is_status_report(esm_class: int) -> bool:
    """About an earlier message (receipt, SME ack, intermediate notification), not MO text."""
    return esm_class & ESM_CLASS_TYPE_MASK in _STATUS_REPORTS


def wants_receipt(registered_delivery: int) -> bool:
    """Some final outcome asks for an SMSC delivery receipt (bits 1-0 not 00)."""
    return bool(registered_delivery & RECEIPT_MASK)


def receipt_wanted(registered_delivery: int, final_ok: bool) -> bool:
    """A receipt is due for a final outcome that was a success (``final_ok``) or a failure.

    Bits 1-0: 01 either way, 10 on failure only, 11 on success only (SMPP 5.0).
    """
    wanted = registered_delivery & RECEIPT_MASK
    if wanted == RECEIPT_FINAL:
        return True
    if wanted == RECEIPT_FAILURE:
        return not final_ok
    return wanted == RECEIPT_SUCCESS and final_ok


def wants_intermediate(registered_delivery: int) -> bool:
    """Intermediate notifications asked for (bit 4)."""
    return bool(registered_delivery & INTERMEDIATE_NOTIFICATION)
