"""The load generator's configuration, what it sends, and its summary: pure, no I/O.

``EsmeConfig`` says what to offer, ``Plan`` turns message *i* into its
submit_sm parts (destination from a list or a range, text in GSM 03.38 or
UCS-2, split with an 8-bit concatenation UDH when multipart), and
``EsmeSummary`` is what a run reports, readable or as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from protocols.smpp.pdu import SubmitSm
from protocols.smpp.segment import ConcatMode, split_text
from protocols.smpp.text import Encoding
from warpd.sim.messages import address_ton

BINDS = ("transceiver", "transmitter")
# Text repeated until it needs this many parts when multipart asks for a long message.
_MULTIPART_PARTS = 3


@dataclass(frozen=True, slots=True)
class EsmeConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "warpd"
    password: str = ""
    system_type: str = ""
    #: transceiver, or transmitter (then one receiver bind takes the receipts and MO).
    bind: str = "transceiver"
    binds: int = 1
    window: int = 10
    count: int = 100
    #: Offered messages per second; None offers as fast as the windows allow.
    rate: float | None = None
    #: Offer messages for this many seconds instead of ``count`` of them.
    duration: float | None = None
    #: With count 0 (and no duration): keep the binds open this long, idle (memory per bind).
    hold: float = 0.0
    source: str = "WARPD"
    #: One number, a comma list, or a range ``447700900000-447700900999`` cycled through.
    destination: str = "447700900001"
    #: ``{n}`` in it (``{n:06d}``...) is replaced by the message's index.
    text: str = "Your code is 123456"
    ucs2: bool = False
    #: Split a long text with UDH, each part a submit_sm; a short text is repeated to 3 parts.
    multipart: bool = False
    registered_delivery: int = 1
    #: Wait for a receipt per part (registered_delivery must ask for final receipts).
    receipts: bool = True
    receipt_timeout: float = 30.0  # after the last response
    response_timeout: float = 10.0  # per submit_sm; a timeout is final, not resubmitted
    #: Keep reconnecting this long after losing every bind (a restarting gateway).
    reconnect_for: float = 30.0
    enquire_link_interval: float = 30.0
    tls: bool = False  # the certificate is not verified: a test tool for your own gateway
    log: Path | None = None  # JSON lines: one per submit_sm_resp, one per receipt

    def __post_init__(self) -> None:
        if self.bind not in BINDS:
            raise ValueError(f"bind must be one of {', '.join(BINDS)}, not {self.bind!r}")
        if self.binds < 1 or self.window < 1 or self.count < 0:
            raise ValueError("binds and window must be >= 1 and count >= 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0 (or None for open loop)")
        if (self.duration is not None and self.duration <= 0) or self.hold < 0:
            raise ValueError("duration must be > 0 and hold >= 0")
        if self.receipts and self.registered_delivery & 0x03 != 1:
            raise ValueError("waiting for receipts needs registered_delivery 1 (final receipts)")
        if min(self.receipt_timeout, self.response_timeout, self.reconnect_for) <= 0:
            raise ValueError("timeouts must be > 0")
        parse_destinations(self.destination)  # validates the spec
        if "{n" in self.text:
            try:
                self.text.format(n=0)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"text template {self.text!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Destinations:
    """A list of numbers, or a range of ``count`` numbers from ``first`` (``width`` digits)."""

    numbers: tuple[str, ...] = ()
    first: int = 0
    count: int = 0
    width: int = 0

    def at(self, index: int) -> str:
        if self.numbers:
            return self.numbers[index % len(self.numbers)]
        return str(self.first + index % self.count).zfill(self.width)


def parse_destinations(spec: str) -> Destinations:
    """``"a,b"`` or a range ``"447700900000-447700900999"``."""
    spec = spec.strip()
    low, sep, high = spec.partition("-")
    if sep:
        if not (low.isdigit() and high.isdigit() and len(low) == len(high) and low <= high):
            raise ValueError(f"destination range {spec!r} must be two numbers of equal length")
        return Destinations(first=int(low), count=int(high) - int(low) + 1, width=len(low))
    numbers = tuple(n.strip() for n in spec.split(",") if n.strip())
    if not numbers:
        raise ValueError("destination is empty")
    return Destinations(numbers)


class Plan:
    """Message ``i``'s submit_sm parts (sequence_number 0: the session numbers them).

    A text with ``{n}`` in it is a template: message ``i`` carries ``text.format(n=i)``,
    which lets a reconciliation tell every message apart in the carrier's log.
    """

    __slots__ = ("_bodies", "_config", "_destinations", "_encoding", "_template")

    def __init__(self, config: EsmeConfig) -> None:
        self._config = config
        self._encoding = Encoding.UCS2 if config.ucs2 else Encoding.GSM7
        self._template = config.text if "{n" in config.text else None
        # Without a template every message has the same bodies: split once.
        self._bodies = None if self._template is not None else self._split(config.text)
        self._destinations = parse_destinations(config.destination)

    def _split(self, text: str) -> tuple[tuple[bytes, ...], bool, int]:
        """The part bodies of ``text``, whether they carry a UDH, and their data_coding."""
        if self._config.multipart:
            text = _long_text(text, self._encoding)
        parts = split_text(text, ref=0, mode=ConcatMode.UDH8, encoding=self._encoding)
        first = parts[0]
        return tuple(part.short_message for part in parts), first.esm_class_udhi, first.data_coding

    def parts(self, index: int) -> list[SubmitSm]:
        config = self._config
        if self._template is not None:
            bodies, udhi, data_coding = self._split(self._template.format(n=index))
        else:
            assert self._bodies is not None
            bodies, udhi, data_coding = self._bodies
        destination = self._destinations.at(index)
        ton = address_ton(destination)
        source_ton = address_ton(config.source)
        ref = bytes((index & 0xFF,))
        return [
            SubmitSm(
                source_addr_ton=source_ton,
                source_addr_npi=1,
                source_addr=config.source,
                dest_addr_ton=ton,
                dest_addr_npi=1,
                destination_addr=destination,
                esm_class=0x40 if udhi else 0,
                registered_delivery=config.registered_delivery,
                data_coding=data_coding,
                # UDH 05 00 03 ref total seq: the reference is octet 3.
                short_message=body[:3] + ref + body[4:] if udhi else body,
            )
            for body in bodies
        ]


def _long_text(text: str, encoding: Encoding) -> str:
    per_part = 67 if encoding is Encoding.UCS2 else 153
    wanted = per_part * (_MULTIPART_PARTS - 1) + 1
    if len(text) >= wanted:
        return text
    seed = text or "x"
    return (seed + " ") * (wanted // (len(seed) + 1) + 1)


@dataclass(frozen=True, slots=True)
class EsmeSummary:
    """What a run did; ``ok`` is the exit criterion (every part ESME_ROK, every receipt matched)."""

    messages: int
    parts: int
    submitted: int  # submit_sm sent, resubmissions included
    resubmitted: int  # after ESME_RTHROTTLED / ESME_RMSGQFUL or a lost connection
    responses_by_status: dict[str, int]
    timeouts: int
    receipts_expected: bool
    receipts: int
    receipts_by_stat: dict[str, int]
    receipt_ids_matched: int  # the receipt's id is one a submit_sm_resp gave
    unmatched_receipts: int
    duplicate_receipts: int
    receipts_before_response: int  # matched, though they overtook their submit_sm_resp
    receipts_missing: int
    mo_received: int
    reconnects: int
    submit_to_resp_p50_ms: float | None
    submit_to_resp_p99_ms: float | None
    submit_to_receipt_p50_ms: float | None
    submit_to_receipt_p99_ms: float | None
    elapsed_s: float
    rate: float  # responses per second
    errors: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        all_ok = self.responses_by_status.get("ESME_ROK", 0) == self.parts and not self.timeouts
        if not all_ok or self.errors:
            return False
        if not self.receipts_expected:
            return True
        return (
            self.receipt_ids_matched == self.parts
            and not self.unmatched_receipts
            and not self.receipts_missing
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = list(self.errors)
        data["ok"] = self.ok
        return data

    def to_json(self) -> str:
        return orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2).decode()

    def render(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.responses_by_status.items()))
        stats = ", ".join(f"{k} {v}" for k, v in sorted(self.receipts_by_stat.items()))
        lines = [
            f"messages   {self.messages} ({self.parts} parts), {self.submitted} submit_sm sent,"
            f" {self.resubmitted} resubmitted",
            f"responses  {statuses or 'none'}; {self.timeouts} timed out",
            f"latency    submit->resp p50 {ms(self.submit_to_resp_p50_ms)}"
            f" p99 {ms(self.submit_to_resp_p99_ms)}",
        ]
        if self.receipts_expected or self.receipts:
            lines += [
                f"receipts   {self.receipts} ({stats or 'none'}); {self.receipt_ids_matched}"
                f" matched, {self.unmatched_receipts} unmatched,"
                f" {self.duplicate_receipts} duplicate, {self.receipts_missing} missing",
                f"latency    submit->receipt p50 {ms(self.submit_to_receipt_p50_ms)}"
                f" p99 {ms(self.submit_to_receipt_p99_ms)}",
            ]
        if self.mo_received:
            lines.append(f"mo         {self.mo_received} received")
        if self.reconnects:
            lines.append(f"reconnects {self.reconnects}")
        lines.append(f"elapsed    {self.elapsed_s:.2f} s, {self.rate:,.0f} responses/s")
        lines += [f"error      {error}" for error in self.errors]
        lines.append("result     " + ("ok" if self.ok else "FAILED"))
        return "\n".join(lines)
