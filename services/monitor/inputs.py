"""The monitor's two inputs, read in step by event time on each partition: predictions and labels.

Replaying history (a backfill, or a monitor catching up after an outage) both topics hold a
backlog, and a consumer reads each as fast as its fetches come. Labels are small records, so a
fetch holds several times more of them than of predictions: read freely, the labels run ahead by
minutes of event time and wait in memory for predictions still unread. Past the pending cap they
are evicted before their predictions come (those events never join), every checkpoint rewrites
them, and their event time expires predictions still waiting for earlier labels.

So, like Kafka Streams choosing the co-partitioned record with the lowest timestamp, the monitor
leaves a topic's partition unread while its next record is more than ``slack_ms`` of event time
ahead of what the other topic's partition has delivered, as long as that other one has a backlog
to catch up with (at least ``min_backlog`` records unread, or not known yet) and the partition
already holds ``min_pending`` events in memory (below that, reading ahead costs little, and
pausing would cost a fetch round trip per few records on a sparse stream). A live stream, whose
backlogs are a poll or less, is never paused. At most one of a pair is paused at a time, so the
other always moves; the paused one is resumed when the other comes within ``slack_ms`` of it or
runs out of backlog, and swapped with the other when that one gets more than ``slack_ms`` past it.

>>> align = Alignment(("predictions", "labels"), slack_ms=1_000, min_backlog=100, min_pending=50)
>>> unknown, lots, many_pending = (lambda: None), (lambda: 5_000), (lambda partition: 80)
>>> align.pause("labels", 0, ts=5_000, pending=10, other_backlog=unknown)  # little in memory
False
>>> align.pause("labels", 0, ts=5_000, pending=80, other_backlog=unknown)  # no prediction read yet
True
>>> align.pause("predictions", 0, ts=3_000, pending=80, other_backlog=unknown)
False
>>> align.seen("predictions", 0, 3_000)
>>> align.resumable(lambda topic, partition: 5_000, many_pending)  # 2 s behind the paused label
[]
>>> align.seen("predictions", 0, 4_200)
>>> align.resumable(lambda topic, partition: 5_000, many_pending)  # within 1 s of it
[('labels', 0)]
>>> align.pause("labels", 0, ts=9_000, pending=80, other_backlog=lots)  # ahead again: paused
True
>>> align.pause("predictions", 0, ts=10_500, pending=80, other_backlog=lots)  # past it: they swap
True
>>> align.resumable(lambda topic, partition: 5_000, many_pending), sorted(align.paused)
([('labels', 0)], [('predictions', 0)])
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Container, Iterable

from services.monitor.reorder import Reorder
from shared.io.transport import TP, Consumer, Record

log = logging.getLogger(__name__)

Key = tuple[str, int]
_NEVER = -(2**62)
BACKLOG_CHECK_MS = 250
"""How often the partitions' unread backlogs are looked at (:meth:`PacedInputs.mark_backlogs`)."""


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
        self.paused: dict[Key, int] = {}
        """Paused (topic, partition) -> event time of its first record left unread."""
        self._swapped: list[Key] = []

    def _other(self, topic: str) -> str:
        first, second = self.topics
        return second if topic == first else first

    def seen(self, topic: str, partition: int, ts: int) -> None:
        """A record of ``topic`` at event time ``ts`` was delivered."""
        key = (topic, partition)
        if ts > self._marks.get(key, _NEVER):
            self._marks[key] = ts

    def pause(
        self,
        topic: str,
        partition: int,
        ts: int,
        pending: int,
        other_backlog: Callable[[], int | None],
    ) -> bool:
        """Whether to leave this record (and what follows it) unread for now; if so the topic's
        partition is paused. ``pending``: events of this partition waiting in memory for their
        other half; below ``min_pending`` nothing is paused. ``other_backlog``: the other topic's unread records on
        this partition (None: unknown), asked only for a record that is ahead.

        When the other topic is paused at an event time more than ``slack_ms`` before this
        record, the two swap: the other is resumed (:meth:`resumable` says so) and this one
        paused."""
        if pending < self.min_pending:
            return False
        other = (self._other(topic), partition)
        paused_other = self.paused.get(other)
        frontier = paused_other if paused_other is not None else self._marks.get(other, _NEVER)
        if ts <= frontier + self.slack_ms:
            return False
        if paused_other is None:
            left = other_backlog()
            if left is not None and left < self.min_backlog:
                return False
        else:
            del self.paused[other]
            self._swapped.append(other)
        self.paused[(topic, partition)] = ts
        return True

    def resumable(
        self, backlog: Callable[[str, int], int | None], pending: Callable[[int], int]
    ) -> list[Key]:
        """The paused ones that may be read again (each is then no longer paused): swapped out
        by :meth:`pause`, or the other topic came within ``slack_ms`` of them, or has next to
        nothing left to read, or the partition's pending events fell to half of ``min_pending``."""
        out, self._swapped = self._swapped, []
        for (topic, partition), ts in list(self.paused.items()):
            other = self._other(topic)
            if (
                self._marks.get((other, partition), _NEVER) + self.slack_ms < ts
                and pending(partition) > self.min_pending // 2
            ):
                left = backlog(other, partition)
                if left is None or left >= self.min_backlog:
                    continue
            del self.paused[(topic, partition)]
            out.append((topic, partition))
        return out

    def forget(self, partitions: set[int]) -> None:
        """Revoked partitions: their next owner starts unpaused."""
        for table in (self._marks, self.paused):
            for key in [key for key in table if key[1] in partitions]:
                del table[key]


