"""Reassembling concatenated MO parts (3GPP TS 23.040 section 9.2.3.24.1/.8, SMPP 3.4 5.3.2.22-24).

Parts are grouped by (source, destination, reference) and may arrive out of
order or more than once.  The caller passes ``now`` (monotonic seconds): a
group that is still incomplete ``timeout`` seconds after its first part is
handed back by ``expire(now)`` so the glue can deliver the parts as they are.
Memory is bounded by ``max_groups``: when full, the oldest group is evicted
(and reported by the next ``expire``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.smpp.flags import ESM_CLASS_UDHI
from protocols.smpp.segment import Sar
from protocols.smpp.tlv import Tag, Tlv, tlv_int

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08


@dataclass(frozen=True, slots=True)
class Concat:
    """Which part of which concatenated message a body is."""

    reference: int
    total: int
    seqnum: int

    @classmethod
    def from_sar(cls, sar: Sar) -> Concat | None:
        """The SAR TLV values as a Concat, or None when they are inconsistent."""
        return _checked(sar.msg_ref_num, sar.total_segments, sar.segment_seqnum)


def _checked(reference: int, total: int, seqnum: int) -> Concat | None:
    # 23.040 9.2.3.24.1: a zero total, or a seqnum of zero or above the total,
    # means "ignore the whole information element".
    if total == 0 or not 1 <= seqnum <= total:
        return None
    return Concat(reference, total, seqnum)


def split_udh(short_message: bytes) -> tuple[bytes, bytes]:
    """(UDH including its UDHL octet, body) of a short_message sent with esm_class UDHI.

    A UDHL pointing past the end yields no UDH: the octets are all body.
    """
    if not short_message:
        return b"", b""
    end = 1 + short_message[0]
    if end > len(short_message):
        return b"", short_message
    return short_message[:end], short_message[end:]


def concat_from_udh(udh: bytes) -> Concat | None:
    """The concatenation IE (IEI 0x00 or 0x08) of a UDH, if any and well formed."""
    i, end = 1, len(udh)
    while i + 2 <= end:
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2 : i + 2 + length]
        if len(value) < length:
            return None
        if iei == IEI_CONCAT_8 and length == 3:
            return _checked(value[0], value[1], value[2])
        if iei == IEI_CONCAT_16 and length == 4:
            return _checked((value[0] << 8) | value[1], value[2], value[3])
        i += 2 + length
    return None


def concat_of(
    esm_class: int, short_message: bytes, tlvs: tuple[Tlv, ...]
) -> tuple[Concat | None, bytes]:
    """(which part, body without UDH) of a deliver_sm / submit_sm's short_message.

    UDHI set: the concatenation IE of the UDH (the body loses the UDH).
    Otherwise the three SAR TLVs, when all are present.  None: a whole message.
    """
    if esm_class & ESM_CLASS_UDHI:
        udh, body = split_udh(short_message)
        return concat_from_udh(udh), body
    ref = tlv_int(tlvs, Tag.SAR_MSG_REF_NUM)
    total = tlv_int(tlvs, Tag.SAR_TOTAL_SEGMENTS)
    seqnum = tlv_int(tlvs, Tag.SAR_SEGMENT_SEQNUM)
    if ref is None or total is None or seqnum is None:
        return None, short_message
    return _checked(ref, total, seqnum), short_message


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A complete message: the bodies joined in seqnum order (UDHs removed)."""

    source: str
    destination: str
    reference: int
    data_coding: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A group that timed out or was evicted: the parts that did arrive, by seqnum."""

    source: str
    destination: str
    reference: int
    total: int
    data_coding: int
    parts: tuple[tuple[int, bytes], ...]


_Key = tuple[str, str, int]


@dataclass(slots=True)
class _Group:
    total: int
    data_coding: int
    deadline: float
    bodies: dict[int, bytes] = field(default_factory=dict)

    def incomplete(self, key: _Key) -> Incomplete:
        parts = tuple(sorted(self.bodies.items()))
        return Incomplete(key[0], key[1], key[2], self.total, self.data_coding, parts)


class Reassembler:
    """Collects parts into whole messages; one deadline per group, oldest first."""

    def __init__(self, *, timeout: float = 60.0, max_groups: int = 10_000) -> None:
        if timeout <= 0 or max_groups < 1:
            raise ValueError("timeout must be > 0 and max_groups >= 1")
        self._timeout = timeout
        self._max_groups = max_groups
        # Insertion order is deadline order (same timeout, monotonic now), so
        # the first group is always the next to expire.
        self._groups: dict[_Key, _Group] = {}
        self._evicted: list[Incomplete] = []

    def __len__(self) -> int:
        return len(self._groups)

    def add(
        self,
        source: str,
        destination: str,
        concat: Concat,
        body: bytes,
        *,
        now: float,
        data_coding: int = 0,
    ) -> Reassembled | None:
        """Store one part; the whole message when this part completes it."""
        key = (source, destination, concat.reference)
        group = self._groups.get(key)
        if group is not None and group.total != concat.total:
            # Same reference reused for a different message: the old group
            # can no longer complete.
            self._evicted.append(group.incomplete(key))
            del self._groups[key]
            group = None
        if group is None:
            if len(self._groups) >= self._max_groups:
                oldest = next(iter(self._groups))
                self._evicted.append(self._groups.pop(oldest).incomplete(oldest))
            group = _Group(concat.total, data_coding, now + self._timeout)
            self._groups[key] = group
        # A duplicate keeps the first copy: retransmissions carry the same body.
        group.bodies.setdefault(concat.seqnum, body)
        if len(group.bodies) < group.total:
            return None
        del self._groups[key]
        body_all = b"".join(group.bodies[i] for i in range(1, group.total + 1))
        return Reassembled(source, destination, concat.reference, group.data_coding, body_all)

    def get_timer(self) -> float | None:
        """When ``expire`` next has something to return (-inf: evicted groups are waiting)."""
        if self._evicted:
            return float("-inf")
        first = next(iter(self._groups.values()), None)
        return None if first is None else first.deadline

    def expire(self, now: float) -> list[Incomplete]:
        """Groups whose deadline has passed, plus any evicted since the last call."""
        out, self._evicted = self._evicted, []
        while self._groups:
            key, group = next(iter(self._groups.items()))
            if group.deadline > now:
                break
            del self._groups[key]
            out.append(group.incomplete(key))
        return out
