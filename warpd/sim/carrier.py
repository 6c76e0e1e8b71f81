"""What the simulated carrier decides per message: its ids, the receipt outcome, the mode.

Pure policy over frozen data, so the reliability suite can reason about it
and the tests can drive it without a socket: ``MessageIds`` issues carrier
ids, ``Outcomes`` draws a receipt stat from the configured mix, and ``Mode``
is the fault the operator (or a test) has switched on.
"""

from __future__ import annotations

import bisect
import random
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from protocols.smpp.constants import CommandId, CommandStatus, MessageState
from protocols.smpp.dlr import STATE_BY_STAT

ID_FORMATS = ("hex", "dec", "uuid")
_HEADER = struct.Struct(">IIII")
_NO_SUCH_COMMAND = 0x000000F5


class MessageIds:
    """Carrier message ids, unique within one simulator run (and, in practice, across runs).

    hex and dec count up from the start time in microseconds, so a restarted
    simulator does not hand out an id the previous run already used.
    """

    __slots__ = ("_format", "_next")

    def __init__(self, id_format: str, start: int) -> None:
        if id_format not in ID_FORMATS:
            raise ValueError(f"id_format must be one of {', '.join(ID_FORMATS)}, not {id_format!r}")
        self._format = id_format
        self._next = start

    def next_id(self) -> str:
        if self._format == "uuid":
            return str(uuid.uuid4())
        value = self._next
        self._next = value + 1
        return f"{value:x}" if self._format == "hex" else str(value)


def parse_outcomes(text: str) -> dict[str, float]:
    """``DELIVRD=0.9,UNDELIV=0.1`` -> ``{"DELIVRD": 0.9, "UNDELIV": 0.1}``."""
    outcomes: dict[str, float] = {}
    for item in text.split(","):
        stat, sep, weight = item.strip().partition("=")
        if not sep:
            raise ValueError(f"outcome {item!r} is not STAT=WEIGHT")
        try:
            outcomes[stat.strip().upper()] = float(weight)
        except ValueError:
            raise ValueError(f"outcome weight {weight!r} is not a number") from None
    return outcomes


class Outcomes:
    """Draws a receipt stat (Appendix B spelling) by weight from the configured mix."""

    __slots__ = ("_bounds", "_random", "_stats", "_total")

    def __init__(self, weights: Mapping[str, float], rng: random.Random) -> None:
        if not weights:
            raise ValueError("outcomes need at least one stat")
        stats: list[tuple[str, MessageState]] = []
        bounds: list[float] = []
        total = 0.0
        for stat, weight in weights.items():
            state = STATE_BY_STAT.get(stat.upper())
            if state is None:
                raise ValueError(f"unknown receipt stat {stat!r}")
            if weight < 0:
                raise ValueError(f"outcome weight for {stat} must be >= 0")
            if weight == 0:
                continue
            total += weight
            stats.append((stat.upper(), state))
            bounds.append(total)
        if total <= 0:
            raise ValueError("outcome weights sum to zero")
        self._stats = tuple(stats)
        self._bounds = tuple(bounds)
        self._total = total
        self._random = rng

    def draw(self) -> tuple[str, MessageState]:
        if len(self._stats) == 1:
            return self._stats[0]
        index = bisect.bisect_right(self._bounds, self._random.random() * self._total)
        return self._stats[min(index, len(self._stats) - 1)]


class ModeKind(Enum):
    """The faults the simulator plays on command (issue 12's carrier faults)."""

    NORMAL = "normal"
    THROTTLE = "throttle"  # answer ESME_RTHROTTLED
    REJECT = "reject"  # answer a permanent status, no receipt
    SILENT = "silent"  # read everything, write nothing
    DROP = "drop"  # close every connection (once, or every `interval` s); binds accepted again
    SLOW = "slow"  # `extra_delay` s more before each submit_sm_resp
    GARBAGE = "garbage"  # a garbage PDU after every `every`-th submit_sm_resp
    RECEIPT_FIRST = "receipt_first"  # the receipt goes out before the submit_sm_resp


@dataclass(frozen=True, slots=True)
class Mode:
    """A mode and its parameters; ``duration`` (s) returns the simulator to normal after it."""

    kind: ModeKind = ModeKind.NORMAL
    #: reject: the command_status answered.
    status: int = CommandStatus.ESME_RINVDSTADR
    #: throttle / reject: the share of submits affected (the rest are answered normally).
    fraction: float = 1.0
    #: throttle: instead of a share, refuse what exceeds this many submits/s per bind
    #: (a token bucket holding one second's worth), as a carrier's TPS cap does.
    tps: float | None = None
    #: slow: seconds added to response_delay.
    extra_delay: float = 0.0
    #: garbage: one garbage PDU per this many submits.
    every: int = 10
    #: drop: seconds between drops; None drops once.
    interval: float | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be within 0..1")
        if self.extra_delay < 0 or self.every < 1:
            raise ValueError("extra_delay must be >= 0 and every >= 1")
        for name, value in (
            ("interval", self.interval),
            ("duration", self.duration),
            ("tps", self.tps),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0")


NORMAL = Mode()
_MODE_KEYS = frozenset(
    {"status", "fraction", "tps", "extra_delay", "every", "interval", "duration"}
)


def mode_from_json(data: Mapping[str, Any]) -> Mode:
    """A Mode from the control port's JSON; ``status`` may be a name or a number."""
    try:
        kind = ModeKind(data["mode"])
    except (KeyError, ValueError):
        names = ", ".join(k.value for k in ModeKind)
        raise ValueError(f"mode must be one of {names}") from None
    unknown = set(data) - _MODE_KEYS - {"mode"}
    if unknown:
        raise ValueError(f"unknown mode parameters: {', '.join(sorted(unknown))}")
    params: dict[str, Any] = {key: data[key] for key in _MODE_KEYS if key in data}
    if "status" in params:
        params["status"] = parse_status(params["status"])
    for key in ("fraction", "tps", "extra_delay", "interval", "duration"):
        if key in params and not isinstance(params[key], int | float):
            raise ValueError(f"{key} must be a number")
    if "every" in params and not isinstance(params["every"], int):
        raise ValueError("every must be an integer")
    return Mode(kind, **params)


def parse_status(value: object) -> int:
    """``"ESME_RINVDSTADR"``, ``"0x0b"`` or ``11`` -> 11."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        if name in CommandStatus.__members__:
            return int(CommandStatus[name])
        try:
            return int(name, 0)
        except ValueError:
            pass
    raise ValueError(f"unknown command_status {value!r}")


def status_name(status: int) -> str:
    """The spec's name of a command_status, or its hex value for a vendor code."""
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08x}"


def garbage_pdu(n: int, noise: bytes) -> bytes:
    """The ``n``-th garbage PDU: framed, so the peer must answer it with an error.

    Odd ones carry a command_id no one defines (generic_nack ESME_RINVCMDID is
    the answer); even ones are a deliver_sm whose service_type runs off the end
    of the PDU (its C-octet string has no terminator). Their sequence numbers
    sit at the top of the range, away from the session's own.
    """
    sequence = 0x7FFFFF00 | (n & 0xFF)
    if n % 2:
        command_id, body = _NO_SUCH_COMMAND, noise
    else:
        command_id, body = CommandId.DELIVER_SM, b"\xff" * 3
    return _HEADER.pack(16 + len(body), command_id, 0, sequence) + body
