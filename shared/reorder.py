"""Event-time order across partitions, for the monitor's analytics.

One monitor reads several partitions, and Kafka hands them over in chunks: a partition that lags
(its fetch came later, or it holds a backlog) delivers events that are older than what the others
already delivered. Windows and detectors fed in arrival order would then see the stream jump back
and forth in time: a shift looks like it comes and goes, a flip like noise. :class:`Reorder` holds
completed events until every active partition has moved past their event time (the low watermark),
then releases them oldest first. A partition that has sent nothing for ``idle_ms`` of wall time no
longer holds the others back.

>>> r = Reorder(idle_ms=10_000)
>>> r.push(0, 100, "a", now_ms=0); r.push(1, 50, "b", now_ms=0); r.push(0, 200, "c", now_ms=0)
>>> r.release(now_ms=1)  # partition 1 has only reached 50
['b']
>>> r.push(1, 300, "d", now_ms=2); r.release(now_ms=3)
['a', 'c']
>>> r.release(now_ms=20_000)  # both partitions idle: nothing left to wait for
['d']
"""

from __future__ import annotations

import heapq
from typing import Any


class Reorder:
    """A min-heap of ``(ts, arrival, item)`` released below the partitions' low watermark."""

    def __init__(self, idle_ms: int = 2_000, max_held: int = 200_000) -> None:
        self.idle_ms = idle_ms
        self.max_held = max_held
        self._heap: list[tuple[int, int, Any]] = []
        self._arrival = 0
        self._marks: dict[int, tuple[int, int]] = {}
        """partition -> (highest event time seen, wall time it last advanced or sent)."""

    def __len__(self) -> int:
        return len(self._heap)

    def observe(self, partition: int, ts: int, now_ms: int) -> None:
        """A record of ``partition`` with event time ``ts`` arrived (whether or not it completes
        an event): it moves that partition's watermark."""
        mark, _ = self._marks.get(partition, (ts, now_ms))
        self._marks[partition] = (max(mark, ts), now_ms)

    def push(self, partition: int, ts: int, item: Any, now_ms: int) -> None:
        """Hold ``item``; ``partition``'s watermark moves with ``ts`` unless already past it."""
        mark = self._marks.get(partition)
        if mark is None or ts > mark[0]:
            self.observe(partition, ts, now_ms)
        self._arrival += 1
        heapq.heappush(self._heap, (ts, self._arrival, item))

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked from this monitor no longer hold the watermark."""
        for partition in partitions:
            self._marks.pop(partition, None)

    def watermark(self, now_ms: int) -> int | None:
        active = [mark for mark, seen in self._marks.values() if now_ms - seen < self.idle_ms]
        return min(active) if active else None

    def release(self, now_ms: int, *, everything: bool = False) -> list[Any]:
        """Items at or below the low watermark (all of them with ``everything``), oldest first;
        past ``max_held`` the oldest go out regardless, so memory stays bounded."""
        limit = self.watermark(now_ms)
        out = []
        heap = self._heap
        while heap and (
            everything or limit is None or heap[0][0] <= limit or len(heap) > self.max_held
        ):
            out.append(heapq.heappop(heap)[2])
        return out
