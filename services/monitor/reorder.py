"""Event-time order across partitions, for the monitor's analytics.

One monitor reads several partitions, and Kafka hands them over in chunks: a partition that lags
(its fetch came later, or it holds a backlog) delivers events that are older than what the others
already delivered. Windows and detectors fed in arrival order would then see the stream jump back
and forth in time: a shift looks like it comes and goes, a flip like noise. :class:`Reorder` holds
completed events until every active partition has moved past their event time (the low watermark),
then releases them oldest first.

A partition is active while it has records left to read (the caller says so with :meth:`busy`) or
while it sent something in the last ``idle_ms`` of wall time; a partition that has caught up and gone
quiet no longer holds the others back. An assigned partition that has sent nothing yet holds
everything back until it sends or goes idle.

>>> r = Reorder(idle_ms=10_000)
>>> r.assign({0, 1}, now_ms=0)
>>> r.push(0, 100, "a", now_ms=0); r.release(now_ms=1)  # partition 1 has sent nothing yet
[]
>>> r.push(1, 50, "b", now_ms=1); r.push(0, 200, "c", now_ms=1)
>>> r.release(now_ms=2)  # partition 1 has only reached 50
['b']
>>> r.busy(1, now_ms=15_000); r.release(now_ms=16_000)  # quiet, but with a backlog: still waited for
[]
>>> r.push(1, 300, "d", now_ms=16_000); r.release(now_ms=16_001)  # partition 0 idle since 1
['a', 'c', 'd']
"""

from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")
_TS = itemgetter(0)


class Reorder:
    """Held ``(ts, item)`` pairs as a few runs sorted by event time, released below the
    partitions' low watermark.

    Each release sorts what was pushed since the last one into a new run (Python's stable sort,
    so events with the same time keep their arrival order), then takes from each run the prefix at
    or below the watermark. A run is merged into the one before it while that one is at most
    twice its size (as timsort keeps its runs), so a few runs of growing sizes hold everything and
    an item is re-sorted a logarithmic number of times. A partition lagging through a backfill can
    leave tens of thousands of events waiting, and sorting all of them at every release would cost
    what stays held, not what each release adds and frees.
    """

    def __init__(self, idle_ms: int = 2_000, max_held: int = 200_000) -> None:
        self.idle_ms = idle_ms
        self.max_held = max_held
        self._new: list[tuple[int, Any]] = []
        """Pushed since the last release, in arrival order."""
        self._runs: list[list[tuple[int, Any]]] = []
        """Each sorted by event time, in the order they were made (earlier arrivals first)."""
        self._size = 0
        self._marks: dict[int, tuple[int | None, int]] = {}
        """partition -> (highest event time seen or None, wall time it last advanced or was busy)."""

    def __len__(self) -> int:
        return self._size

    def assign(self, partitions: set[int], now_ms: int) -> None:
        """These partitions are now read here: each holds the watermark until it sends or idles.
        Marks restored from a checkpoint keep their event time; their wall time starts now."""
        for partition in partitions:
            mark = self._marks.get(partition)
            self._marks[partition] = (None if mark is None else mark[0], now_ms)

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked from this monitor no longer hold the watermark."""
        for partition in partitions:
            self._marks.pop(partition, None)

    def busy(self, partition: int, now_ms: int) -> None:
        """``partition`` has records not yet read: it cannot be idle, whatever the wall clock says."""
        mark = self._marks.get(partition)
        if mark is not None:
            self._marks[partition] = (mark[0], now_ms)

    def push(self, partition: int, ts: int, item: Any, now_ms: int) -> None:
        """Hold ``item``; ``partition``'s watermark moves with ``ts`` unless already past it."""
        mark = self._marks.get(partition)
        if mark is None or mark[0] is None or ts > mark[0]:
            self._marks[partition] = (ts, now_ms)
        self._new.append((ts, item))
        self._size += 1

    def watermark(self, now_ms: int) -> float | None:
        """The event time below which every active partition has passed; ``-inf`` while an active
        partition has sent nothing, None when no partition is active."""
        active = [mark for mark, seen in self._marks.values() if now_ms - seen < self.idle_ms]
        if not active:
            return None
        if any(mark is None for mark in active):
            return float("-inf")
        return min(mark for mark in active if mark is not None)

    def release(self, now_ms: int, *, everything: bool = False) -> list[Any]:
        """Items at or below the low watermark (all of them with ``everything``), oldest first;
        past ``max_held`` the oldest go out regardless, so memory stays bounded."""
        limit = self.watermark(now_ms)
        if self._new:
            self._new.sort(key=_TS)
            runs = self._runs
            runs.append(self._new)
            self._new = []
            while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
                newer = runs.pop()
                runs[-1] += newer  # the older run first: a stable sort keeps arrival order
                runs[-1].sort(key=_TS)
        if everything or limit is None:
            self._merge()
            taken = self._runs.pop() if self._runs else []
        else:
            taken = []
            for run in self._runs:  # earlier runs first: equal times keep their arrival order
                cut = bisect_right(run, limit, key=_TS)
                if cut:
                    taken += run[:cut]
                    del run[:cut]
            self._runs = [run for run in self._runs if run]
            excess = self._size - len(taken) - self.max_held
            if excess > 0:  # past the cap: the oldest of what stays go too
                self._merge()
                oldest = self._runs[0]
                taken += oldest[:excess]
                del oldest[:excess]
            taken.sort(key=_TS)  # prefixes of sorted runs, in run order: a stable merge
        self._size -= len(taken)
        return [item for _, item in taken]

    def _merge(self) -> None:
        """One run of everything held (a stable sort of the runs in order: a merge)."""
        if len(self._runs) > 1:
            merged = [pair for run in self._runs for pair in run]
            merged.sort(key=_TS)
            self._runs = [merged]

    def state(self) -> ReorderState[Any]:
        """What is held, as plain data, for a checkpoint."""
        return ReorderState(
            idle_ms=self.idle_ms,
            max_held=self.max_held,
            new=list(self._new),
            runs=[list(run) for run in self._runs],
            marks=dict(self._marks),
        )

    @classmethod
    def from_state(cls, state: ReorderState[Any]) -> Reorder:
        """The reorder ``state`` describes (each run is sorted again: cheap when it is)."""
        reorder = cls(state.idle_ms, state.max_held)
        reorder._new = list(state.new)
        reorder._runs = [sorted(run, key=_TS) for run in state.runs if run]
        reorder._size = len(reorder._new) + sum(len(run) for run in reorder._runs)
        reorder._marks = dict(state.marks)
        return reorder


class ReorderState(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """A :class:`Reorder` as plain data; ``T`` is the type of what it holds."""

    idle_ms: int
    max_held: int
    new: list[tuple[int, T]]
    runs: list[list[tuple[int, T]]]
    marks: dict[int, tuple[int | None, int]]
