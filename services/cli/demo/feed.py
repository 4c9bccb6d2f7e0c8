"""A live feed of synthetic events: feature events at a steady rate, each label sent later.

The label of event ``i`` is sent after event ``i + d``, with ``d`` uniform in
``[0, max_label_delay)`` events: late and out of order, as labels are in life. Used by
`driftline demo`; the producer is the caller's (either client of :mod:`shared.io.transport`), so
the feed is plain and testable.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from services.cli.demo.synthetic import SyntheticEvent
from shared.core.errors import KafkaError
from shared.core.messages import FeatureEvent, Label
from shared.io.transport import Producer

FLUSH_S = 60.0


@dataclass
class FeedProgress:
    sent: int = 0
    labels: int = 0
    started: float = field(default_factory=time.monotonic)
    marks: dict[int, float] = field(default_factory=dict)
    """Event index -> wall time (epoch seconds) it was sent, for the indexes asked to be marked."""


def feed(
    producer: Producer,
    features_topic: str,
    labels_topic: str,
    events: Iterable[SyntheticEvent],
    *,
    rate: float,
    max_label_delay: int = 500,
    seed: int = 7,
    mark: Iterable[int] = (),
    on_progress: Callable[[FeedProgress], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> FeedProgress:
    """Send ``events`` at ``rate`` per second with their labels delayed; return what was sent."""
    rng = np.random.default_rng(seed)
    progress = FeedProgress()
    wanted = set(mark)
    due: list[tuple[int, int, str, object]] = []  # (due index, index, event_id, label)
    last_report = 0.0
    last_ts = 0
    for index, event in enumerate(events):
        if stop():
            break
        ahead = progress.started + index / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        if index in wanted:
            progress.marks[index] = time.time()
        key = event.event_id.encode()
        value = FeatureEvent(event_id=event.event_id, ts=event.ts, features=event.features)
        # The record's timestamp is the event's time, as for any stream of events sent after
        # the fact: the synthetic stream's clock starts in the past.
        producer.send(features_topic, value.encode(), key=key, timestamp_ms=event.ts)
        progress.sent += 1
        last_ts = event.ts
        delay = int(rng.integers(0, max_label_delay)) if max_label_delay > 0 else 0
        heapq.heappush(due, (index + delay, index, event.event_id, event.label))
        while due and due[0][0] <= index:
            _, _, event_id, label = heapq.heappop(due)
            _send_label(producer, labels_topic, event_id, label, event.ts + 1)
            progress.labels += 1
        if on_progress is not None and time.monotonic() - last_report >= 0.5:
            last_report = time.monotonic()
            on_progress(progress)
    while due:
        _, _, event_id, label = heapq.heappop(due)
        _send_label(producer, labels_topic, event_id, label, last_ts + 1)
        progress.labels += 1
    flushed = producer.flush(FLUSH_S)
    if not flushed.ok:
        failed = "; ".join(f"{topic}: {reason}" for topic, reason in flushed.failed[:3])
        raise KafkaError(
            f"the broker did not take every event and label: {flushed.pending} still waiting "
            f"after {FLUSH_S:g} s, {len(flushed.failed)} failed ({failed or 'none'})",
            retriable=bool(flushed.pending),
        )
    if on_progress is not None:
        on_progress(progress)
    return progress


def _send_label(producer: Producer, topic: str, event_id: str, label: object, ts: int) -> None:
    message = Label(event_id=event_id, ts=ts, label=label)  # type: ignore[arg-type]
    producer.send(topic, message.encode(), key=event_id.encode(), timestamp_ms=ts)
