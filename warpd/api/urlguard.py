"""Refuse webhook URLs that reach inside the operator's network (SSRF).

A customer's URL must resolve to public addresses only: loopback, private
(RFC 1918, fc00::/7), link-local (cloud metadata at 169.254.169.254), CGNAT,
multicast and reserved ranges are refused unless ``[webhooks] allow_private``.
The check runs at registration (a clear 400) and again at connection time
inside aiohttp's resolver, so a DNS answer that changes after registration
(rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from warpd.api.errors import invalid


class UrlRefused(OSError):
    """A URL or address that webhooks may not reach; an OSError so aiohttp reports it."""


def public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_url(text: str) -> URL:
    """A syntactically usable http(s) URL with a host, else 400 invalid_url."""
    try:
        url = URL(text)
    except (ValueError, TypeError):
        raise invalid(f"{text!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.user or url.password:
        raise invalid("a webhook URL is http:// or https:// with a host and no credentials")
    return url


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only addresses webhooks may reach."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self.allow_private:
            return results
        kept = [r for r in results if public(r["host"])]
        if not kept:
            raise UrlRefused(f"{host} resolves only to loopback or private addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


async def check_reachable(url: URL, allow_private: bool) -> None:
    """400 when the host resolves only to refused addresses.

    A name that does not resolve now is accepted: DNS may be down for a moment,
    and the sender checks again at every connection anyway.
    """
    resolver = GuardedResolver(allow_private)
    try:
        await resolver.resolve(url.host or "", url.port or 0, socket.AF_UNSPEC)
    except UrlRefused as exc:
        raise invalid(f"webhook URL refused: {exc}") from None
    except UnicodeError:
        # The IDNA codec refuses the name before any lookup ("127..1", a 64-octet label).
        raise invalid(f"{url.host!r} is not a valid host name") from None
    except OSError:
        pass
    finally:
        await resolver.close()
