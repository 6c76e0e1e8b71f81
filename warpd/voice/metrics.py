"""Prometheus series of the voice service (``warpd_voice_*``).

Calls per second is ``rate(warpd_voice_call_attempts_total[1m])``; setup time
is INVITE received to answer, post-dial delay INVITE to the first 18x.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from warpd.voice.cdr import Cdr

_SETUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class VoiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.active = Gauge("warpd_voice_active_calls", "Calls in progress", registry=r)
        self.attempts = Counter("warpd_voice_call_attempts", "INVITEs received", registry=r)
        self.answers = Counter("warpd_voice_call_answers", "Calls answered", registry=r)
        self.failures = Counter(
            "warpd_voice_call_failures", "Calls not answered, by final SIP status", ["status"],
            registry=r,
        )  # fmt: skip
        self.setup = Histogram(
            "warpd_voice_setup_seconds", "INVITE received to answer", buckets=_SETUP_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.post_dial_delay = Histogram(
            "warpd_voice_post_dial_delay_seconds", "INVITE received to the first 18x",
            buckets=_SETUP_BUCKETS, registry=r,
        )  # fmt: skip
        self.malformed = Counter(
            "warpd_voice_malformed_messages", "SIP input refused, by whether it was answered",
            ["answered"], registry=r,
        )  # fmt: skip

    def call_answered(self, cdr: Cdr) -> None:
        self.answers.inc()
        if cdr.answer_at is not None:
            self.setup.observe((cdr.answer_at - cdr.start_at).total_seconds())

    def call_finished(self, cdr: Cdr) -> None:
        self.active.dec()
        if cdr.ring_at is not None:
            self.post_dial_delay.observe((cdr.ring_at - cdr.start_at).total_seconds())
        if cdr.answer_at is None:
            self.failures.labels(str(cdr.sip_code or 487)).inc()
