"""What the suite injected and what came of it: the rows of ``python -m bench reliability``.

Each test records its figures here; the session writes them as JSON to
``$WARPD_RELIABILITY_OUT`` (bench/reliability.py sets it and renders the table),
and ``test_report`` renders the same table from them inside the test command.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Scales every bounded fault window and fuzz budget (``python -m bench reliability --soak``).
SCALE = float(os.environ.get("WARPD_RELIABILITY_SCALE", "1"))


@dataclass(slots=True)
class Fault:
    """One fault injected under load, and the message accounting after it."""

    kind: str
    injected: int = 0
    offered: int = 0
    acknowledged: int = 0
    delivered: int = 0
    duplicated: int = 0  # extra upstream submits (at least once), never extra charges
    lost: int = 0
    charged_twice: int = 0
    note: str = ""


@dataclass(slots=True)
class Fuzz:
    target: str
    inputs: int = 0
    crashes: int = 0
    note: str = ""


@dataclass(slots=True)
class Hostile:
    case: str
    outcome: str
    ok: bool = True


@dataclass(slots=True)
class Tally:
    faults: list[Fault] = field(default_factory=list)
    fuzz: list[Fuzz] = field(default_factory=list)
    hostile: list[Hostile] = field(default_factory=list)

    def as_json(self) -> dict[str, list[dict[str, object]]]:
        return {
            "faults": [asdict(f) for f in self.faults],
            "fuzz": [asdict(f) for f in self.fuzz],
            "hostile": [asdict(h) for h in self.hostile],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_json(), indent=1) + "\n")


#: The session's records (one process runs the whole suite).
TALLY = Tally()


def scaled(seconds: float) -> float:
    return seconds * SCALE
