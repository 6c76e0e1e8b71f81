"""What the endpoint checks and adds on a request from the network (RFC 3261 8.2, 18.2).

``validate_request`` reads what the transaction layer and every TU rely on,
so a bad value is answered 400 before a transaction exists; ``answerable``
says whether a refused request can be answered at all; ``stamp_via`` adds
18.2.1's ``received`` and RFC 3581's ``rport``; ``response_address`` is where
the responses go.
"""

from __future__ import annotations

from protocols.sip.errors import SipError
from protocols.sip.headers import Via
from protocols.sip.message import SipRequest
from protocols.sip.transaction import Addr


def validate_request(request: SipRequest) -> None:
    """Touch what the layer and any TU rely on, so a bad value is a 400 here.

    A From without a tag passes: 8.1.1.3's "MUST contain a new tag" binds the
    client, and RFC 2543 clients send none (their transactions and dialogs
    are matched with an empty tag).
    """
    request.uri  # noqa: B018 - parses the Request-URI
    request.to  # noqa: B018
    request.from_  # noqa: B018
    request.call_id  # noqa: B018
    request.max_forwards  # noqa: B018
    if request.cseq.method != request.method:
        raise SipError(f"CSeq method {request.cseq.method} is not {request.method}")


def answerable(request: SipRequest) -> bool:
    """Whether a refused request can be answered (8.2.6.2, 17.2.3, 18.2.2).

    The response needs the top Via parsed (where the response goes, the
    branch the client matches it by) and From, To, Call-ID and CSeq to copy,
    parsed or not: RFC 4475 3.1.2.5 answers an overlarge CSeq with 400.
    """
    try:
        request.top_via  # noqa: B018
        for name in ("From", "To", "Call-ID", "CSeq"):
            request._single(name)
    except SipError:
        return False
    return request.method != "ACK"  # 17: an ACK is never answered


def stamp_via(request: SipRequest, addr: Addr) -> SipRequest:
    """18.2.1 received and RFC 3581 rport, so responses can follow the Via."""
    via = request.top_via
    stamped = via
    if via.host.strip("[]").lower() != addr[0].lower():
        stamped = stamped.with_param("received", addr[0])
    if via.has_rport and via.rport is None:
        stamped = stamped.with_param("rport", str(addr[1]))
    if stamped is via:
        return request
    return request.without_top_via().with_top_via(stamped)


def response_address(via: Via, source: Addr, *, reliable: bool) -> Addr:
    """Where the responses to a request go (RFC 3261 section 18.2.2, RFC 3581 section 4).

    Over a reliable transport, back where the request came from (the glue
    keeps the connection). Over UDP: with ``rport``, the source address and
    port; else the ``maddr`` host or the source address (what ``received``
    holds, or the sent-by host itself when they are equal), at the sent-by
    port, 5060 when it has none. The source address rather than a
    ``received`` the client wrote itself: only ours can be trusted.
    """
    if reliable or via.has_rport:
        return source
    return ((via.maddr or "").strip("[]") or source[0], via.port or 5060)
