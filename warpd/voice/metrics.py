"""Prometheus series of the voice service (``warpd_voice_*``), per trunk and gateway.

Calls per second is ``rate(warpd_voice_call_attempts_total[1m])``; setup time
is INVITE received to answer, post-dial delay INVITE to the first 18x. Labels
are trunk and gateway names (``-`` before a trunk is known), bounded by what
is provisioned. RTPEngine round trips per instance are the
``warpd_rtpengine_*`` series of ``media.metrics`` in the same registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from warpd.voice.cdr import Cdr

_SETUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNKNOWN = "-"


class VoiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.active = Gauge("warpd_voice_active_calls", "Calls in progress", registry=r)
        self.shed = Counter(
            "warpd_voice_overload_refusals", "New INVITEs refused 503 while the loop ran late",
            registry=r,
        )  # fmt: skip
        self.loop_lag = Gauge(
            "warpd_voice_loop_lag_seconds", "Smoothed lateness of the event loop", registry=r
        )
        self.attempts = Counter(
            "warpd_voice_call_attempts", "INVITEs received, by trunk", ["trunk"], registry=r
        )
        self.answers = Counter(
            "warpd_voice_call_answers", "Calls answered", ["trunk", "gateway"], registry=r
        )
        self.failures = Counter(
            "warpd_voice_call_failures", "Calls not answered, by final SIP status",
            ["trunk", "gateway", "status"], registry=r,
        )  # fmt: skip
        self.setup = Histogram(
            "warpd_voice_setup_seconds", "INVITE received to answer", ["trunk", "gateway"],
            buckets=_SETUP_BUCKETS, registry=r,
        )  # fmt: skip
        self.post_dial_delay = Histogram(
            "warpd_voice_post_dial_delay_seconds", "INVITE received to the first 18x",
            ["trunk", "gateway"], buckets=_SETUP_BUCKETS, registry=r,
        )  # fmt: skip
        self.malformed = Counter(
            "warpd_voice_malformed_messages", "SIP input refused, by whether it was answered",
            ["answered"], registry=r,
        )  # fmt: skip
        self.dtmf = Counter(
            "warpd_voice_info_dtmf", "SIP INFO digits played as RFC 4733, by the sending side",
            ["side"], registry=r,
        )  # fmt: skip
        self.digest_failures = Counter(
            "warpd_voice_digest_failures", "Wrong digest responses and unknown usernames",
            registry=r,
        )  # fmt: skip
        self.digest_lockouts = Counter(
            "warpd_voice_digest_lockouts", "Digest lockouts begun, by what was locked out",
            ["scope"], registry=r,
        )  # fmt: skip
        self.digest_locked = Counter(
            "warpd_voice_digest_locked_refusals", "Requests refused 403 during a digest lockout",
            registry=r,
        )  # fmt: skip
        self._answered = 0

    @property
    def answered(self) -> int:
        """Calls answered since start, all trunks (tests and logs)."""
        return self._answered

    def refused(self, trunk: str, status: int, gateway: str = UNKNOWN) -> None:
        """A call that got no answer: ``gateway`` is the last one tried (``-``: none)."""
        self.failures.labels(trunk, gateway, str(status)).inc()

    def call_answered(self, cdr: Cdr, trunk: str, gateway: str) -> None:
        self._answered += 1
        self.answers.labels(trunk, gateway).inc()
        if cdr.answer_at is not None:
            seconds = (cdr.answer_at - cdr.start_at).total_seconds()
            self.setup.labels(trunk, gateway).observe(seconds)

    def call_finished(self, cdr: Cdr, trunk: str, gateway: str) -> None:
        self.active.dec()
        if cdr.ring_at is not None:
            self.post_dial_delay.labels(trunk, gateway).observe(
                (cdr.ring_at - cdr.start_at).total_seconds()
            )
        if cdr.answer_at is None:
            self.refused(trunk, cdr.sip_code or 487, gateway)
