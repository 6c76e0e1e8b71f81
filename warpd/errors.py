"""warpd's error hierarchy (STYLE.md section 4).

``WarpdError`` and ``ProtocolError`` live in :mod:`protocols.errors` so the
sans-I/O layer can raise them without importing upwards; the rest is policy
and lives here.
"""

from __future__ import annotations

from protocols.errors import ProtocolError, WarpdError

__all__ = [
    "ConfigError",
    "InsufficientFunds",
    "NoRoute",
    "ProtocolError",
    "RoutingError",
    "StorageError",
    "Throttled",
    "WarpdError",
]


class ConfigError(WarpdError):
    """A configuration file that cannot be used: names the file, the key and why."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


class RoutingError(WarpdError):
    """A message or call that cannot be routed or accepted by policy."""


class NoRoute(RoutingError):
    """No route matches the destination for this account."""


class Throttled(RoutingError):
    """The account, bind or trunk is over its rate."""


class InsufficientFunds(RoutingError):
    """The account's balance and credit limit do not cover the price."""


class StorageError(WarpdError):
    """PostgreSQL is unreachable or its schema is not what this build expects."""