class PacedInputs:
    """The monitor's consumer of its two inputs, paced by an :class:`Alignment`.

    It pauses a topic's partition that is ahead of the other in event time, keeps the records a
    poll had already handed over for it (they are processed first when it resumes), resumes it
    when the other has caught up. It also tells the reorder which partitions still have records
    unread, however quiet they look.
    """

    def __init__(self, consumer: Consumer, align: Alignment) -> None:
        self._consumer = consumer
        self.align = align
        self._handed: dict[Key, list[Record]] = {}
        """Records of a paused topic partition that a poll had already handed over."""
        self._next_backlog_check = 0

    @property
    def paused(self) -> list[Key]:
        return sorted(self.align.paused)

    def other_backlog(self, tp: TP) -> Callable[[], int | None]:
        """The other input's unread records on ``tp``'s partition, asked at most once per batch:
        a live stream whose labels come hours later asks for every prediction, the client's
        position() costs ~20 µs, and the position cannot move before the next poll (the high
        watermark may, by a fetch's worth)."""
        first, second = self.align.topics
        other = TP(second if tp.topic == first else first, tp.partition)
        return functools.cache(lambda: self.backlog(other))

    def backlog(self, tp: TP) -> int | None:
        """Records of ``tp`` not processed yet: those still in Kafka, and those a poll handed
        over before the partition was paused (one poll can hand over a partition's whole
        backlog: librdkafka's prefetch). None while Kafka's part is unknown."""
        left = self._consumer.unread(tp)
        handed = self._handed.get((tp.topic, tp.partition))
        return left if left is None or not handed else left + len(handed)

    def pause(self, tp: TP, rest: list[Record]) -> None:
        """Leave ``rest`` (already handed over by a poll) for when ``tp`` resumes."""
        self._handed[(tp.topic, tp.partition)] = rest
        self._consumer.pause([tp])
        log.debug(
            "%s [%d] paused at offset %d: ahead of the other input in event time",
            tp.topic,
            tp.partition,
            rest[0].offset,
        )

    def resume_caught_up(
        self, pending: Callable[[int], int], owned: Container[int]
    ) -> list[tuple[TP, list[Record]]]:
        """Resume each paused partition whose other input has caught up; return it with the
        records it had been handed (to process before anything a later poll hands over)."""

        resumed = []
        for topic, partition in self.align.resumable(
            lambda topic, partition: self.backlog(TP(topic, partition)), pending
        ):
            rest = self._handed.pop((topic, partition), [])
            if partition not in owned:
                continue  # revoked: its next owner reads from the checkpoint's offsets
            tp = TP(topic, partition)
            self._consumer.resume([tp])
            resumed.append((tp, rest))
        return resumed

    def mark_backlogs(self, partitions: Iterable[int], reorder: Reorder, now: int) -> None:
        """Partitions with records still unread hold the reorder's watermark, however quiet.

        A partition idles after ``Reorder.idle_ms`` (2 s) without news: checking a few times a
        second is enough, and keeps position() lookups off every poll."""
        if now < self._next_backlog_check:
            return
        self._next_backlog_check = now + BACKLOG_CHECK_MS
        for partition in partitions:
            if any(self.backlog(TP(topic, partition)) != 0 for topic in self.align.topics):
                reorder.busy(partition, now)

    def forget(self, partitions: set[int]) -> None:
        """Revoked partitions: a new assignment starts unpaused, with nothing handed over."""
        self.align.forget(partitions)
        for key in [key for key in self._handed if key[1] in partitions]:
            del self._handed[key]
