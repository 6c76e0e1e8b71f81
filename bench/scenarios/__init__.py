"""The system scenarios, in the order the report shows them (issue 11)."""

from __future__ import annotations

from bench.scenarios import http, memory, pipelining, sip, sms
from bench.scenarios.common import Scenario

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (sms.SCENARIO, pipelining.SCENARIO, http.SCENARIO, sip.SCENARIO, memory.SCENARIO)
}
