"""SIP requests and responses (RFC 3261 sections 7.1, 7.2, 8.2.6): immutable, lazy.

``SipRequest`` and ``SipResponse`` add their start lines to ``SipMessage``
(``protocols.sip.message_base``: headers, body, typed accessors, edits);
``make_response`` builds the response to a request as a UAS must.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocols.sip.errors import SipError
from protocols.sip.grammar import is_token
from protocols.sip.headers import ContentType, NameAddr
from protocols.sip.message_base import (
    Header,
    HeaderInput,
    SipMessage,
    check_value,
    normalize,
    with_length,
)
from protocols.sip.status import reason_phrase
from protocols.sip.uri import SipUri, Uri, parse_uri

__all__ = [
    "SIP_VERSION",
    "Header",
    "HeaderInput",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "make_response",
]

SIP_VERSION = "SIP/2.0"


class SipRequest(SipMessage):
    """``Method SP Request-URI SP SIP/2.0`` (RFC 3261 section 7.1)."""

    __slots__ = ("_method", "_uri_text")

    def __init__(
        self,
        method: str,
        uri_text: str,
        headers: tuple[Header, ...] | None,
        body: bytes,
        *,
        raw: bytes | None = None,
        fields: tuple[list[str], list[str]] | None = None,
    ) -> None:
        SipMessage.__init__(self, headers, body, raw, fields)
        self._method = method
        self._uri_text = uri_text

    @classmethod
    def build(
        cls,
        method: str,
        uri: Uri | str,
        headers: Iterable[HeaderInput] = (),
        body: bytes = b"",
        content_type: str | ContentType | None = None,
    ) -> SipRequest:
        """A new request; Content-Length is computed, Content-Type added if given."""
        lines = normalize(headers)
        if content_type is not None:
            lines = [h for h in lines if h[0] != "Content-Type"]
            lines.append(("Content-Type", check_value(str(content_type))))
        uri_text = str(uri)
        parse_uri(uri_text)
        if " " in uri_text or not is_token(method):
            raise ValueError(f"bad request line {method} {uri_text}")
        return cls(method, uri_text, with_length(lines, body), body)

    @property
    def method(self) -> str:
        return self._method

    @property
    def uri_text(self) -> str:
        """The Request-URI exactly as received."""
        return self._uri_text

    @property
    def uri(self) -> Uri:
        return self._typed("uri", self._parse_uri)

    def _parse_uri(self) -> Uri:
        uri = parse_uri(self._uri_text)
        if isinstance(uri, SipUri) and uri.headers:
            # RFC 3261 section 19.1.1, table 1: headers are not allowed in a Request-URI.
            raise SipError("URI headers in the Request-URI")
        return uri

    def start_line(self) -> str:
        return f"{self._method} {self._uri_text} {SIP_VERSION}"

    def with_uri(self, uri: Uri | str) -> SipRequest:
        uri_text = str(uri)
        parse_uri(uri_text)
        return SipRequest(self._method, uri_text, self.headers, self._body)

    def _make(self, headers: tuple[Header, ...], body: bytes) -> SipRequest:
        return SipRequest(self._method, self._uri_text, headers, body)


class SipResponse(SipMessage):
    """``SIP/2.0 SP Status-Code SP Reason-Phrase`` (RFC 3261 section 7.2)."""

    __slots__ = ("_reason_phrase", "_status")

    def __init__(
        self,
        status: int,
        reason_phrase: str,
        headers: tuple[Header, ...] | None,
        body: bytes,
        *,
        raw: bytes | None = None,
        fields: tuple[list[str], list[str]] | None = None,
    ) -> None:
        SipMessage.__init__(self, headers, body, raw, fields)
        self._status = status
        self._reason_phrase = reason_phrase

    @classmethod
    def build(
        cls,
        status: int,
        reason: str | None = None,
        headers: Iterable[HeaderInput] = (),
        body: bytes = b"",
        content_type: str | ContentType | None = None,
    ) -> SipResponse:
        if not 100 <= status <= 699:
            raise ValueError(f"bad SIP status {status}")
        lines = normalize(headers)
        if content_type is not None:
            lines = [h for h in lines if h[0] != "Content-Type"]
            lines.append(("Content-Type", check_value(str(content_type))))
        phrase = check_value(reason if reason is not None else reason_phrase(status))
        return cls(status, phrase, with_length(lines, body), body)

    @property
    def status(self) -> int:
        return self._status

    @property
    def reason_phrase(self) -> str:
        return self._reason_phrase

    @property
    def is_provisional(self) -> bool:
        return self._status < 200

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self._status} {self._reason_phrase}"

    def _make(self, headers: tuple[Header, ...], body: bytes) -> SipResponse:
        return SipResponse(self._status, self._reason_phrase, headers, body)


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: NameAddr | Uri | str | None = None,
    headers: Iterable[HeaderInput] = (),
    body: bytes = b"",
    content_type: str | ContentType | None = None,
    record_route: bool = False,
) -> SipResponse:
    """A response to ``request`` per RFC 3261 section 8.2.6.

    Via (all, in order), From, Call-ID and CSeq are copied as received; To
    too, with ``to_tag`` added when the request's To has none (a To that does
    not parse is copied as it is: the peer still learns why it is refused).
    ``contact`` adds the Contact a dialog-creating response needs (12.1.1; a
    URI is written ``<uri>``). ``record_route`` copies Record-Route into
    101-299 responses (section 12.1.1, a UAS building a dialog).
    """
    copied: list[Header] = [h for h in request.headers if h[0] == "Via"]
    copied += [("From", request._single("From"))]
    to_value = request._single("To")
    if to_tag is not None:
        to_value = _with_to_tag(request, to_value, to_tag)
    copied += [("To", to_value), ("Call-ID", request._single("Call-ID"))]
    copied += [("CSeq", request._single("CSeq"))]
    if record_route and 100 < status < 300:
        copied += [h for h in request.headers if h[0] == "Record-Route"]
    if contact is not None:
        copied.append(("Contact", _contact_value(contact)))
    return SipResponse.build(status, reason, [*copied, *headers], body, content_type)


def _with_to_tag(request: SipRequest, raw: str, tag: str) -> str:
    try:
        to = request.to
    except SipError:
        return raw  # answering a request refused for its To: copy it back unchanged
    return raw if to.tag is not None else str(to.with_tag(tag))


def _contact_value(contact: NameAddr | Uri | str) -> str:
    if isinstance(contact, str | NameAddr):
        return str(contact)
    return f"<{contact}>"
