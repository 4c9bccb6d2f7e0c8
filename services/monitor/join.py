"""The monitor's join of one partition: features, predictions and labels of the same ``event_id``.

The topics are keyed by ``event_id`` with the same partition count, so partition ``p`` of each holds
the same events and one :class:`JoinBuffer` per partition sees every piece of them. The monitor
reads predictions and labels only: a driftline prediction carries its features, which
:meth:`JoinBuffer.add_prediction` takes as the event's features. Pieces arrive in any order; an
event is *joined* once its prediction, its label and its features are all in. Pending events wait
up to ``window_ms`` of event time; then a prediction without a label is *expired*, a label without
a prediction an *orphan*, and a label arriving after its prediction expired is *late*. A second copy of any piece
(a predictor that rescored a batch after a restart) counts once, as a *duplicate*. Memory is
bounded: past ``max_pending`` events the oldest is *evicted*, and counted.

The partition's watermark is the :data:`WATERMARK_RANK`-th largest ``ts`` seen, not the largest: a
single record (or a few) stamped far ahead cannot move it, so cannot expire the events around it.
Expiry closes pending events by their own time, oldest first, whatever order they arrived in.

Pure: no I/O, no clock; :meth:`JoinBuffer.state` is its plain data, which the monitor
checkpoints.

>>> from shared.core.messages import Label, Prediction
>>> buf = JoinBuffer(window_ms=60_000, max_pending=100)
>>> buf.add_label(Label(event_id="e1", ts=5_000, label=1))
[]
>>> buf.add_features("e1", 1_000, {"x": 0.5})
[]
>>> [type(j).__name__ for j in buf.add_prediction(Prediction(event_id="e1", ts=1_000, model="m",
...     version=1, prediction=1, latency_ms=2.0))]
['Scored', 'Joined']
>>> buf.add_label(Label(event_id="e1", ts=6_000, label=1)); buf.counts["duplicates"]
[]
1

A prediction that carries its features (driftline's predictors write them) needs no feature event:

>>> [type(j).__name__ for j in buf.add_prediction(Prediction(event_id="e2", ts=2_000, model="m",
...     version=1, prediction=0, latency_ms=2.0, features={"x": 0.1}))]
['Scored']
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from shared.core.messages import FeatureValue, Label, Prediction

COUNTS = ("joined", "expired", "orphans", "unscored", "duplicates", "late", "evicted")
"""What a buffer counts: joined events; predictions never labelled (expired); labels with no
prediction (orphans); features never scored (unscored: dead-lettered by the predictor, or scored by
another model); second copies (duplicates); labels after their prediction expired (late); pending
events dropped at the memory cap (evicted)."""


WATERMARK_RANK = 16
"""The watermark is the 16th largest event time seen: fewer than 16 records cannot move it."""


class Joined(msgspec.Struct, frozen=True, gc=False, tag="j"):
    """One event with its features, its prediction and its label."""

    event_id: str
    ts: int
    """The event's time (the prediction's ``ts``, which is the feature event's)."""
    features: dict[str, FeatureValue]
    prediction: Any
    score: float | None
    version: int
    model: str
    label: Any
    label_ts: int
    lag_ms: int
    """Event time from the event to its label's arrival: the join lag."""


class Scored(msgspec.Struct, frozen=True, gc=False, tag="s"):
    """An event whose features and prediction are both in (label or not): what data drift and
    prediction drift watch, well before any label arrives."""

    event_id: str
    ts: int
    features: dict[str, FeatureValue]
    prediction: Any
    score: float | None
    version: int


class _Pending(msgspec.Struct, array_like=True, gc=False):
    """The pieces of one event seen so far. ``features`` holds a feature event's; a prediction
    that carries its own is not copied here."""

    first_ts: int
    features: dict[str, FeatureValue] | None = None
    prediction: Prediction | None = None
    label: Label | None = None
    scored: bool = False

    def has_features(self) -> bool:
        return self.features is not None or (
            self.prediction is not None and self.prediction.features is not None
        )


