"""Dialogs (RFC 3261 section 12): ids, route sets, CSeq rules, target refresh, 2xx until ACK."""

from __future__ import annotations

import pytest

from protocols.sip.dialog import (
    AckTimeout,
    Dialog,
    DialogId,
    DialogState,
    id_of_request,
    id_of_response,
)
from protocols.sip.errors import SipError
from protocols.sip.message import SipRequest, SipResponse, make_response
from protocols.sip.timers import TimerConfig, TimerName


def invite(record_route: tuple[str, ...] = (), contact: bool = True) -> SipRequest:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa"),
        ("From", "Alice <sip:alice@a.example>;tag=at"),
        ("To", "<sip:bob@b.example>"),
        ("Call-ID", "dlg-1"),
        ("CSeq", "10 INVITE"),
    ]
    if contact:
        headers.append(("Contact", "<sip:alice@192.0.2.1:5060>"))
    headers += [("Record-Route", rr) for rr in record_route]
    return SipRequest.build("INVITE", "sip:bob@b.example", headers)


def ok(req: SipRequest, status: int = 200, tag: str | None = "bt", **kw: object) -> SipResponse:
    return make_response(
        req,
        status,
        to_tag=tag,
        headers=[("Contact", "<sip:bob@192.0.2.2:5070>")],
        record_route=True,
        **kw,  # type: ignore[arg-type]
    )


RR = ("<sip:p1.example;lr>", "<sip:p2.example;lr>")


def test_uac_dialog_from_2xx_reverses_record_route() -> None:
    req = invite(RR)
    dialog = Dialog.as_uac(req, ok(req))
    assert dialog.id == DialogId("dlg-1", "at", "bt")
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.2:5070"
    assert dialog.local_seq == 10
    assert dialog.remote_seq is None
    assert id_of_response(ok(req)) == dialog.id


def test_uas_dialog_keeps_record_route_order() -> None:
    req = invite(RR)
    dialog = Dialog.as_uas(req, ok(req, 180))
    assert dialog.id == DialogId("dlg-1", "bt", "at")
    assert dialog.state is DialogState.EARLY
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert str(dialog.remote_target) == "sip:alice@192.0.2.1:5060"
    assert dialog.remote_seq == 10
    bye = Dialog.as_uac(req, ok(req)).create_request("BYE")
    assert id_of_request(bye) == dialog.id


@pytest.mark.parametrize(("status", "tag"), [(100, "x"), (200, None), (404, "x")])
def test_no_dialog_without_tag_or_from_a_non_2xx(status: int, tag: str | None) -> None:
    req = invite()
    with pytest.raises(SipError):
        Dialog.as_uac(req, ok(req, status, tag))
    with pytest.raises(SipError):
        Dialog.as_uas(req, ok(req, status, tag))


def test_no_dialog_without_contact() -> None:
    req = invite(contact=False)
    with pytest.raises(SipError, match="Contact"):
        Dialog.as_uas(req, ok(req))


def test_in_dialog_requests_loose_routing() -> None:
    req = invite(RR)
    dialog = Dialog.as_uac(req, ok(req))
    bye = dialog.create_request("BYE")
    assert bye.uri_text == "sip:bob@192.0.2.2:5070"
    assert bye.header_values("Route") == ("<sip:p2.example;lr>", "<sip:p1.example;lr>")
    assert (bye.cseq.number, bye.cseq.method) == (11, "BYE")
    assert bye.from_.tag == "at"
    assert bye.to.tag == "bt"
    assert not bye.has_header("Contact")
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq.number == 12
    assert reinvite.has_header("Contact")
    assert reinvite.body == b"v=0\r\n"
    ack = dialog.create_ack(12)
    assert (ack.cseq.number, ack.cseq.method) == (12, "ACK")
    assert dialog.local_seq == 12  # ACK does not count
    for method in ("ACK", "CANCEL"):
        with pytest.raises(ValueError, match="CSeq"):
            dialog.create_request(method)


def test_strict_router_becomes_request_uri() -> None:
    req = invite(("<sip:strict.example>",))
    dialog = Dialog.as_uas(req, ok(req))
    bye = dialog.create_request("BYE", headers=[("Reason", "Q.850;cause=16")])
    assert bye.uri_text == "sip:strict.example"
    assert bye.header_values("Route") == ("<sip:alice@192.0.2.1:5060>",)
    assert bye.header("Reason") == "Q.850;cause=16"


def test_no_route_set_targets_contact() -> None:
    req = invite()
    dialog = Dialog.as_uas(req, ok(req))
    bye = dialog.create_request("BYE")
    assert bye.uri_text == "sip:alice@192.0.2.1:5060"
    assert not bye.has_header("Route")
    assert bye.cseq.number == 1  # the UAS's local CSeq starts from nothing


