"""The int flag tests (protocols/smpp/flags.py) agree with the IntFlag names, for every octet."""

from __future__ import annotations

import pytest

from protocols.smpp.constants import EsmClass, RegisteredDelivery
from protocols.smpp.flags import (
    ESM_CLASS_TYPE_RECEIPT,
    esm_udhi,
    is_receipt,
    is_status_report,
    message_type,
    receipt_wanted,
    wants_intermediate,
    wants_receipt,
)

OCTETS = range(256)


def test_esm_class_tests_match_the_flags() -> None:
    for esm_class in OCTETS:
        flags = EsmClass(esm_class)
        assert esm_udhi(esm_class) is bool(flags & EsmClass.UDHI)
        kind = flags & EsmClass.MESSAGE_TYPE_MASK
        assert message_type(esm_class) == kind
        assert is_receipt(esm_class) is (kind == EsmClass.TYPE_DELIVERY_RECEIPT)
        assert is_status_report(esm_class) is (
            kind
            in (
                EsmClass.TYPE_DELIVERY_RECEIPT,
                EsmClass.TYPE_DELIVERY_ACK,
                EsmClass.TYPE_MANUAL_USER_ACK,
                EsmClass.TYPE_INTERMEDIATE_NOTIFICATION,
            )
        )


@pytest.mark.parametrize(
    ("esm_class", "receipt", "report"),
    [
        (0x00, False, False),  # MO text
        (0x04, True, True),
        (0x44, True, True),  # UDHI does not change the type
        (0x08, False, True),  # SME delivery ack
        (0x20, False, True),  # intermediate notification
        (0x18, False, False),  # conversation abort: a message, not a report
        (0x03, False, False),  # store and forward mode only
    ],
)
def test_message_types(esm_class: int, receipt: bool, report: bool) -> None:
    assert is_receipt(esm_class) is receipt
    assert is_status_report(esm_class) is report
    assert (message_type(esm_class) == ESM_CLASS_TYPE_RECEIPT) is receipt


@pytest.mark.parametrize(
    ("registered_delivery", "on_success", "on_failure"),
    [
        (0x00, False, False),
        (0x01, True, True),
        (0x02, False, True),
        (0x03, True, False),  # SMPP 5.0 success only
        (0x11, True, True),  # intermediate notification too
        (0x1C, False, False),  # SME acks and intermediate only: no SMSC receipt
    ],
)
def test_receipt_wanted(registered_delivery: int, on_success: bool, on_failure: bool) -> None:
    assert receipt_wanted(registered_delivery, final_ok=True) is on_success
    assert receipt_wanted(registered_delivery, final_ok=False) is on_failure
    assert wants_receipt(registered_delivery) is (on_success or on_failure)


def test_registered_delivery_tests_match_the_flags() -> None:
    for value in OCTETS:
        flags = RegisteredDelivery(value)
        wanted = flags & RegisteredDelivery.RECEIPT_MASK
        assert wants_receipt(value) is (wanted != RegisteredDelivery.NO_RECEIPT)
        assert wants_intermediate(value) is bool(
            flags & RegisteredDelivery.INTERMEDIATE_NOTIFICATION
        )
        assert receipt_wanted(value, final_ok=True) is (
            wanted in (RegisteredDelivery.RECEIPT_FINAL, RegisteredDelivery.RECEIPT_SUCCESS)
        )
        assert receipt_wanted(value, final_ok=False) is (
            wanted in (RegisteredDelivery.RECEIPT_FINAL, RegisteredDelivery.RECEIPT_FAILURE)
        )
