"""The two legs of a B2BUA call and the SIP messages warpd writes on them.

The B leg is a new UAC request built from scratch (RFC 3261 8.1.1) with its own
Call-ID, From tag, Contact and Via: nothing of the A leg's headers travels on,
which is topology hiding by construction. The A leg's responses keep one To
tag from the first 18x to the final answer (8.2.6.2), carry warpd's Contact
and the SDP RTPEngine rewrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from protocols.sip.dialog import Dialog, DialogId, DialogState
from protocols.sip.message import SipRequest, SipResponse, make_response
from protocols.sip.timers import TimerConfig
from protocols.sip.transaction import Addr, TransactionKey, Transport
from protocols.sip.uri import SipUri, TelUri, Uri

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE"
SDP = "application/sdp"


class Side(Enum):
    A = "a"  # the side that sent the INVITE (PBX outbound, carrier inbound)
    B = "b"  # the side warpd calls


@dataclass(slots=True)
class Leg:
    side: Side
    addr: Addr
    call_id: str
    local_tag: str
    dialog: Dialog | None = None
    invite_key: TransactionKey | None = None
    # The ACK last sent for the B leg's 2xx, resent when the 2xx is (13.2.2.4).
    ack: SipRequest | None = None
    remote_sdp: bytes = b""
    local_sdp: bytes = b""

    @property
    def dialog_id(self) -> DialogId | None:
        return None if self.dialog is None else self.dialog.id


def user_of(uri: Uri) -> str:
    """The number in a Request-URI, From or To: the user part, or a tel: number."""
    if isinstance(uri, SipUri):
        return uri.user or ""
    if isinstance(uri, TelUri):
        return uri.digits
    return ""


def contact_for(host_port: str, transport: Transport = Transport.UDP) -> str:
    """warpd's Contact; over TCP or TLS it names the transport, so the peer's requests in
    the dialog come back by it (a TLS dialog's signalling stays encrypted)."""
    # No display name: SIPp copies a Contact's display name into [next_url].
    if transport is Transport.UDP:
        return f"<sip:warpd@{host_port}>"
    return f"<sip:warpd@{host_port};transport={transport.value.lower()}>"


def b_invite(
    *,
    target: str,
    gateway_host: str,
    caller: str | None,
    local_host: str,
    call_id: str,
    tag: str,
    contact: str,
    sdp: bytes,
    max_forwards: int,
    cseq: int = 1,
    extra: tuple[tuple[str, str], ...] = (),
) -> SipRequest:
    """The INVITE to a carrier: caller and callee as E.164, ``+`` written out."""
    user = f"+{caller}" if caller else "anonymous"
    headers: list[tuple[str, object]] = [
        ("Max-Forwards", str(max_forwards)),
        ("From", f"<sip:{user}@{local_host}>;tag={tag}"),
        ("To", f"<sip:{target}@{gateway_host}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} INVITE"),
        ("Contact", contact),
        ("Allow", ALLOW),
        *extra,
    ]
    return SipRequest.build("INVITE", f"sip:{target}@{gateway_host}", headers, sdp, SDP)


def a_response(
    invite: SipRequest,
    status: int,
    tag: str,
    contact: str,
    *,
    sdp: bytes = b"",
    reason: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> SipResponse:
    extra: list[tuple[str, object]] = list(headers)
    if 100 < status < 300:
        extra.append(("Contact", contact))
    if status in {200, 405}:
        extra.append(("Allow", ALLOW))
    return make_response(
        invite,
        status,
        reason,
        to_tag=tag,
        headers=extra,
        body=sdp,
        content_type=SDP if sdp else None,
    )


def uac_dialog(request: SipRequest, response: SipResponse) -> Dialog:
    """12.1.2, tolerating a carrier 2xx without Contact (the Request-URI stays the target)."""
    if response.contact:
        return Dialog.as_uac(request, response)
    return Dialog(
        DialogId(request.call_id, request.from_.tag or "", response.to.tag or ""),
        state=DialogState.CONFIRMED,
        local=request.from_,
        remote=response.to,
        local_contact=request.contact[0],
        remote_target=request.uri,
        route_set=tuple(reversed(response.record_route)),
        local_seq=request.cseq.number,
        remote_seq=None,
        config=TimerConfig(),
    )


def uas_dialog(invite: SipRequest, response: SipResponse) -> Dialog:
    """12.1.1; a PBX INVITE without Contact was refused at admission."""
    return Dialog.as_uas(invite, response)
