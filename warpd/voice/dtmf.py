"""SIP INFO DTMF, turned into RFC 4733 events by RTPEngine's ``play DTMF``.

Two bodies are in the field: ``application/dtmf-relay`` (Cisco's, the common
one: ``Signal=5`` and ``Duration=160`` lines) and ``application/dtmf`` (the
digit alone, RFC 2976-era gateways). The digit is injected into the media of
the side that sent the INFO, so the other side hears it as an RFC 4733 event
in its RTP, which is what carriers and PBXs that never saw the INFO expect.
Digits from RTP (RFC 4733) need nothing: RTPEngine relays them with the audio.
"""

from __future__ import annotations

from dataclasses import dataclass

RELAY = "application/dtmf-relay"
PLAIN = "application/dtmf"
# RFC 4733 section 3.2 events 0-15 by their usual names; 16 is hook flash.
EVENTS = "0123456789*#ABCD"
# rtpengine takes 100..5000 ms (its default is 250).
MIN_MS, MAX_MS = 100, 5000


@dataclass(frozen=True, slots=True)
class Digit:
    code: str  # one of EVENTS, as play DTMF's ``code`` takes it
    duration_ms: int | None = None


def info_digit(mime: str | None, body: bytes) -> Digit | None:
    """The digit an INFO carries, or None when its body is not DTMF (or not valid)."""
    if mime == RELAY:
        fields = _fields(body)
        signal, duration = fields.get("signal", ""), fields.get("duration", "")
    elif mime == PLAIN:
        signal, duration = body.decode("ascii", "replace").strip(), ""
    else:
        return None
    code = _code(signal)
    if code is None:
        return None
    ms = int(duration) if duration.isdigit() else None
    return Digit(code, None if ms is None else min(max(ms, MIN_MS), MAX_MS))


def _fields(body: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in body.decode("ascii", "replace").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _code(signal: str) -> str | None:
    signal = signal.upper()
    if len(signal) == 1 and signal in EVENTS:
        return signal
    # Some gateways send the RFC 4733 event number instead of the digit.
    if signal.isdigit() and int(signal) < len(EVENTS):
        return EVENTS[int(signal)]
    return None
