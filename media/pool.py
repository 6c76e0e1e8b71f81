"""A weighted pool of rtpengine instances (rtpengine-ng.md section 3, after
Kamailio's rtpengine module: ``select_rtpp_node``, ``rtpp_function_call``).

* A new call picks an instance by ``crc32(call-id) % sum(weights)`` over the
  instances that are up. CRC-32 rather than ``hash()``: it is the same in every
  process, so a restarted warpd still finds a call's instance.
* Every later request for the call (answer, re-offer, delete, query, DTMF,
  recording) goes to the instance that took the offer: its ports live there.
  The call-id -> instance map forgets a call on delete or after ``call_ttl``.
* A timeout or socket error disables the instance for ``disable_seconds``; when
  that has passed, the next new call (or the monitor) pings it in the background
  and it takes calls again once it answered. Only when no instance is up does a
  call wait for those pings. ``load limit``,
  "Parallel session limit reached" and "Ran out of ports" move the offer to the
  next instance; any other error reply fails the call.
* ``monitor()`` pings every instance each ``ping_interval``; the owner runs it
  as a task and cancels it on shutdown.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from prometheus_client import CollectorRegistry

from media.client import NgClient
from media.errors import NoRtpEngine, RtpEngineUnavailable
from media.metrics import NgMetrics
from protocols.ng.errors import NgError
from protocols.ng.messages import (
    Answer,
    Delete,
    Offer,
    PlayDtmf,
    Query,
    StartRecording,
    StopRecording,
)
from protocols.ng.replies import Reply

CallRequest = Answer | Delete | Query | PlayDtmf | StartRecording | StopRecording
"""Requests about an existing call: they follow the instance of its offer."""


@dataclass(frozen=True, slots=True)
class RtpEngineAddress:
    name: str
    host: str
    port: int
    weight: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSettings:
    instance_prefix: str = "warpd"
    timeout: float = 0.5
    """Seconds before a request is sent again with the same cookie."""
    attempts: int = 3
    """Sends per request, the first included."""
    disable_seconds: float = 60.0
    ping_interval: float = 60.0
    call_ttl: float = 3600.0
    """Forget a call's instance after this long without a request about it."""


class InstanceState(Enum):
    UP = "up"
    DOWN = "down"


class _Instance:
    __slots__ = ("address", "client", "disabled_until", "state")

    def __init__(self, address: RtpEngineAddress, client: NgClient) -> None:
        self.address = address
        self.client = client
        self.state = InstanceState.UP
        self.disabled_until = 0.0


class _Call:
    __slots__ = ("expires", "instance")

    def __init__(self, instance: _Instance, expires: float) -> None:
        self.instance = instance
        self.expires = expires


