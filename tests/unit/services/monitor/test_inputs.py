"""Two inputs read in step by event time: nothing stalls, and neither runs far ahead."""

from __future__ import annotations

import functools
import random

from services.monitor.inputs import Alignment

SLACK = 1_000
TOPICS = ("predictions", "labels")


class _Reader:
    """A consumer that hands over chunks of whichever unpaused input it likes, as a Kafka client
    does, with the alignment pausing the one ahead."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.streams = {
            "predictions": sorted(rng.randint(0, 100_000) for _ in range(3_000)),
            "labels": sorted(rng.randint(0, 100_000) + 500 for _ in range(3_000)),
        }
        self.read = dict.fromkeys(TOPICS, 0)
        self.paused: set[str] = set()
        self.marks: dict[str, int] = {}
        self.widest = 0
        """Largest gap between the two inputs' event times while both had a backlog."""
        self.align = Alignment(TOPICS, slack_ms=SLACK, min_backlog=50, min_pending=100)

    def left(self, topic: str, _partition: int = 0) -> int:
        return len(self.streams[topic]) - self.read[topic]

    def done(self) -> bool:
        return not any(self.left(topic) for topic in TOPICS)

    def step(self) -> None:
        pending = 400  # past min_pending throughout: the alignment is in charge
        for topic, _ in self.align.resumable(self.left, lambda _partition: pending):
            self.paused.discard(topic)
        choices = [t for t in TOPICS if t not in self.paused and self.left(t)]
        if not choices:
            return
        topic = self.rng.choice(choices)
        other = TOPICS[1] if topic == TOPICS[0] else TOPICS[0]
        for _ in range(self.rng.randint(1, 40)):  # one chunk, read until held
            if not self.left(topic):
                return
            ts = self.streams[topic][self.read[topic]]
            if self.align.pause(topic, 0, ts, pending, functools.partial(self.left, other)):
                self.paused.add(topic)
                return
            self.align.seen(topic, 0, ts)
            self.marks[topic] = ts
            self.read[topic] += 1
            if len(self.marks) == 2 and all(self.left(t) >= 50 for t in TOPICS):
                self.widest = max(self.widest, abs(self.marks[TOPICS[0]] - self.marks[TOPICS[1]]))


def test_two_backlogs_are_read_to_the_end_in_step() -> None:
    """Both inputs are read to their end (at most one is held at a time, so nothing deadlocks),
    and while both have a backlog neither gets more than the slack, plus a chunk's spread, ahead."""
    for trial in range(20):
        reader = _Reader(random.Random(trial))
        for _ in range(100_000):
            if reader.done():
                break
            reader.step()
        assert reader.done(), (trial, reader.read, reader.paused)
        assert reader.widest <= 2 * SLACK + 1_500, (trial, reader.widest)
