"""The checks a UAS makes before it acts on a request (RFC 3261 sections 8.2.1-8.2.3, 16.3).

The endpoint answers what the transaction layer decides (malformed input,
CANCEL, merged requests); whether a request is acceptable to the TU's core is
the core's decision, because only it knows which methods it implements, which
extensions it supports and which requests it would forward. So these checks
are a pure function the TU calls on each new request before anything else:

    refusal = check_request(event.request, policy, forwarding=True)
    if refusal is not None:
        endpoint.respond(key, endpoint.build_response(key, refusal.status,
                         refusal.reason, headers=refusal.headers), now)

In order: the method (501 Not Implemented, with Allow: 8.2.1), Max-Forwards
of a request to be forwarded (483 Too Many Hops: 16.3 step 3; OPTIONS is
answered by the element itself, and a request that ends here, a REGISTER to
our registrar, is not forwarded at all), Require (420 Bad Extension, with
Unsupported: 8.2.2.3), then the body of the methods that carry a session
description (415 Unsupported Media Type, with Accept or Accept-Encoding:
8.2.3). ACK is never refused (it has no response) and CANCEL is the
endpoint's; neither is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sip.errors import SipError, describe
from protocols.sip.message import SipRequest

# What a B2BUA in front of SIP trunks implements (RFC 3261 core, INFO for
# DTMF, UPDATE, PRACK, REFER/NOTIFY relayed, REGISTER for its registrar).
DEFAULT_ALLOW = (
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "REFER",
    "NOTIFY",
)


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS implements.

    ``allow``: the methods (anything else is 501); ``supported``: option tags
    a Require may name (RFC 3261 19.2: compared case-sensitively);
    ``accept``: body types understood in a request of ``accept_methods``
    (compared case-insensitively, without parameters).
    """

    allow: tuple[str, ...] = DEFAULT_ALLOW
    supported: tuple[str, ...] = ("timer", "replaces")
    accept: tuple[str, ...] = ("application/sdp",)
    accept_methods: frozenset[str] = frozenset({"INVITE", "UPDATE", "PRACK"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """The response a request gets instead of being processed."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def check_request(request: SipRequest, policy: UasPolicy, *, forwarding: bool) -> Refusal | None:
    """None when the TU may go on with ``request``, else the answer to send.

    ``forwarding``: the TU would send this request on (a B2BUA's new INVITE),
    so a Max-Forwards of 0 ends it here with 483.
    """
    method = request.method
    if method in ("ACK", "CANCEL"):
        return None
    try:
        if method not in policy.allow:
            return _refusal(501, f"{method} not implemented", ("Allow", ", ".join(policy.allow)))
        if forwarding and method != "OPTIONS" and request.max_forwards == 0:
            return _refusal(483, "Max-Forwards is 0")
        unsupported = [
            tag for tag in request.header_values("Require") if tag not in policy.supported
        ]
        if unsupported:
            return _refusal(
                420, f"unsupported {' '.join(unsupported)}", ("Unsupported", ", ".join(unsupported))
            )
        if method in policy.accept_methods and request.body:
            return _check_body(request, policy)
    except SipError as exc:
        return Refusal(exc.status_code, exc.reason)
    return None


def _check_body(request: SipRequest, policy: UasPolicy) -> Refusal | None:
    encoding = request.header_values("Content-Encoding")
    if any(coding.lower() != "identity" for coding in encoding):
        return _refusal(415, "Content-Encoding", ("Accept-Encoding", "identity"))
    content_type = request.content_type
    accepted = {mime.lower() for mime in policy.accept}
    if content_type is None or content_type.mime not in accepted:
        mime = "no Content-Type" if content_type is None else content_type.mime
        return _refusal(415, mime, ("Accept", ", ".join(policy.accept)))
    return None


def _refusal(status: int, detail: str, *headers: tuple[str, str]) -> Refusal:
    return Refusal(status, describe(status, detail), headers)