@dataclass
class JoinBuffer:
    """Pending pieces of one partition's events, joined as they complete."""

    window_ms: int = 3_600_000
    max_pending: int = 100_000
    memory: int = 20_000
    """How many joined and expired ``event_id`` s are remembered, for duplicates and late labels."""
    watermark: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    _pending: OrderedDict[str, _Pending] = field(default_factory=OrderedDict)
    _done: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _expired: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _top: list[int] = field(default_factory=list)
    """A min-heap of the :data:`WATERMARK_RANK` largest event times seen."""
    _due: list[tuple[int, str]] = field(default_factory=list)
    """A min-heap of ``(first_ts, event_id)`` of pending events (and some already closed,
    dropped when met): what :meth:`expire` closes, by event time."""

    def __post_init__(self) -> None:
        if self.window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {self.window_ms}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {self.max_pending}")

    @property
    def pending(self) -> int:
        return len(self._pending)

    def awaits_label(self, event_id: str) -> bool:
        """Whether the prediction of ``event_id`` is here, waiting for its label."""
        entry = self._pending.get(event_id)
        return entry is not None and entry.prediction is not None

    def add_features(
        self, event_id: str, ts: int, features: dict[str, FeatureValue]
    ) -> list[Scored | Joined]:
        entry = self._entry(event_id, ts)
        if entry is None:
            return []
        if entry.has_features():
            self.counts["duplicates"] += 1
            return []
        entry.features = features
        return self._complete(event_id, entry)

    def add_prediction(self, prediction: Prediction) -> list[Scored | Joined]:
        entry = self._entry(prediction.event_id, prediction.ts)
        if entry is None:
            return []
        if entry.prediction is not None:
            self.counts["duplicates"] += 1
            return []
        entry.prediction = prediction
        return self._complete(prediction.event_id, entry)

    def add_label(self, label: Label) -> list[Scored | Joined]:
        ts = label.ts if label.ts is not None else self.watermark
        if label.event_id in self._expired:
            self.counts["late"] += 1
            self._advance(ts)
            return []
        entry = self._entry(label.event_id, ts)
        if entry is None:
            return []
        if entry.label is not None:
            self.counts["duplicates"] += 1
            return []
        entry.label = label
        return self._complete(label.event_id, entry)

    def expire(self) -> None:
        """Close every pending event older than the window (the monitor calls this per batch)."""
        horizon = self.watermark - self.window_ms
        due, pending = self._due, self._pending
        while due and due[0][0] < horizon:
            first_ts, event_id = heapq.heappop(due)
            entry = pending.get(event_id)
            if entry is None or entry.first_ts != first_ts:
                continue  # joined or evicted since
            del pending[event_id]
            self._close(event_id, entry)
        if len(due) > 2 * len(pending) + 1_000:  # mostly joined events: rebuild, keep it small
            self._due = [(entry.first_ts, event_id) for event_id, entry in pending.items()]
            heapq.heapify(self._due)

    def _entry(self, event_id: str, ts: int) -> _Pending | None:
        self._advance(ts)
        if event_id in self._done:
            self.counts["duplicates"] += 1
            return None
        entry = self._pending.get(event_id)
        if entry is None:
            entry = self._pending[event_id] = _Pending(first_ts=ts)
            heapq.heappush(self._due, (ts, event_id))
            if len(self._pending) > self.max_pending:
                oldest, _ = self._pending.popitem(last=False)
                self.counts["evicted"] += 1
                self._remember(self._expired, oldest)
        return entry

    def _advance(self, ts: int) -> None:
        top = self._top
        if len(top) < WATERMARK_RANK:
            heapq.heappush(top, ts)
            if len(top) == WATERMARK_RANK:
                self.watermark = max(self.watermark, top[0])
        elif ts > top[0]:
            heapq.heapreplace(top, ts)
            self.watermark = max(self.watermark, top[0])

    def _complete(self, event_id: str, entry: _Pending) -> list[Scored | Joined]:
        prediction, label = entry.prediction, entry.label
        if prediction is None:
            return []
        # A feature event's features win over the prediction's copy (the three-way join).
        features = entry.features if entry.features is not None else prediction.features
        if features is None:
            return []
        out: list[Scored | Joined] = []
        if not entry.scored:
            entry.scored = True
            out.append(
                Scored(
                    event_id=event_id,
                    ts=prediction.ts,
                    features=features,
                    prediction=prediction.prediction,
                    score=prediction.score,
                    version=prediction.version,
                )
            )
        if label is None:
            return out
        del self._pending[event_id]
        self._remember(self._done, event_id)
        self.counts["joined"] += 1
        label_ts = label.ts if label.ts is not None else self.watermark
        out.append(
            Joined(
                event_id=event_id,
                ts=prediction.ts,
                features=features,
                prediction=prediction.prediction,
                score=prediction.score,
                version=prediction.version,
                model=prediction.model,
                label=label.label,
                label_ts=label_ts,
                lag_ms=max(0, label_ts - prediction.ts),
            )
        )
        return out

    def _close(self, event_id: str, entry: _Pending) -> None:
        if entry.prediction is not None and entry.label is None:
            self.counts["expired"] += 1
            self._remember(self._expired, event_id)
        elif entry.label is not None and entry.prediction is None:
            self.counts["orphans"] += 1
        elif entry.prediction is None:
            self.counts["unscored"] += 1
        else:  # prediction and label but the features never came: cannot become an example
            self.counts["expired"] += 1

    def _remember(self, ids: OrderedDict[str, None], event_id: str) -> None:
        ids[event_id] = None
        if len(ids) > self.memory:
            ids.popitem(last=False)

    def state(self) -> JoinState:
        """The buffer as plain data, for a checkpoint (its expiry heap is rebuilt on restore)."""
        return JoinState(
            window_ms=self.window_ms,
            max_pending=self.max_pending,
            memory=self.memory,
            watermark=self.watermark,
            counts=dict(self.counts),
            pending=list(self._pending.items()),
            done=list(self._done),
            expired=list(self._expired),
            top=list(self._top),
        )

    @classmethod
    def from_state(cls, state: JoinState) -> JoinBuffer:
        """The buffer ``state`` describes.

        >>> buf = JoinBuffer(window_ms=60_000, max_pending=10)
        >>> buf.add_label(Label(event_id="e1", ts=5_000, label=1))
        []
        >>> again = JoinBuffer.from_state(buf.state())
        >>> again.pending, again.counts == buf.counts
        (1, True)
        """
        if set(state.counts) != set(COUNTS) or len(state.top) > WATERMARK_RANK:
            raise ValueError("a join buffer's counts or watermark are not this version's")
        buffer = cls(state.window_ms, state.max_pending, state.memory, state.watermark)
        buffer.counts = dict(state.counts)
        buffer._pending = OrderedDict(state.pending)
        buffer._done = OrderedDict.fromkeys(state.done)
        buffer._expired = OrderedDict.fromkeys(state.expired)
        buffer._top = list(state.top)
        heapq.heapify(buffer._top)
        buffer._due = [(entry.first_ts, event_id) for event_id, entry in buffer._pending.items()]
        heapq.heapify(buffer._due)
        return buffer


class JoinState(msgspec.Struct, frozen=True, kw_only=True):
    """A :class:`JoinBuffer` as plain data."""

    window_ms: int
    max_pending: int
    memory: int
    watermark: int
    counts: dict[str, int]
    pending: list[tuple[str, _Pending]]
    done: list[str]
    expired: list[str]
    top: list[int]
