"""The trainer's memory: a bounded window of recent labelled examples, deduplicated by event id.

Bounded two ways: at most ``max_count`` examples (the oldest to arrive leave first) and at most
``max_age_ms`` of event time behind the newest example seen. An ``event_id`` seen again (the monitor
re-sends after a restart) is counted and ignored. :meth:`ExampleWindow.dataset` cuts a training set
from it: rows in event-time order, optionally only those at or after a change point, with the
lineage a registered version records (offset ranges per partition and the event-time range).

>>> w = ExampleWindow(max_count=3, max_age_ms=1_000)
>>> for i, ts in enumerate([100, 200, 300, 400]):
...     _ = w.add(Stored(f"e{i}", ts, {"a": float(i)}, i % 2, None, 0, i))
>>> len(w), w.evicted                          # the count bound dropped e0
(3, 1)
>>> w.add(Stored("e3", 400, {"a": 3.0}, 1, None, 0, 9)), w.duplicates
(False, 1)
>>> from shared.core.schema import numeric_schema
>>> w.dataset(numeric_schema(["a"]), since_ts=300).y  # post-change rows only
[0, 1]
>>> _ = w.add(Stored("e9", 1_350, {"a": 9.0}, 1, None, 0, 10))
>>> [e.event_id for e in w.examples()]        # the count bound took e1, the age bound e2
['e3', 'e9']
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import BadMessage
from shared.core.schema import Schema, Value, infer_schema
from shared.models.training import Dataset


@dataclass(frozen=True, slots=True)
class Stored:
    """One example as the window keeps it, with where it came from."""

    event_id: str
    ts: int
    features: dict[str, Any]
    label: Any
    version: int | None
    partition: int
    offset: int
    prediction: Any = None
    """What the serving version predicted (None for seeded history that no model scored)."""


@dataclass(frozen=True)
class Selection:
    """A training set cut from the window, and the lineage that goes with it."""

    data: Dataset
    lineage: dict[str, Any] = field(default_factory=dict)


class ExampleWindow:
    def __init__(self, max_count: int = 50_000, max_age_ms: int = 86_400_000) -> None:
        if max_count < 1 or max_age_ms < 1:
            raise ValueError("the example window needs a positive count and age")
        self.max_count = max_count
        self.max_age_ms = max_age_ms
        self._examples: OrderedDict[str, Stored] = OrderedDict()
        self.newest_ts: int | None = None
        self.duplicates = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._examples)

    def add(self, example: Stored) -> bool:
        """Keep ``example`` unless its event id is already here; False for a duplicate."""
        if example.event_id in self._examples:
            self.duplicates += 1
            return False
        self._examples[example.event_id] = example
        if self.newest_ts is None or example.ts > self.newest_ts:
            self.newest_ts = example.ts
        while len(self._examples) > self.max_count:
            self._examples.popitem(last=False)
            self.evicted += 1
        if len(self._examples) > 1 and next(iter(self._examples.values())).ts < self._horizon():
            self._expire()
        return True

    def _horizon(self) -> int:
        return (self.newest_ts or 0) - self.max_age_ms

    def _expire(self) -> None:
        horizon = self._horizon()
        old = [key for key, example in self._examples.items() if example.ts < horizon]
        for key in old:
            del self._examples[key]
        self.evicted += len(old)

    def count(self, since_ts: int | None = None) -> int:
        """Examples at or after ``since_ts`` (all of them without it)."""
        if since_ts is None:
            return len(self._examples)
        return sum(1 for example in self._examples.values() if example.ts >= since_ts)

    def schema(self) -> Schema:
        """A first model's schema: the features every example in the window has, sorted, each
        of the kind its values read as (numeric, boolean or categorical)."""
        common: set[str] | None = None
        for example in self._examples.values():
            names = set(example.features)
            common = names if common is None else common & names
        columns = {
            name: [example.features[name] for example in self._examples.values()]
            for name in sorted(common or ())
        }
        return infer_schema(columns)

    def examples(self, since_ts: int | None = None) -> list[Stored]:
        """Examples at or after ``since_ts``, in event-time order (arrival order among ties)."""
        chosen = [
            example
            for example in self._examples.values()
            if since_ts is None or example.ts >= since_ts
        ]
        chosen.sort(key=lambda example: example.ts)
        return chosen

    def dataset(self, schema: Schema, since_ts: int | None = None) -> Dataset:
        return self.select(schema, since_ts).data

    def select(self, schema: Schema, since_ts: int | None = None) -> Selection:
        """The rows whose features check against ``schema``, in event-time order, and their
        lineage."""
        rows: list[list[Value]] = []
        labels: list[Any] = []
        times: list[int] = []
        offsets: dict[int, list[int]] = {}
        skipped = 0
        for example in self.examples(since_ts):
            try:
                rows.append(schema.row(example.features))
            except BadMessage:
                skipped += 1
                continue
            labels.append(example.label)
            times.append(example.ts)
            span = offsets.setdefault(example.partition, [example.offset, example.offset])
            span[0] = min(span[0], example.offset)
            span[1] = max(span[1], example.offset)
        X = schema.matrix(rows)
        lineage: dict[str, Any] = {
            "examples": len(labels),
            "since_ts": since_ts,
            "start_ts": times[0] if times else None,
            "end_ts": times[-1] if times else None,
            "offsets": {str(p): {"first": a, "last": b} for p, (a, b) in sorted(offsets.items())},
            "skipped_missing_features": skipped,
        }
        return Selection(Dataset(schema.names, X, labels, times, schema), lineage)