class RtpEnginePool:
    def __init__(
        self,
        addresses: Sequence[RtpEngineAddress],
        settings: PoolSettings | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("an rtpengine pool needs at least one instance")
        if len({address.name for address in addresses}) != len(addresses):
            raise ValueError("rtpengine instance names must be unique")
        if any(address.weight < 1 for address in addresses):
            raise ValueError("rtpengine weights must be >= 1")
        self.settings = settings if settings is not None else PoolSettings()
        self.metrics = NgMetrics(registry)
        self._instances = [self._make_instance(address) for address in addresses]
        self._calls: dict[str, _Call] = {}
        self._probes: set[asyncio.Task[bool]] = set()

    def _make_instance(self, address: RtpEngineAddress) -> _Instance:
        client = NgClient(
            address.host,
            address.port,
            name=address.name,
            instance_prefix=self.settings.instance_prefix,
            timeout=self.settings.timeout,
            attempts=self.settings.attempts,
            metrics=self.metrics.instance(address.name),
        )
        return _Instance(address, client)

    async def open(self) -> None:
        for instance in self._instances:
            await instance.client.open()
            instance.client.metrics.set_up(True)

    def close(self) -> None:
        for task in self._probes:
            task.cancel()
        for instance in self._instances:
            instance.client.close()

    def states(self) -> dict[str, InstanceState]:
        return {instance.address.name: instance.state for instance in self._instances}

    def instance_of(self, call_id: str) -> str | None:
        """The name of the instance holding ``call_id``, if the pool knows it."""
        call = self._calls.get(call_id)
        return None if call is None else call.instance.address.name

    async def offer(self, request: Offer) -> Reply:
        """An offer for a known call (re-INVITE) stays on its instance; a new
        call tries the instances in pick order until one takes it."""
        known = self._calls.get(request.call_id)
        if known is not None:
            reply = await self._send(known.instance, request)
            self._remember(request.call_id, known.instance)
            return reply
        failure: Exception | None = None
        for instance in self._candidates(request.call_id):
            if instance.state is InstanceState.DOWN and not await self._probe(instance):
                continue
            try:
                reply = await self._send(instance, request)
            except RtpEngineUnavailable as exc:
                failure = exc
                continue
            except NgError as exc:
                if not exc.is_overload:
                    raise
                failure = exc
                continue
            self._remember(request.call_id, instance)
            return reply
        if failure is None:
            raise NoRtpEngine("every rtpengine instance is disabled")
        raise NoRtpEngine(f"no rtpengine took call {request.call_id!r}: {failure}") from failure

    async def answer(self, request: Answer) -> Reply:
        return await self.call_request(request)

    async def query(self, request: Query) -> Reply:
        return await self.call_request(request)

    async def delete(self, request: Delete) -> Reply:
        """Deletes on the call's instance and forgets the call (unless the
        instance did not answer: a later retry must find it again)."""
        instance = self._instance_for(request.call_id)
        try:
            reply = await self._send(instance, request)
        except NgError:
            self._calls.pop(request.call_id, None)
            raise
        self._calls.pop(request.call_id, None)
        return reply

    async def call_request(self, request: CallRequest) -> Reply:
        """Any request about an existing call, on that call's instance."""
        instance = self._instance_for(request.call_id)
        reply = await self._send(instance, request)
        if request.call_id in self._calls:
            self._remember(request.call_id, instance)
        return reply

    async def ping_all(self) -> dict[str, bool]:
        """Ping every instance that is up or due for a re-check; True if it answered."""
        now = self._now()
        due = [i for i in self._instances if i.state is InstanceState.UP or i.disabled_until <= now]
        results = await asyncio.gather(*(self._probe(instance) for instance in due))
        return {instance.address.name: ok for instance, ok in zip(due, results, strict=True)}

    async def monitor(self) -> None:
        """Ping all instances every ``ping_interval`` until cancelled."""
        while True:
            await self.ping_all()
            self._forget_expired(self._now())
            await asyncio.sleep(self.settings.ping_interval)

    async def _send(self, instance: _Instance, request: Offer | CallRequest) -> Reply:
        try:
            return await instance.client.request(request)
        except RtpEngineUnavailable:
            self._disable(instance)
            raise

    async def _probe(self, instance: _Instance) -> bool:
        if instance.state is InstanceState.DOWN:
            # Push the re-check time forward first, so that concurrent calls
            # skip this instance instead of all pinging it at once.
            instance.disabled_until = self._now() + self.settings.disable_seconds
        try:
            await instance.client.ping()
        except (RtpEngineUnavailable, NgError):
            self._disable(instance)
            return False
        instance.state = InstanceState.UP
        instance.client.metrics.set_up(True)
        return True

    def _disable(self, instance: _Instance) -> None:
        instance.state = InstanceState.DOWN
        instance.disabled_until = self._now() + self.settings.disable_seconds
        instance.client.metrics.set_up(False)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _candidates(self, call_id: str) -> list[_Instance]:
        """Up instances, the hash pick first; disabled ones due for a re-check
        only when no instance is up."""
        now = self._now()
        up = [i for i in self._instances if i.state is InstanceState.UP]
        due = [
            i for i in self._instances if i.state is InstanceState.DOWN and i.disabled_until <= now
        ]
        if not up:
            return due  # the caller probes them in turn, as a last resort
        # A recovered instance rejoins after a ping; the call does not wait for it.
        for instance in due:
            self._probe_in_background(instance)
        first = up.index(self._pick(call_id, up))
        return up[first:] + up[:first]

    def _probe_in_background(self, instance: _Instance) -> None:
        task = asyncio.create_task(self._probe(instance))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    def _instance_for(self, call_id: str) -> _Instance:
        call = self._calls.get(call_id)
        if call is not None:
            return call.instance
        # Unknown here (e.g. warpd restarted): the stable hash points at the
        # instance the offer most likely went to.
        up = [i for i in self._instances if i.state is InstanceState.UP]
        return self._pick(call_id, up or self._instances)

    @staticmethod
    def _pick(call_id: str, instances: Sequence[_Instance]) -> _Instance:
        point = zlib.crc32(call_id.encode("utf-8", "surrogateescape"))
        point %= sum(instance.address.weight for instance in instances)
        for instance in instances:
            point -= instance.address.weight
            if point < 0:
                return instance
        raise AssertionError("weights sum covers every point")

    def _remember(self, call_id: str, instance: _Instance) -> None:
        now = self._now()
        # Re-inserting keeps the dict ordered by expiry (one TTL for all), so
        # expiry scans only the expired head.
        self._calls.pop(call_id, None)
        self._calls[call_id] = _Call(instance, now + self.settings.call_ttl)
        self._forget_expired(now)

    def _forget_expired(self, now: float) -> None:
        while self._calls:
            call_id, call = next(iter(self._calls.items()))
            if call.expires > now:
                return
            del self._calls[call_id]
