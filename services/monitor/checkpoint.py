"""The monitor's checkpoint protocol: what makes a restart or a rebalance lose nothing.

Every ``interval_s`` (:class:`Pacer`), on a rebalance and on a stop, :meth:`Checkpointer.save`:

1. flushes the producer and checks every send since the last checkpoint: if one failed, no
   checkpoint is written, and a restarted monitor replays and sends it again;
2. writes the state (each partition's join buffer and input offsets; the analytics and the
   events the reorder holds) to Redis in one MULTI/EXEC, a consistent cut;
3. commits the same offsets to Kafka, except inside a rebalance callback (it runs on
   kafka-python's I/O thread, which cannot block on a commit): Redis holds the offsets that
   count, Kafka's copy shows lag and seeds a reset;
4. schedules the next one, later after a slow one.

:meth:`Checkpointer.assign` restores a new partition's join buffer and seeks to its saved offsets,
then the analytics saved for exactly the partitions now owned; :meth:`Checkpointer.revoke` saves
before the partitions leave. A restarted monitor replays from the saved offsets: counts and metrics
come out as if it never stopped, and outputs sent after the last checkpoint are sent again with
the same ids, which readers deduplicate.

How often: a checkpoint rewrites the whole state, so its cost grows with the events it holds (on a
backfill, with hundreds of thousands of labels waiting for their predictions, one took half a
second, and at a fixed 5 s interval the monitor stood still a tenth of the time). The pause after
a checkpoint is therefore at least ``ratio`` times what it cost, which keeps checkpoints to at
most ``1 / (ratio + 1)`` of the monitor's time (a restart replays a little more in exchange).

>>> pacer = Pacer(interval_s=5.0, ratio=20.0)
>>> pacer.done(started=100.0, finished=100.1)  # 0.1 s: the usual 5 s pause
105.1
>>> pacer.done(started=200.0, finished=200.5)  # 0.5 s: a 10 s pause
210.5
>>> pacer.due(210.4), pacer.due(210.5)
(False, True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import JoinBuffer
from services.monitor.reorder import Reorder
from services.monitor.retrain import RetrainClaim
from services.monitor.state import MonitorState, MonitorStateStore, PartitionState
from shared.core.clock import monotonic_ms
from shared.core.errors import KafkaError
from shared.io.transport import TP, Consumer, Producer
from shared.runtime.outage import ATTEMPT_S, backoff_s

log = logging.getLogger(__name__)


@dataclass
class Pacer:
    """When the next checkpoint is due: every ``interval_s``, or less often when they are slow."""

    interval_s: float
    ratio: float = 20.0
    next_at: float = 0.0
    """Monotonic time from which the next checkpoint is due."""
    pause_s: float = 0.0
    """The pause before the next checkpoint: ``interval_s``, or longer after a slow one."""

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.ratio <= 0:
            raise ValueError(
                f"interval_s and ratio must be > 0, got {self.interval_s}, {self.ratio}"
            )

    def start(self, now: float) -> None:
        """The first checkpoint is due one interval from ``now``."""
        self.pause_s = self.interval_s
        self.next_at = now + self.pause_s

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def retry(self, now: float, attempt: int) -> float:
        """A checkpoint could not be written (a server is away): try again after a backoff."""
        self.next_at = now + min(self.interval_s, backoff_s(attempt, first_s=1.0))
        return self.next_at

    def done(self, started: float, finished: float) -> float:
        """A checkpoint ran from ``started`` to ``finished``: schedule the next; return when."""
        self.pause_s = max(self.interval_s, self.ratio * (finished - started))
        self.next_at = finished + self.pause_s
        return self.next_at


@dataclass(frozen=True)
class Saved:
    """What a checkpoint wrote, and how long it took."""

    bytes: int
    seconds: float
    commit_error: str | None = None
    """Why the offsets did not reach Kafka (the checkpoint in Redis stands), if they did not."""
    committed: bool = False
    """Whether offsets were committed: the broker answered. A checkpoint with no partitions
    owned (all revoked while the brokers are away) commits nothing and says nothing of Kafka."""


@dataclass(frozen=True)
class Restored:
    """What :meth:`Checkpointer.assign` found for the partitions now owned."""

    partitions: list[int]
    analytics: bool
    """Whether the analytics were restored (saved for exactly these partitions, same settings)."""


class Checkpointer:
    """Saves and restores one monitor's state, in the steps the module docstring lists."""

    def __init__(
        self,
        *,
        model: str,
        store: MonitorStateStore,
        consumer: Consumer,
        producer: Producer,
        pacer: Pacer,
        config: MonitorConfig,
        describe: Callable[[int], VersionInfo],
        claim: RetrainClaim,
        label_window_ms: int,
        max_pending: int,
        partition_idle_ms: int = 2_000,
    ) -> None:
        self.model = model
        self._store = store
        self._consumer = consumer
        self._producer = producer
        self.pacer = pacer
        self._config = config
        self._describe = describe
        self._claim = claim
        self._label_window_ms = label_window_ms
        self._max_pending = max_pending
        self._partition_idle_ms = partition_idle_ms

    def due(self) -> bool:
        return self.pacer.due(time.monotonic())

    def save(self, state: MonitorState, *, commit: bool = True) -> Saved:
        """Steps 1 to 4 of a checkpoint (the caller has handed its last outputs to the producer)."""
        started = time.monotonic()
        # 1. Everything sent since the last checkpoint is delivered, or nothing is saved (and the
        #    checkpoint is tried again: the sends stay in the producer's buffer meanwhile).
        flushed = self._producer.flush(ATTEMPT_S)
        if flushed.failed:
            topic, reason = flushed.failed[0]
            raise KafkaError(
                f"{len(flushed.failed)} sends failed ({topic}: {reason}); restart the monitor to "
                "replay them"
            )
        if flushed.pending:
            raise KafkaError(
                f"the monitor's outputs were not delivered within {ATTEMPT_S:g} s",
                retriable=True,
            )
        # 2. State and input offsets, in one Redis transaction.
        analytics = None if state.watch is None else (state.watch, state.reorder)
        saving = time.monotonic()
        written = self._store.save(state.partitions, analytics)
        saved = time.monotonic()
        # 3. The same offsets to Kafka, outside rebalance callbacks.
        offsets = {
            TP(topic, partition): offset
            for partition, owned in state.partitions.items()
            for topic, offset in owned.offsets.items()
        }
        commit_error = None
        committed = False
        if offsets and commit:
            try:
                self._consumer.commit(offsets)
                committed = True
            except KafkaError as exc:
                log.warning("offset commit failed (%s); the checkpoint in Redis stands", exc)
                commit_error = str(exc)
        # 4. The next one (soon, when the commit failed: waiting on the broker is not a slow
        #    checkpoint to space out).
        finished = time.monotonic()
        if commit_error is None:
            # Paced by what the state costs to write, not by waits on the broker's answers.
            self.pacer.done(saving, saved)
            self.pacer.next_at = max(self.pacer.next_at, finished)
        else:
            self.pacer.retry(finished, 2)
        return Saved(written, finished - started, commit_error, committed)

    def assign(self, state: MonitorState, assigned: list[TP]) -> Restored:
        """Restore what was saved for newly assigned partitions, and seek to its offsets."""
        new = sorted({tp.partition for tp in assigned} - set(state.partitions))
        for partition in new:
            saved = self._store.load_partition(partition)
            if saved is None:
                saved = PartitionState(JoinBuffer(self._label_window_ms, self._max_pending), {})
            else:
                saved.join.window_ms = self._label_window_ms
                saved.join.max_pending = self._max_pending
            state.partitions[partition] = saved
        for tp in assigned:
            offset = state.partitions[tp.partition].offsets.get(tp.topic)
            if offset is not None:
                self._consumer.seek(tp, offset)
        analytics = self._store.load_analytics(sorted(state.partitions))
        changed = None if analytics is None else self._changed(analytics[0])
        if analytics is not None and changed is None:
            state.watch, state.reorder = analytics
            state.watch.attach(self._describe, self._claim)
        elif analytics is not None:
            log.warning("%s since the checkpoint: analytics start afresh", changed)
            state.watch, state.reorder = None, Reorder()
        state.reorder.idle_ms = self._partition_idle_ms  # this start's setting, not the saved one
        state.reorder.assign(set(state.partitions), monotonic_ms())
        return Restored(sorted(state.partitions), analytics is not None)

    def _changed(self, watch: ModelWatch) -> str | None:
        """What differs between restored analytics and this monitor: its settings, or what the
        registry's signed record says of a version (the checkpoint's copy is not trusted)."""
        if watch.config != self._config:
            return "monitor settings changed"
        for version, watched in watch.versions.items():
            if self._describe(version) != watched.info:
                return f"the registry's record of v{version} differs from the checkpoint's"
        return None

    def revoke(self, state: MonitorState, lost: set[int]) -> None:
        """The lost partitions' state leaves this monitor (saved first by the caller)."""
        for partition in lost:
            del state.partitions[partition]
        state.reorder.forget(lost)
