"""What several instances share, as pure functions of what the leases say."""

from __future__ import annotations

import math
from collections.abc import Mapping


def fair_share(binds: int, live_instances: int) -> int:
    """The most carrier binds of one connector an instance keeps while others want some.

    Rounded up, so every slot is used: three binds over two instances are
    two and one, never one and one with a slot idle.
    """
    return math.ceil(binds / max(1, live_instances))


def surplus(
    binds: int, held_here: int, held_by: Mapping[str, int], live: frozenset[str], me: str
) -> bool:
    """Should instance ``me`` give one of its binds of a connector back?

    Only when it holds more than its share and another live instance holds
    fewer: giving one back when nobody is short would drop a bind for nothing.
    """
    share = fair_share(binds, len(live | {me}))
    if held_here <= share:
        return False
    return any(held_by.get(instance, 0) < share for instance in live - {me})


def throughput_share(local_binds: int, remote_binds: int) -> float:
    """The part of an SMPP user's throughput this instance may take.

    In proportion to the user's binds here: a load balancer spreads a
    customer's binds, and customers spread their traffic over their binds,
    so the user's limit holds in total without a round trip per message.
    """
    if local_binds <= 0:
        return 1.0
    return local_binds / (local_binds + max(0, remote_binds))
