"""The monitor's joined events, gathered into :class:`~shared.core.messages.ExampleBatch` records.

One record per source partition and poll instead of one per event: in kafka-python a send costs
tens of microseconds, far more than encoding the example it carries. Each example is encoded as it
comes, so a batch is cut before it would pass ``max_bytes``, well under the broker's 1 MB default
record limit and driftline's own 1 MiB decode limit. Examples are built from decoded predictions
and labels, whose numbers the decoder has already checked finite: they are not checked again.

>>> from shared.core.messages import Example, ExampleBatch
>>> batcher = ExampleBatcher("m", max_bytes=300)
>>> example = Example(event_id="e1", ts=1, model="m", features={"x": 1.0}, label=1)
>>> batcher.add(0, example) is None, batcher.add(0, example) is None
(True, True)
>>> full = batcher.add(0, example)  # a third would pass 300 bytes: the first two go out
>>> [e.event_id for e in ExampleBatch.decode(full).examples]
['e1', 'e1']
>>> [(partition, len(ExampleBatch.decode(data).examples)) for partition, data in batcher.drain()]
[(0, 1)]
>>> batcher.drain()
[]
"""

from __future__ import annotations

import msgspec

from shared.core.messages import SCHEMA_VERSION, Example

DEFAULT_MAX_BYTES = 256 * 1024


class ExampleBatcher:
    """Encoded examples per partition, handed out as batch records of at most ``max_bytes``
    (a single larger example goes out alone)."""

    def __init__(self, model: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._head = b'{"v":%d,"model":%s,"examples":[' % (
            SCHEMA_VERSION,
            msgspec.json.encode(model),
        )
        self._max_bytes = max_bytes
        self._parts: dict[int, list[bytes]] = {}
        self._sizes: dict[int, int] = {}

    def add(self, partition: int, example: Example) -> bytes | None:
        """Keep ``example`` for ``partition``; return a full batch when it would not fit."""
        encoded = example.encode_decoded()
        parts = self._parts.setdefault(partition, [])
        size = self._sizes.get(partition, len(self._head) + 2)
        full = None
        if parts and size + len(encoded) + 1 > self._max_bytes:
            full = self._record(parts)
            parts = self._parts[partition] = []
            size = len(self._head) + 2
        parts.append(encoded)
        self._sizes[partition] = size + len(encoded) + 1
        return full

    def drain(self) -> list[tuple[int, bytes]]:
        """Every partition's batch in hand, as ``(partition, record)``; the batcher is empty after."""
        out = [(p, self._record(parts)) for p, parts in sorted(self._parts.items()) if parts]
        self._parts.clear()
        self._sizes.clear()
        return out

    def _record(self, parts: list[bytes]) -> bytes:
        return self._head + b",".join(parts) + b"]}"
