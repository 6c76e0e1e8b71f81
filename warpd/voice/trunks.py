"""Trunks, gateways, routes, rates and DIDs: one immutable snapshot of the voice tables.

``Directory`` is what every call reads without a database round trip; the
service loads a new one every ``sip.reload_interval`` seconds (and on SIGHUP)
and swaps it in, so provisioning takes effect without a restart. Lookups and
E.164 normalisation are pure functions over it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from protocols.sip.transaction import Addr, StreamAddr, Transport
from warpd.voice.rating import VoiceRate

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_E164 = re.compile(r"^[1-9][0-9]{5,14}$")
_VISUAL = re.compile(r"[\s().\-/]")


@dataclass(frozen=True, slots=True)
class Trunk:
    id: int
    account_id: int
    name: str
    auth_mode: str
    networks: tuple[IpNetwork, ...] = ()
    username: str | None = None
    realm: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    ha1_sha512_256: str | None = None
    max_channels: int = 30
    max_cps: float = 5.0
    country_code: str = ""
    national_prefix: str = "0"
    international_prefix: str = "00"
    trust_caller_id: bool = False
    default_caller_id: str | None = None
    record_calls: bool = False  # RTPEngine records its calls (migration 0014)

    def allows(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class Gateway:
    id: int
    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str | None = None
    password: str | None = None
    strip_digits: int = 0
    add_prefix: str = ""
    max_channels: int | None = None
    probe: bool = True

    @property
    def addr(self) -> Addr:
        """Where its requests go: a datagram, or a connection for transport tcp or tls."""
        if self.transport == "udp":
            return (self.host, self.port)
        return StreamAddr(self.host, self.port, Transport(self.transport.upper()))

    def dial(self, e164: str) -> str:
        """The number as this carrier wants it in the Request-URI."""
        return self.add_prefix + e164[self.strip_digits :]


@dataclass(frozen=True, slots=True)
class VoiceRoute:
    id: int
    priority: int
    account_id: int | None
    prefix: str
    strategy: str
    gateway_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    currency: str
    balance_micros: int
    credit_limit_micros: int
    rate_plan_id: int | None
    active: bool = True
    # Set aside for SMS charged on delivery (migration 0013): not there to spend on calls.
    reserved_micros: int = 0


@dataclass(frozen=True, slots=True)
class Did:
    number: str
    account_id: int
    trunk_id: int | None


#: source addresses whose trunk a Directory remembers (it is rebuilt on every reload)
_SOURCES_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Directory:
    trunks: tuple[Trunk, ...] = ()
    gateways: dict[int, Gateway] = field(default_factory=dict)
    routes: tuple[VoiceRoute, ...] = ()
    rates: dict[int, tuple[VoiceRate, ...]] = field(default_factory=dict)
    costs: dict[int, tuple[VoiceRate, ...]] = field(default_factory=dict)
    dids: dict[str, Did] = field(default_factory=dict)
    accounts: dict[int, Account] = field(default_factory=dict)
    #: trunk_for_source's answers: every INVITE asks, and parsing the address
    #: and testing each network cost more than the rest of admission
    _by_source: dict[str, Trunk | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def trunk_for_source(self, ip: str) -> Trunk | None:
        """The IP-authenticated trunk whose networks hold ``ip`` (the narrowest wins)."""
        try:
            return self._by_source[ip]
        except KeyError:
            pass
        trunk = self._trunk_for_source(ip)
        if len(self._by_source) < _SOURCES_KEPT:  # bounded: a flood comes from anywhere
            self._by_source[ip] = trunk
        return trunk

    def _trunk_for_source(self, ip: str) -> Trunk | None:
        best: Trunk | None = None
        best_len = -1
        for trunk in self.trunks:
            if trunk.auth_mode != "ip" or not trunk.allows(ip):
                continue
            length = max(n.prefixlen for n in trunk.networks if ipaddress.ip_address(ip) in n)
            if length > best_len:
                best, best_len = trunk, length
        return best

    def gateway_for_source(self, ip: str, port: int | None = None) -> Gateway | None:
        """The carrier gateway at ``ip`` (and ``port`` when given): an inbound call."""
        for gateway in self.gateways.values():
            if gateway.host == ip and (port is None or gateway.port == port):
                return gateway
        return None

    @property
    def has_digest_trunks(self) -> bool:
        return any(trunk.auth_mode != "ip" for trunk in self.trunks)

    def trunk_for_user(self, username: str) -> Trunk | None:
        for trunk in self.trunks:
            if trunk.auth_mode != "ip" and trunk.username == username:
                return trunk
        return None

    def trunk(self, trunk_id: int) -> Trunk | None:
        for trunk in self.trunks:
            if trunk.id == trunk_id:
                return trunk
        return None

    def caller_allowed(self, trunk: Trunk, e164: str) -> bool:
        did = self.dids.get(e164)
        return did is not None and did.account_id == trunk.account_id


def normalise(raw: str, trunk: Trunk) -> str | None:
    """E.164 digits (no '+') of what a PBX sent, per the trunk's dialling rules."""
    number = _VISUAL.sub("", raw)
    if number.startswith("+"):
        digits = number[1:]
    elif trunk.international_prefix and number.startswith(trunk.international_prefix):
        digits = number[len(trunk.international_prefix) :]
    elif trunk.country_code and trunk.national_prefix and number.startswith(trunk.national_prefix):
        digits = trunk.country_code + number[len(trunk.national_prefix) :]
    else:
        digits = number
    return digits if _E164.match(digits) else None


def caller_id(directory: Directory, trunk: Trunk, e164: str | None) -> str | None:
    """What we present: the PBX's own number if trusted or one of its DIDs, else the default."""
    if e164 is not None and (trunk.trust_caller_id or directory.caller_allowed(trunk, e164)):
        return e164
    return trunk.default_caller_id or e164


def _networks(values: Any) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(str(v), strict=False) for v in values or ())
