"""DialogTable: in-dialog matching and 2xx retransmission from one timer queue (13.3.1.4)."""

from __future__ import annotations

from protocols.sip.dialog import Dialog
from protocols.sip.dialogs import DialogAckTimeout, DialogTable
from protocols.sip.message import SipRequest, make_response

ADDR = ("192.0.2.10", 5060)


def invite() -> SipRequest:
    return SipRequest.build(
        "INVITE",
        "sip:bob@192.0.2.1",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-1"),
            ("From", "<sip:alice@192.0.2.10>;tag=a1"),
            ("To", "<sip:bob@192.0.2.1>"),
            ("Call-ID", "c1@192.0.2.10"),
            ("CSeq", "1 INVITE"),
            ("Contact", "<sip:alice@192.0.2.10>"),
        ],
    )


def in_dialog(method: str, cseq: int, to_tag: str = "b1") -> SipRequest:
    return SipRequest.build(
        method,
        "sip:us@192.0.2.1",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-2"),
            ("From", "<sip:alice@192.0.2.10>;tag=a1"),
            ("To", f"<sip:bob@192.0.2.1>;tag={to_tag}"),
            ("Call-ID", "c1@192.0.2.10"),
            ("CSeq", f"{cseq} {method}"),
        ],
    )


def table_with_dialog() -> tuple[DialogTable[str], Dialog, bytes]:
    request = invite()
    ok = make_response(request, 200, to_tag="b1", headers=[("Contact", "<sip:us@192.0.2.1>")])
    dialog = Dialog.as_uas(request, ok)
    table: DialogTable[str] = DialogTable()
    table.add(dialog, "call-1", ADDR)
    table.start_2xx(dialog.id, ok, now=0.0)
    return table, dialog, ok.serialize()


def test_in_dialog_requests_match_and_strangers_do_not() -> None:
    table, dialog, _ = table_with_dialog()
    entry = table.match_request(in_dialog("BYE", 2))
    assert entry is not None
    assert (entry.owner, entry.dialog) == ("call-1", dialog)
    assert table.match_request(in_dialog("BYE", 2, to_tag="other")) is None


def test_2xx_is_retransmitted_until_the_ack() -> None:
    table, _, wire = table_with_dialog()
    assert table.get_timer() == 0.5
    table.handle_timer(0.5)
    assert table.datagrams_to_send() == [(wire, ADDR)]
    assert table.get_timer() == 1.5  # T1 doubling
    assert table.receive_ack(in_dialog("ACK", 1)) is not None
    assert table.get_timer() is None
    table.handle_timer(100.0)
    assert table.datagrams_to_send() == []
    assert table.next_event() is None


def test_no_ack_gives_an_ack_timeout_for_the_owner() -> None:
    table, dialog, _ = table_with_dialog()
    now = 0.0
    while (deadline := table.get_timer()) is not None and deadline <= 40.0:
        now = deadline
        table.handle_timer(now)
    event = table.next_event()
    assert isinstance(event, DialogAckTimeout)
    assert event.owner == "call-1"
    assert event.timeout.dialog_id == dialog.id
    sent = table.datagrams_to_send()
    assert 5 <= len(sent) <= 12  # 0.5, 1.5, 3.5, 7.5, then every T2 (4 s) to 32 s


def test_removed_dialogs_stop_retransmitting() -> None:
    table, dialog, _ = table_with_dialog()
    table.remove(dialog.id)
    assert table.get_timer() is None
    assert len(table) == 0
