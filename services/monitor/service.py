"""The monitor: predictions and labels in; examples, alerts and retrain requests out.

One consumer reads the two co-partitioned topics with the range assignor, so partition ``p`` of
each lands on the same member and one :class:`~services.monitor.join.JoinBuffer` per partition joins them
(a prediction carries the features the model scored, so ``features`` need not be read).
Joined events feed the model's :class:`~services.monitor.analytics.watch.ModelWatch`; what it raises is produced
as it happens. Every ``checkpoint_s`` (and on a rebalance or a stop) the monitor flushes what it
sent, writes its state with the input offsets to Redis in one transaction, then commits the offsets
to Kafka. A restarted monitor seeks to the checkpoint's offsets and replays from there: counts and
metrics come out as if it never stopped; outputs sent after the last checkpoint are sent again with
the same ids (alerts, requests) or event ids (examples), which readers deduplicate.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch, Signals
from services.monitor.checkpoint import MonitorStateStore, PartitionState
from services.monitor.examples import ExampleBatcher
from services.monitor.inputs import Alignment
from services.monitor.join import COUNTS, JoinBuffer, Joined, Scored
from services.monitor.metrics import MonitorMetrics
from services.monitor.pacing import Pacer
from services.monitor.reorder import Reorder
from services.monitor.retrain import RetrainClaim
from shared.core.errors import BadMessage, KafkaError
from shared.core.messages import (
    DEFAULT_MAX_BYTES,
    DriftAlert,
    Example,
    Label,
    Prediction,
)
from shared.core.topics import Topics
from shared.io.kafka import (
    AssignmentWatchdog,
    ConsumerRebalanceListener,
    ConsumerRecord,
    DeadLetterWriter,
    FutureRecordMetadata,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
    has_unread,
    kafka_errors,
    restore_parked_records,
    unread,
)

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    """Sends in flight since the last checkpoint."""

    futures: list[FutureRecordMetadata] = field(default_factory=list)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    # kafka-python reports a failing callback only as "User rebalance callback throws an error":
    # log the cause before it is swallowed.
    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            self._monitor.on_revoked(revoked)
        except Exception:
            log.exception("saving state for revoked partitions failed")
            raise

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            self._monitor.on_assigned(assigned)
        except Exception as exc:
            log.exception("restoring state for assigned partitions failed")
            # kafka-python reports only "User rebalance callback throws an error" (or, before 3.0,
            # nothing): keep the cause for run() to raise.
            self._monitor.failure = exc
            raise


class Monitor:
    """Joins, watches, alerts and checkpoints for one model."""

    def __init__(
        self,
        *,
        model: str,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        topics: Topics,
        store: MonitorStateStore,
        describe: Callable[[int], VersionInfo],
        config: MonitorConfig,
        dead_letters: DeadLetterWriter,
        metrics: MonitorMetrics,
        retrain_claim: RetrainClaim,
        publish_status: Callable[[dict[str, Any]], None] = lambda status: None,
        label_window_ms: int = 3_600_000,
        max_pending: int = 100_000,
        checkpoint_s: float = 5.0,
        batch_max: int = 1_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.model = model
        self._consumer = consumer
        self._producer = producer
        self._topics = topics
        self._store = store
        self._describe = describe
        self._config = config
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._retrain_claim = retrain_claim
        self._publish_status = publish_status
        self._label_window_ms = label_window_ms
        self._max_pending = max_pending
        self._batch_max = batch_max
        self._max_bytes = max_bytes
        self._stop = threading.Event()
        self.partitions: dict[int, PartitionState] = {}
        self.watch: ModelWatch | None = None
        self.reorder = Reorder()
        """Completed events waiting for every partition to pass their event time."""
        self._outputs = Outputs()
        self._examples = ExampleBatcher(model)
        """Joined events not yet sent to ``examples``: sent once per poll, and before a checkpoint."""
        self._lags: deque[int] = deque(maxlen=10_000)
        self._pacer = Pacer(checkpoint_s)
        """Checkpoints every ``checkpoint_s``, or at most 1/21 of the time when they are slow."""
        self._pacer.start(time.monotonic())
        self.last_loop = time.monotonic()
        self.processed = 0
        self._tasks: dict[int, str] = {}
        self._closing = False
        self._examples_copartitioned: bool | None = None
        self._next_backlog_check = 0
        self._align = Alignment(
            (topics.predictions, topics.labels),
            slack_ms=ALIGN_SLACK_MS,
            min_backlog=min(batch_max, max(1, max_pending // 4)),
            min_pending=max(1, max_pending // 4),
        )
        """Predictions and labels of a partition read in step, by event time, when both hold a
        backlog (a backfill, or catching up): see :mod:`services.monitor.inputs`."""
        self._stash: dict[tuple[str, int], list[ConsumerRecord]] = {}
        """The records of a held (paused) topic partition that a poll had already handed over:
        processed first when it is released."""
        self.failure: Exception | None = None
        """Set when restoring assigned partitions failed: :meth:`run` raises it."""

    # ---- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand, checkpoint, and return from :meth:`run`."""
        self._stop.set()

    def readiness(self) -> tuple[bool, str]:
        if not self.partitions:
            return False, "waiting for partitions (consumer group join)"
        return True, f"monitoring {self.model} on partitions {sorted(self.partitions)}"

    def run(self, timeout_s: float | None = None) -> int:
        """Monitor until :meth:`stop` or ``timeout_s``; return the records processed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        inputs = [self._topics.predictions, self._topics.labels]

        def subscribe() -> None:
            with kafka_errors(f"subscribing to {', '.join(inputs)}"):
                self._consumer.subscribe(inputs, listener=_Rebalance(self))

        subscribe()
        watchdog = AssignmentWatchdog(self._consumer, subscribe)
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.last_loop = time.monotonic()
                watchdog.check(bool(self.partitions))
                restore_parked_records(self._consumer)  # for partitions the alignment resumed
                try:
                    with kafka_errors("polling the monitor's topics"):
                        polled = self._consumer.poll(timeout_ms=100, max_records=self._batch_max)
                finally:
                    if self.failure is not None:  # say why, not "rebalance callback failed"
                        raise self.failure
                for tp, records in polled.items():
                    self._metrics.records.labels(self.model, _noun(self._topics, tp.topic)).inc(
                        len(records)
                    )
                    self._process(tp, records)
                self._release_held()
                self._flush_examples()  # one record per partition and poll
                now = _now_ms()
                if now >= self._next_backlog_check:
                    # A partition idles after Reorder.idle_ms (2 s) without news: checking its
                    # backlog a few times a second is enough, and keeps position() lookups off
                    # every poll.
                    self._next_backlog_check = now + BACKLOG_CHECK_MS
                    self._mark_backlogs(inputs, now)
                self._analyse(self.reorder.release(now))
                for state in self.partitions.values():
                    state.join.expire()
                if self._pacer.due(time.monotonic()):
                    self.checkpoint()
        finally:
            if self.partitions and self.failure is None:
                # Stopping: what is held would wait for data that a restart reads anyway.
                self._analyse(self.reorder.release(_now_ms(), everything=True))
                self.checkpoint()
            self._closing = True  # the close that follows revokes everything: nothing left to save
        return self.processed

    def _mark_backlogs(self, inputs: list[str], now: int) -> None:
        """Partitions with records still unread hold the reorder watermark, however quiet."""
        for partition in self.partitions:
            if any(has_unread(self._consumer, TopicPartition(t, partition)) for t in inputs):
                self.reorder.busy(partition, now)

    # ---- records ---------------------------------------------------------------------------

    def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        state = self.partitions.get(tp.partition)
        if state is None:  # revoked while the batch was in flight: its next owner reads it
            return
        join = state.join
        topic = tp.topic
        partition = tp.partition
        now = _now_ms()
        align = self._align
        predictions = topic == self._topics.predictions
        other = TopicPartition(
            self._topics.labels if predictions else self._topics.predictions, partition
        )

        @functools.cache
        def other_backlog() -> int | None:
            # Asked for each record ahead of the other input while many events are pending (a
            # live stream whose labels come hours later asks for every prediction). The client's
            # position() costs ~20 µs, and the position cannot move before the next poll (the
            # high watermark may, by a fetch's worth): ask once per batch.
            return unread(self._consumer, other)

        # The alignment is asked only once a quarter of the cap is pending, and told the latest
        # event time once per batch: a live stream pays next to nothing for it.
        min_pending = align.min_pending
        latest = -(2**62)
        try:
            for index, record in enumerate(records):
                state.offsets[topic] = record.offset + 1
                self.processed += 1
                try:
                    if predictions:
                        prediction = Prediction.decode(
                            self._value(record), max_bytes=self._max_bytes
                        )
                        ts = prediction.ts
                    else:
                        label = Label.decode(
                            self._value(record),
                            max_bytes=self._max_bytes,
                            default_ts=record.timestamp,
                        )
                        ts = label.ts if label.ts is not None else record.timestamp
                    if join.pending >= min_pending and align.hold(
                        topic, partition, ts, join.pending, other_backlog
                    ):
                        self._leave_unread(tp, records[index:], state)
                        break
                    latest = max(latest, ts)
                    if not predictions:
                        self._check_label(label)
                        self._hold(partition, join.add_label(label), now)
                        continue
                    if prediction.model != self.model:
                        continue
                    if prediction.features is None:
                        raise BadMessage(
                            "features",
                            "missing: the monitor needs the features the model scored "
                            "(driftline predictors write them with every prediction)",
                        )
                    self._task(prediction.version)  # learn the task before its labels arrive
                    self._hold(partition, join.add_prediction(prediction), now)
                except BadMessage as exc:
                    self._outputs.futures.append(self._dead_letters.write(record, str(exc)))
                    self._metrics.dead.labels(self.model, _noun(self._topics, topic)).inc()
        finally:
            align.seen(topic, partition, latest)

    def _leave_unread(
        self, tp: TopicPartition, rest: list[ConsumerRecord], state: PartitionState
    ) -> None:
        """Pause ``tp`` and keep ``rest`` (already handed over by a poll) for its release; a
        checkpoint meanwhile restarts from the first of them."""
        state.offsets[tp.topic] = rest[0].offset
        self.processed -= 1
        self._stash[(tp.topic, tp.partition)] = rest
        with kafka_errors(f"pausing {tp.topic} [{tp.partition}]"):
            self._consumer.pause(tp)
        log.debug(
            "%s [%d] paused at offset %d: ahead of the other input in event time",
            tp.topic,
            tp.partition,
            rest[0].offset,
        )

    def _release_held(self) -> None:
        def backlog(topic: str, partition: int) -> int | None:
            return unread(self._consumer, TopicPartition(topic, partition))

        def pending(partition: int) -> int:
            state = self.partitions.get(partition)
            return 0 if state is None else state.join.pending

        for topic, partition in self._align.releasable(backlog, pending):
            rest = self._stash.pop((topic, partition), [])
            if partition not in self.partitions:
                continue  # revoked: its next owner reads from the checkpoint's offsets
            tp = TopicPartition(topic, partition)
            with kafka_errors(f"resuming {topic} [{partition}]"):
                self._consumer.resume(tp)
            self._process(tp, rest)  # before anything a later poll hands over

    @staticmethod
    def _value(record: ConsumerRecord) -> bytes:
        if record.value is None:
            raise BadMessage("$", "empty record (a tombstone) where a message was expected")
        return bytes(record.value)

    def _task(self, version: int) -> str:
        task = self._tasks.get(version)
        if task is None:
            task = self._tasks[version] = self._describe(version).task
        return task

    def _check_label(self, label: Label) -> None:
        """A regression model needs a numeric label; refuse it here, where it can be dead-lettered."""
        if not self._tasks:
            return
        latest = self._tasks[max(self._tasks)]
        value = label.label
        if latest == "regression" and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise BadMessage(
                "label", f"expected a number for regression model {self.model}, got {value!r}"
            )

    def _hold(self, partition: int, completed: list[Scored | Joined], now: int) -> None:
        """Send each joined event to ``examples`` now; hand both kinds to the analytics once every
        partition has passed their event time (:class:`~services.monitor.reorder.Reorder`)."""
        for item in completed:
            if isinstance(item, Joined):
                self._lags.append(item.lag_ms)
                example = Example(
                    event_id=item.event_id,
                    ts=item.ts,
                    model=self.model,
                    features=item.features,
                    label=item.label,
                    prediction=item.prediction,
                    version=item.version,
                )
                full = self._examples.add(partition, example)
                if full is not None:
                    self._send_examples(partition, full)
            self.reorder.push(partition, item.ts, item, now)

    def _analyse(self, items: list[Scored | Joined]) -> None:
        if not items:
            return
        for signals in self._ensure_watch().feed(items):
            if signals.served is not None:
                log.info(
                    "%s v%s is now served; retrain request cleared", self.model, signals.served
                )
            self._emit(signals)

    def _emit(self, signals: Signals) -> None:
        for alert in signals.alerts:
            self._send(self._topics.alerts, self.model, alert.encode())
            self._metrics.alerts.labels(self.model, alert.kind, alert.state).inc()
            _log_alert(alert)
        for request in signals.retrain:
            self._send(self._topics.retrain, self.model, request.encode())
            self._metrics.retrain.labels(self.model).inc()
            log.warning(
                "retrain requested for %s (since ts %s): %s",
                self.model,
                request.since_ts,
                request.reason,
            )

    def _send(self, topic: str, key: str, value: bytes, partition: int | None = None) -> None:
        with kafka_errors(f"producing to {topic}"):
            self._outputs.futures.append(
                self._producer.send(topic, key=key.encode(), value=value, partition=partition)
            )

    def _flush_examples(self) -> None:
        for partition, batch in self._examples.drain():
            self._send_examples(partition, batch)

    def _send_examples(self, partition: int, batch: bytes) -> None:
        key = f"{self.model}:{partition}"
        self._send(self._topics.examples, key, batch, self._example_partition(partition))

    def _example_partition(self, partition: int) -> int | None:
        """An example keeps its event's partition when ``examples`` has as many partitions as the
        joined topics: the partitioner would hash its key to that same partition, and naming it
        skips the hashing and a metadata lookup (a third of a send's cost in kafka-python)."""
        if self._examples_copartitioned is None:
            with kafka_errors(f"reading the partitions of {self._topics.examples}"):
                ours = self._producer.partitions_for(self._topics.examples)
                joined = self._consumer.partitions_for_topic(self._topics.predictions)
            self._examples_copartitioned = bool(ours) and ours == joined
        return partition if self._examples_copartitioned else None

    def _ensure_watch(self) -> ModelWatch:
        if self.watch is None:
            self.watch = ModelWatch(self.model, self._config, self._describe, self._retrain_claim)
        return self.watch

    # ---- checkpoints and rebalances --------------------------------------------------------

    def checkpoint(self, *, commit: bool = True) -> None:
        """Flush outputs, save state and offsets to Redis atomically, then commit to Kafka.

        ``commit=False`` inside a rebalance callback: it runs on kafka-python's I/O thread, which
        cannot block on a commit. Redis holds the offsets that count; Kafka's copy shows lag.
        """
        started = time.monotonic()
        self._flush_examples()
        with kafka_errors("flushing the monitor's outputs"):
            self._producer.flush()
        failed = [future.exception for future in self._outputs.futures if future.failed()]
        self._outputs = Outputs()
        if failed:
            # The checkpoint is not written: a restarted monitor replays and sends them again.
            raise KafkaError(
                f"{len(failed)} sends failed ({failed[0]}); restart the monitor to replay them"
            )
        written = self._store.save(
            self.partitions, None if self.watch is None else (self.watch, self.reorder)
        )
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for partition, state in self.partitions.items()
            for topic, offset in state.offsets.items()
        }
        if offsets and commit:
            try:
                with kafka_errors("committing the monitor's offsets"):
                    self._consumer.commit(offsets=offsets)
            except KafkaError as exc:
                # Redis holds the offsets that count; Kafka's copy shows lag and seeds a reset.
                log.warning("offset commit failed (%s); the checkpoint in Redis stands", exc)
        finished = time.monotonic()
        self._pacer.done(started, finished)
        self._metrics.checkpoint_seconds.labels(self.model).observe(finished - started)
        self._metrics.checkpoint_bytes.labels(self.model).set(written)
        status = self.status()
        self._metrics.publish(status)
        self._publish_status(status)

    def on_revoked(self, revoked: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in revoked} & set(self.partitions)
        if not lost:
            return
        if not self._closing:
            log.info("partitions revoked: %s; checkpointing", sorted(lost))
            self.checkpoint(commit=False)
        for partition in lost:
            del self.partitions[partition]
        self.reorder.forget(lost)
        self._align.forget(lost)  # a new assignment starts unpaused
        for key in [key for key in self._stash if key[1] in lost]:
            del self._stash[key]

    def on_assigned(self, assigned: list[TopicPartition]) -> None:
        new = sorted({tp.partition for tp in assigned} - set(self.partitions))
        for partition in new:
            state = self._store.load_partition(partition)
            if state is None:
                state = PartitionState(JoinBuffer(self._label_window_ms, self._max_pending), {})
            else:
                state.join.window_ms = self._label_window_ms
                state.join.max_pending = self._max_pending
            self.partitions[partition] = state
        for tp in assigned:
            offset = self.partitions[tp.partition].offsets.get(tp.topic)
            if offset is not None:
                self._consumer.seek(tp, offset)
        restored = self._store.load_analytics(sorted(self.partitions))
        if restored is not None and restored[0].config == self._config:
            self.watch, self.reorder = restored
            self.watch.attach(self._describe, self._retrain_claim)
        elif restored is not None:
            log.warning("monitor settings changed since the checkpoint: analytics start afresh")
            self.watch, self.reorder = None, Reorder()
        self.reorder.assign(set(self.partitions), _now_ms())
        log.info(
            "partitions assigned: %s (%s)",
            sorted(self.partitions),
            "restored from checkpoint" if restored is not None else "no analytics checkpoint",
        )

    # ---- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts, coverage, join lag and per-version analytics, for metrics and `status`."""
        counts = dict.fromkeys(COUNTS, 0)
        for state in self.partitions.values():
            for name, value in state.join.counts.items():
                counts[name] += value
        closed = counts["joined"] + counts["expired"]
        lags = np.fromiter(self._lags, dtype=float) / 1000.0
        summary = self.watch.summary() if self.watch else {"current_version": None, "versions": []}
        return {
            "model": self.model,
            "partitions": sorted(self.partitions),
            "join": counts,
            "pending": sum(state.join.pending for state in self.partitions.values()),
            "held": len(self.reorder),
            "paused": sorted(f"{_noun(self._topics, t)}[{p}]" for t, p in self._align.held),
            "label_coverage": counts["joined"] / closed if closed else None,
            "join_lag_s": {
                "0.5": float(np.quantile(lags, 0.5)) if lags.size else None,
                "0.99": float(np.quantile(lags, 0.99)) if lags.size else None,
            },
            "current_version": summary["current_version"],
            "retrain_outstanding": summary.get("retrain_outstanding"),
            "versions": summary["versions"],
            "checkpoint_every_s": round(self._pacer.pause_s, 3),
            "updated_at": int(time.time() * 1000),
        }


BACKLOG_CHECK_MS = 250
ALIGN_SLACK_MS = 1_000
"""How far (event time) one input may run ahead of the other on a partition while both have a
backlog (:mod:`services.monitor.inputs`)."""


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


def _noun(topics: Topics, topic: str) -> str:
    return topic.removeprefix(topics.prefix)


def _log_alert(alert: DriftAlert) -> None:
    level = logging.WARNING if alert.state == "firing" else logging.INFO
    log.log(
        level,
        "alert %s %s v%d %s%s: %s",
        alert.state,
        alert.model,
        alert.version,
        alert.kind,
        f" [{alert.feature}]" if alert.feature else "",
        alert.message,
    )
