"""Every crash the socket fuzzer found, replayed against a running warpd (issue 12).

Each vector is the exact bytes sent to one listener; the expectation is an answer that is
not a 5xx (HTTP) and a daemon still serving afterwards.
"""

from __future__ import annotations

import pytest

from tests.warpd.sms.conftest import Running

from .clients import http_of
from .test_socket_fuzz import exchange, still_serving

KEY = b"@KEY@"  # replaced by the demo's API key

#: (listener, what it exercised, the bytes)
VECTORS = [
    (
        "http",
        # An Authorization header with bytes that are not UTF-8: aiohttp hands them over as
        # surrogates and the admin gate's token.encode() raised UnicodeEncodeError -> 500.
        "admin token with 0xff bytes",
        b"GET /v1/admin/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        b"wa_42f5ed55_RbTKOHvQ\xff\xff\xff\xffTqFbwtzr1K8TNNvbty0CWuY1CzixKqM\r\n\r\n",
    ),
    (
        "http",
        "API key with 0xff bytes",
        b"GET /v1/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wk_1234\xff\xff\r\n\r\n",
    ),
    (
        "http",
        # A host the IDNA codec refuses: getaddrinfo raised UnicodeError (not OSError) out
        # of the webhook URL check -> 500.
        "webhook URL with an empty label",
        b"POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer @KEY@\r\n"
        b"Content-Type: application/json\r\nContent-Length: 27\r\n\r\n"
        b'{"url":"http://127..1:9/x"}',
    ),
]


@pytest.mark.parametrize(("listener", "what", "data"), VECTORS, ids=[v[1] for v in VECTORS])
async def test_fuzz_vector(warpd: Running, listener: str, what: str, data: bytes) -> None:
    http = http_of(warpd)
    host, port = (http.host, http.port) if listener == "http" else warpd.smpp
    answer = await exchange(host, port, data.replace(KEY, http.api_key.encode()), read_for=2.0)
    if listener == "http":
        assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    await still_serving(warpd, http)
