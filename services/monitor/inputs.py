"""Event-time alignment of the monitor's two inputs on each partition: predictions and labels.

Replaying history (a backfill, or a monitor catching up after an outage) both topics hold a
backlog, and a consumer reads each as fast as its fetches come. Labels are small records, so a
fetch holds several times more of them than of predictions: the labels ran ahead by minutes of
event time, and waited in memory for predictions still unread. Past the pending cap they were
evicted before their predictions came (those events never joined), every checkpoint rewrote them,
and their event time expired predictions still waiting for earlier labels.

So, like Kafka Streams choosing the co-partitioned record with the lowest timestamp, the monitor
leaves a topic's partition unread while its next record is more than ``slack_ms`` of event time
ahead of what the other topic's partition has delivered, as long as that other one has a backlog
to catch up with (at least ``min_backlog`` records unread, or not known yet) and the partition
already holds ``min_pending`` events in memory (below that, reading ahead costs little, and
pausing would cost a fetch round trip per few records on a sparse stream). A live stream, whose
backlogs are a poll or less, is never held. At most one of a pair is held at a time, so the other
always moves; the held one is released when the other comes within ``slack_ms`` of it or runs out
of backlog, and swapped with the other when that one gets more than ``slack_ms`` past it.

>>> align = Alignment(("predictions", "labels"), slack_ms=1_000, min_backlog=100, min_pending=50)
>>> unknown, lots, many_pending = (lambda: None), (lambda: 5_000), (lambda partition: 80)
>>> align.hold("labels", 0, ts=5_000, pending=10, other_backlog=unknown)  # little in memory
False
>>> align.hold("labels", 0, ts=5_000, pending=80, other_backlog=unknown)  # no prediction read yet
True
>>> align.hold("predictions", 0, ts=3_000, pending=80, other_backlog=unknown)
False
>>> align.seen("predictions", 0, 3_000)
>>> align.releasable(lambda topic, partition: 5_000, many_pending)  # 2 s behind the held label
[]
>>> align.seen("predictions", 0, 4_200)
>>> align.releasable(lambda topic, partition: 5_000, many_pending)  # within 1 s of it
[('labels', 0)]
>>> align.hold("labels", 0, ts=9_000, pending=80, other_backlog=lots)  # ahead again: held
True
>>> align.hold("predictions", 0, ts=10_500, pending=80, other_backlog=lots)  # past it: they swap
True
>>> align.releasable(lambda topic, partition: 5_000, many_pending), sorted(align.held)
([('labels', 0)], [('predictions', 0)])
"""

from __future__ import annotations

from collections.abc import Callable

Key = tuple[str, int]
_NEVER = -(2**62)


class Alignment:
    """Which (topic, partition) of a co-partitioned pair to leave unread for now."""

    def __init__(
        self, topics: tuple[str, str], *, slack_ms: int, min_backlog: int, min_pending: int
    ) -> None:
        self.topics = topics
        self.slack_ms = slack_ms
        self.min_backlog = min_backlog
        self.min_pending = min_pending
        self._marks: dict[Key, int] = {}
        """Latest event time delivered per (topic, partition)."""
        self.held: dict[Key, int] = {}
        """Held (topic, partition) -> event time of its first record left unread."""
        self._released: list[Key] = []

    def _other(self, topic: str) -> str:
        first, second = self.topics
        return second if topic == first else first

    def seen(self, topic: str, partition: int, ts: int) -> None:
        """A record of ``topic`` at event time ``ts`` was delivered."""
        key = (topic, partition)
        if ts > self._marks.get(key, _NEVER):
            self._marks[key] = ts

    def hold(
        self,
        topic: str,
        partition: int,
        ts: int,
        pending: int,
        other_backlog: Callable[[], int | None],
    ) -> bool:
        """Whether to leave this record (and what follows it) unread for now; if so it is held.
        ``pending``: events of this partition waiting in memory for their other half; below
        ``min_pending`` nothing is held. ``other_backlog``: the other topic's unread records on
        this partition (None: unknown), asked only for a record that is ahead.

        When the other topic is held at an event time more than ``slack_ms`` before this record,
        the two swap: the other is released (:meth:`releasable` says so) and this one held."""
        if pending < self.min_pending:
            return False
        other = (self._other(topic), partition)
        held_other = self.held.get(other)
        frontier = held_other if held_other is not None else self._marks.get(other, _NEVER)
        if ts <= frontier + self.slack_ms:
            return False
        if held_other is None:
            left = other_backlog()
            if left is not None and left < self.min_backlog:
                return False
        else:
            del self.held[other]
            self._released.append(other)
        self.held[(topic, partition)] = ts
        return True

    def releasable(
        self, backlog: Callable[[str, int], int | None], pending: Callable[[int], int]
    ) -> list[Key]:
        """The held ones that may be read again (each is then no longer held): swapped out by
        :meth:`hold`, or the other topic came within ``slack_ms`` of them, or has next to nothing
        left to read, or the partition's pending events fell to half of ``min_pending``."""
        out, self._released = self._released, []
        for (topic, partition), ts in list(self.held.items()):
            other = self._other(topic)
            if (
                self._marks.get((other, partition), _NEVER) + self.slack_ms < ts
                and pending(partition) > self.min_pending // 2
            ):
                left = backlog(other, partition)
                if left is None or left >= self.min_backlog:
                    continue
            del self.held[(topic, partition)]
            out.append((topic, partition))
        return out

    def forget(self, partitions: set[int]) -> None:
        """Revoked partitions: their next owner starts unheld."""
        for table in (self._marks, self.held):
            for key in [key for key in table if key[1] in partitions]:
                del table[key]
