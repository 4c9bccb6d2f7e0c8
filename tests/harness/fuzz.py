"""Hostile records, seeded: random bytes, random JSON and valid records mutated byte by byte, for
the decoders and for running services."""

from __future__ import annotations

import json
import random
from typing import Any

VALID = [
    b'{"event_id": "v1", "features": {"a": 1.5, "b": -2, "c": 0.25}}',
    b'{"event_id": "v2", "ts": 1700000000000, "features": {"a": 1, "b": 2, "c": 3}, "x": [1]}',
    b'{"event_id": "v3", "ts": 1700000000500, "label": 1}',
    b'{"event_id": "v4", "label": "churn"}',
]
"""Records of each shape a user writes (feature events, labels), to mutate."""

_ATOMS: list[Any] = [
    0,
    -1,
    1e308,
    -1e-308,
    2**63,
    -(2**63) - 1,
    10**400,
    "",
    "x" * 300,
    "\u0000",
    "\ud7ff",
    True,
    None,
    [],
    {},
    "NaN",
]


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 6 or roll < 0.5:
        return rng.choice([*_ATOMS, rng.uniform(-1e6, 1e6), rng.randint(-(10**6), 10**6)])
    if roll < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["event_id", "ts", "features", "label", "model", "version", "a", "b", "c", "\u00e9"]
    return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def hostile(rng: random.Random) -> bytes:
    """One record that a careless or hostile producer might write."""
    kind = rng.random()
    if kind < 0.2:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if kind < 0.5:
        return json.dumps(_value(rng, 0)).encode()
    data = bytearray(rng.choice(VALID))
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        at = rng.randrange(len(data)) if data else 0
        if op < 0.4 and data:
            data[at] = rng.getrandbits(8)
        elif op < 0.6 and data:
            del data[at : at + rng.randint(1, 8)]
        elif op < 0.8:
            data[at:at] = rng.choice([b"{", b"[", b'"', b"\\", b"1e999", b"\xff", b"[" * 600])
        else:
            data = data[: rng.randint(0, len(data))]
    return bytes(data)
