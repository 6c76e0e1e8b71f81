"""The SMSC simulator (``warpd sim-smsc``) and the ESME load generator (``warpd sim-esme``)."""

from warpd.sim.carrier import Mode, ModeKind
from warpd.sim.esme import EsmeLoad, run_esme
from warpd.sim.esme_plan import EsmeConfig, EsmeSummary
from warpd.sim.smsc import SmscConfig, SmscSimulator

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
