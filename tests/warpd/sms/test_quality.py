"""The delivery ratio that weighs least-cost routing."""

from __future__ import annotations

import pytest

from warpd.sms.quality import MIN_RECEIPTS, WEIGHT, DeliveryRatio


def test_ratio_moves_by_the_weight_and_ignores_thin_intervals() -> None:
    ratio = DeliveryRatio()
    ratio.update({(1, "delivered"): 90, (1, "undeliverable"): 10, (2, "delivered"): 5})
    assert ratio.ratio == {1: pytest.approx(0.9)}  # connector 2: too few receipts to say
    ratio.update({(1, "delivered"): 90 + 50, (1, "undeliverable"): 10 + 50})
    assert ratio.ratio[1] == pytest.approx(0.9 + WEIGHT * (0.5 - 0.9))
    ratio.update({(1, "delivered"): 141, (1, "undeliverable"): 60})
    assert ratio.ratio[1] == pytest.approx(0.9 + WEIGHT * (0.5 - 0.9))  # 1 new receipt only
    assert MIN_RECEIPTS > 1
