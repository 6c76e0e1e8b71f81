"""The simulator's configuration, and the receipt a submit is due (frozen data)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from protocols.smpp.constants import MessageState
from warpd.sim.carrier import ID_FORMATS, Outcomes


@dataclass(frozen=True, slots=True)
class ReceiptDue:
    """The receipt a submit will get: its stat, drawn when the submit came, and when that was."""

    stat: str
    state: MessageState
    submitted: float  # wall-clock time, for the receipt's "submit date"


@dataclass(frozen=True, slots=True)
class SmscConfig:
    host: str = "127.0.0.1"
    port: int = 2776  # 0: any free port (``SmscSimulator.port`` tells which)
    system_id: str = "sim"
    password: str = "sim"  # binds with other credentials: ESME_RINVPASWD, then close
    response_delay: float = 0.0  # seconds before each submit_sm_resp
    receipt_delay: float = 0.0  # seconds after the resp before its receipt
    outcomes: Mapping[str, float] = field(default_factory=lambda: {"DELIVRD": 1.0})
    id_format: str = "hex"  # hex | dec | uuid
    window: int = 100  # deliver_sm in flight per bind
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log: Path | None = None  # JSON lines: one per submit answered, receipt and MO
    seed: int | None = None  # for reproducible outcome and fraction draws
    deliver_timeout: float = 10.0  # response_timer of our deliver_sm
    enquire_link_interval: float | None = 30.0

    def __post_init__(self) -> None:
        if self.response_delay < 0 or self.receipt_delay < 0:
            raise ValueError("delays must be >= 0")
        if self.window < 1:
            raise ValueError("window must be >= 1")
        if self.id_format not in ID_FORMATS:
            raise ValueError(f"id_format must be one of {', '.join(ID_FORMATS)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        Outcomes(self.outcomes, random.Random(0))  # validates the mix
