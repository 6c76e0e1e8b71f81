"""The SMSC simulator (``warpd sim-smsc``) and the ESME load generator (``warpd sim-esme``).

In-process::

    simulator = SmscSimulator(SmscConfig(port=0, response_delay=0.02, receipt_delay=0.1,
                                         outcomes={"DELIVRD": 0.9, "UNDELIV": 0.1}))
    await simulator.start()                      # simulator.port is the bound port
    simulator.set_mode(Mode(ModeKind.THROTTLE, fraction=0.5, duration=2.0))
    summary = await run_esme(EsmeConfig(port=simulator.port, system_id="sim", password="sim",
                                        count=1000, binds=2, window=50))
    assert summary.ok, summary.render()
    await simulator.stop()

As processes (``python -m warpd.sim smsc|esme`` takes the same arguments)::

    warpd sim-smsc --listen 127.0.0.1:2776 --response-delay 0.02 --receipt-delay 0.1 \\
        --outcomes DELIVRD=0.9,UNDELIV=0.1 --log smsc.jsonl --control 127.0.0.1:2777
    curl -d '{"mode": "drop", "interval": 3, "duration": 30}' 127.0.0.1:2777/mode
    warpd sim-esme --port 2775 --system-id demo --password ... --count 1000 --binds 2 \\
        --window 50 --rate 1000 --text 'OTP {n:06d}' --receipts --json
"""

from warpd.sim.carrier import Mode, ModeKind
from warpd.sim.esme import EsmeLoad, run_esme
from warpd.sim.esme_plan import EsmeConfig, EsmeSummary
from warpd.sim.smsc import SmscSimulator
from warpd.sim.smsc_config import SmscConfig

__all__ = [
    "EsmeConfig",
    "EsmeLoad",
    "EsmeSummary",
    "Mode",
    "ModeKind",
    "SmscConfig",
    "SmscSimulator",
    "run_esme",
]
