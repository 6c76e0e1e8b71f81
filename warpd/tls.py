"""TLS settings shared by warpd's listeners (SMPP, SIP) and clients (carriers, gateways).

Servers take TLS 1.2 or later with forward secrecy and AEAD only (Mozilla's
"intermediate" list; Python's default also takes CBC suites such as
ECDHE-RSA-AES256-SHA384; TLS 1.3 is all AEAD). A certificate is re-read on
SIGHUP into the same context: new connections get the new pair, open ones
keep theirs, and a pair that does not load leaves the old one serving.
"""

from __future__ import annotations

import ssl

import structlog

log = structlog.get_logger(__name__)

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL"


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(cert, key)
    return context


def client_context(cafile: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """The system's CAs, or a peer's own (``cafile``, a PEM path); no verification
    only for a lab peer."""
    context = ssl.create_default_context(cafile=cafile or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def reload_pair(context: ssl.SSLContext, cert: str, key: str, *, name: str) -> bool:
    """SIGHUP: load ``cert`` and ``key`` into ``context``; False (logged) if they do not load."""
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        log.error(f"{name}_tls_reload_failed", error=str(exc))
        return False
    log.info(f"{name}_tls_reloaded", cert=cert)
    return True
