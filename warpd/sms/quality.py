"""Each connector's recent delivery ratio, for least-cost routing's quality weight.

Every reload interval the receipts counted since the last one move an
exponentially weighted ratio of delivered to final receipts; a connector
with too few receipts in an interval keeps its previous figure (and one
never measured has none, so the router falls back to sms_costs.quality).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

# How much one interval's ratio moves the figure; about the last ten intervals count.
WEIGHT = 0.2
MIN_RECEIPTS = 20


class DeliveryRatio:
    def __init__(self) -> None:
        self._seen: Counter[tuple[int, str]] = Counter()
        self.ratio: dict[int, float] = {}

    def update(self, receipts: Mapping[tuple[int, str], int]) -> None:
        """``receipts``: (connector_id, state) -> receipts counted since start."""
        delivered: Counter[int] = Counter()
        final: Counter[int] = Counter()
        for key, total in receipts.items():
            new = total - self._seen[key]
            self._seen[key] = total
            connector_id, state = key
            final[connector_id] += new
            if state == "delivered":
                delivered[connector_id] += new
        for connector_id, count in final.items():
            if count < MIN_RECEIPTS:
                continue
            now = delivered[connector_id] / count
            before = self.ratio.get(connector_id)
            self.ratio[connector_id] = now if before is None else before + WEIGHT * (now - before)
