"""Seeded byte mutations for the socket fuzzer: random frames and mutated valid ones."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence


def flip(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def splice(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = rng.choice(
        [b"\0", b"\xff", b"%s", b"\r\n", b"{", b'"', rng.randbytes(rng.randint(1, 16))]
    )
    return data[:at] + junk * rng.randint(1, 8) + data[at:]


def cut(rng: random.Random, data: bytes) -> bytes:
    a = rng.randrange(len(data) + 1)
    b = rng.randrange(a, len(data) + 1)
    return data[:a] + data[b:]


def interesting_int(rng: random.Random, data: bytes) -> bytes:
    """Overwrite four bytes with a boundary value (a length, an id, a status)."""
    if len(data) < 4:
        return data
    at = rng.randrange(len(data) - 3)
    value = rng.choice([0, 1, 15, 16, 17, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                        0xFFFFFFFF, len(data), len(data) + 1, len(data) - 1])  # fmt: skip
    return data[:at] + struct.pack(">I", value) + data[at + 4 :]


def repeat(rng: random.Random, data: bytes) -> bytes:
    return data * rng.randint(2, 20)


MUTATORS: Sequence[Callable[[random.Random, bytes], bytes]] = (
    flip, splice, cut, interesting_int, repeat,
)  # fmt: skip


def mutate(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """One fuzz input: pure noise one time in eight, else 1-3 mutations of a seed."""
    if rng.random() < 0.125:
        return rng.randbytes(rng.randint(1, 600))
    data = rng.choice(seeds)
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATORS)(rng, data)
    return data