def remote(
    dialog_req: SipRequest, method: str, cseq: int, contact: str | None = None
) -> SipRequest:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr"),
        ("From", str(dialog_req.from_)),
        ("To", "<sip:bob@b.example>;tag=bt"),
        ("Call-ID", "dlg-1"),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact:
        headers.append(("Contact", contact))
    return SipRequest.build(method, "sip:bob@192.0.2.2:5070", headers)


def test_remote_cseq_out_of_order_gets_500_and_target_refresh() -> None:
    req = invite()
    dialog = Dialog.as_uas(req, ok(req))
    assert dialog.receive_request(remote(req, "INFO", 11)) is None
    assert dialog.remote_seq == 11
    assert dialog.receive_request(remote(req, "INFO", 11)) == 500
    assert dialog.receive_request(remote(req, "INFO", 9)) == 500
    assert dialog.receive_request(remote(req, "ACK", 10)) is None  # ACK is not counted
    refresh = remote(req, "INVITE", 12, "<sip:alice@198.51.100.7:5062>")
    assert dialog.receive_request(refresh) is None
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7:5062"
    assert dialog.receive_request(remote(req, "UPDATE", 13)) is None  # no Contact: kept
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7:5062"
    assert dialog.receive_request(remote(req, "BYE", 14)) is None
    assert dialog.state is DialogState.TERMINATED


def test_uac_remote_seq_starts_empty() -> None:
    req = invite()
    dialog = Dialog.as_uac(req, ok(req))
    assert dialog.receive_request(remote(req, "BYE", 1)) is None
    assert dialog.remote_seq == 1


def test_responses_confirm_refresh_or_end_early_dialogs() -> None:
    req = invite()
    early = Dialog.as_uac(req, ok(req, 183))
    assert early.state is DialogState.EARLY
    final = ok(req, 200).with_header("Contact", "<sip:bob@203.0.113.5>")
    early.receive_response(final)
    assert early.state is DialogState.CONFIRMED
    assert str(early.remote_target) == "sip:bob@203.0.113.5"
    bye_ok = make_response(early.create_request("BYE"), 200)
    early.receive_response(bye_ok)  # not a target refresh: nothing changes
    assert str(early.remote_target) == "sip:bob@203.0.113.5"
    refused = Dialog.as_uac(req, ok(req, 180))
    refused.receive_response(ok(req, 486))
    assert refused.state is DialogState.TERMINATED
    confirmed = Dialog.as_uac(req, ok(req))
    confirmed.receive_response(ok(req, 491))  # a failed re-INVITE keeps the dialog
    assert confirmed.state is DialogState.CONFIRMED
    no_contact = ok(req, 200).without_header("Contact")
    confirmed.receive_response(no_contact)
    assert str(confirmed.remote_target) == "sip:bob@192.0.2.2:5070"


def test_2xx_retransmitted_until_ack() -> None:
    req = invite()
    answer = ok(req)
    dialog = Dialog.as_uas(req, ok(req, 180))
    dialog.start_2xx(answer, 0.0)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.awaiting_ack
    sent: list[float] = []
    while (due := dialog.get_timer()) is not None and due <= 5.0:
        dialog.handle_timer(due)
        sent += [due] * len(dialog.responses_to_send())
    assert sent == [0.5, 1.5, 3.5]
    wrong = remote(req, "ACK", 9)
    assert not dialog.receive_ack(wrong)
    assert dialog.receive_ack(remote(req, "ACK", 10))
    assert not dialog.awaiting_ack
    assert dialog.get_timer() is None
    assert not dialog.receive_ack(remote(req, "ACK", 10))


def test_2xx_give_up_after_64_t1_reports_ack_timeout() -> None:
    req = invite()
    dialog = Dialog.as_uas(req, ok(req), TimerConfig(t1=0.1, t2=0.4))
    dialog.start_2xx(ok(req), 0.0)
    count = 0
    while (due := dialog.get_timer()) is not None:
        dialog.handle_timer(due)
        count += len(dialog.responses_to_send())
    # 0.1 0.3 0.7 1.1 ... every 0.4 up to 6.4.
    assert count == 17
    assert dialog.next_event() == AckTimeout(dialog.id, 10)
    assert dialog.next_event() is None
    assert not dialog.awaiting_ack
    assert not dialog.timers.running(TimerName.RETRANSMIT_2XX)


def test_terminate_stops_retransmission() -> None:
    req = invite()
    dialog = Dialog.as_uas(req, ok(req))
    dialog.start_2xx(ok(req), 0.0)
    dialog.terminate()
    assert dialog.get_timer() is None
    dialog.confirm()
    assert dialog.state is DialogState.TERMINATED
