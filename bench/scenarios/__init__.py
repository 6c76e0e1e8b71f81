"""The system scenarios, in the order the report shows them (issue 11).

A new scenario is a module with a ``SCENARIO`` (``bench.scenarios.common.Scenario``)
added to ``ORDER``: ``python -m bench all``, ``smoke``, ``list`` and the report's
block order all read it from here.
"""

from __future__ import annotations

from bench.scenarios import http, memory, otp, pipelining, scaleout, sip, sms, soak
from bench.scenarios.common import Scenario

ORDER = (sms, pipelining, http, sip, memory, soak, otp, scaleout)
SCENARIOS: dict[str, Scenario] = {module.SCENARIO.name: module.SCENARIO for module in ORDER}
