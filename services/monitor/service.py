"""The monitor: predictions and labels in; examples, alerts and retrain requests out.

One consumer reads the two co-partitioned topics with the range assignor, so partition ``p`` of
each lands on the same member and one :class:`~services.monitor.join.JoinBuffer` per partition
joins them (a prediction carries the features the model scored, so ``features`` need not be read).
Joined events go to ``examples`` at once, and, in event-time order across partitions
(:mod:`~services.monitor.reorder`), feed the model's
:class:`~services.monitor.analytics.watch.ModelWatch`; what it raises is produced as it happens.
The inputs are read in step by event time when both hold a backlog (:mod:`~services.monitor.inputs`),
and the state is saved by the protocol of :mod:`~services.monitor.checkpoint`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

import msgspec
import numpy as np

from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch, Signals
from services.monitor.checkpoint import Checkpointer, Pacer
from services.monitor.examples import ExampleBatcher
from services.monitor.inputs import Alignment, PacedInputs
from services.monitor.join import COUNTS, Joined, Scored
from services.monitor.metrics import MonitorMetrics
from services.monitor.reorder import Reorder
from services.monitor.retrain import RetrainClaim
from services.monitor.state import MonitorState, MonitorStateStore, PartitionState
from services.monitor.status import JoinLag, MonitorStatus
from shared.core.clock import monotonic_ms, now_ms
from shared.core.cloudevents import Headers, alert_headers
from shared.core.errors import BadMessage, KafkaError, RedisError
from shared.core.messages import (
    DEFAULT_MAX_BYTES,
    DriftAlert,
    EventTimes,
    Example,
    Label,
    Prediction,
)
from shared.core.topics import Topics
from shared.io.kafka import DeadLetterWriter, key_partition, key_partitions, record_value
from shared.io.transport import TP, Consumer, Producer, Record
from shared.models.targets import LabelCheck
from shared.runtime.outage import Outages, hand_over, poll_records

log = logging.getLogger(__name__)


class Monitor:
    """Joins, watches, alerts and checkpoints for one model."""

    def __init__(
        self,
        *,
        model: str,
        consumer: Consumer,
        producer: Producer,
        topics: Topics,
        store: MonitorStateStore,
        describe: Callable[[int], VersionInfo],
        config: MonitorConfig,
        dead_letters: DeadLetterWriter,
        metrics: MonitorMetrics,
        retrain_claim: RetrainClaim,
        active_version: Callable[[], int | None] = lambda: None,
        publish_status: Callable[[MonitorStatus], None] = lambda status: None,
        label_window_ms: int = 3_600_000,
        max_pending: int = 100_000,
        partition_idle_ms: int = 2_000,
        checkpoint_s: float = 5.0,
        batch_max: int = 1_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        times: EventTimes | None = None,
    ) -> None:
        self.model = model
        self._consumer = consumer
        self._producer = producer
        self._topics = topics
        self._describe = describe
        self._config = config
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._retrain_claim = retrain_claim
        self._publish_status = publish_status
        self._batch_max = batch_max
        self._max_bytes = max_bytes
        self._times = times or EventTimes()
        self._stop = threading.Event()
        self.state = MonitorState()
        """What a checkpoint saves: the partitions owned, the analytics, the reorder."""
        self.state.reorder.idle_ms = partition_idle_ms
        self._examples = ExampleBatcher(model)
        """Joined events not yet sent to ``examples``: sent once per poll, and before a checkpoint."""
        self._lags: deque[int] = deque(maxlen=10_000)
        self._new_lags: list[int] = []
        """Join lags since the last checkpoint, for the metrics' histogram."""
        self._checkpoints = Checkpointer(
            model=model,
            store=store,
            consumer=consumer,
            producer=producer,
            pacer=Pacer(checkpoint_s),
            config=config,
            describe=describe,
            claim=retrain_claim,
            label_window_ms=label_window_ms,
            max_pending=max_pending,
            partition_idle_ms=partition_idle_ms,
        )
        """Checkpoints every ``checkpoint_s``, or at most 1/21 of the time when they are slow."""
        self._checkpoints.pacer.start(time.monotonic())
        self.last_loop = time.monotonic()
        self.processed = 0
        self._label_checks: dict[int, LabelCheck] = {}
        """Per version seen in a prediction, how its labels are checked; the newest applies."""
        self._active_version = active_version
        self._next_active_ask = 0.0
        self._label_partitions: int | None = None
        self.misrouted = 0
        """Labels forwarded to their own partition since this process started."""
        self._next_misrouted_alert = 0.0
        self._closing = False
        self._examples_copartitioned: bool | None = None
        self._inputs = PacedInputs(
            consumer,
            Alignment(
                (topics.predictions, topics.labels),
                slack_ms=ALIGN_SLACK_MS,
                min_backlog=min(batch_max, max(1, max_pending // 4)),
                min_pending=max(1, max_pending // 4),
            ),
        )
        """Predictions and labels of a partition read in step, by event time, when both hold a
        backlog (a backfill, or catching up): see :mod:`services.monitor.inputs`."""
        self.outages = Outages()
        """Kafka or Redis unreachable: checkpoints wait (joining goes on), /readyz says why."""
        self._checkpoint_failures = 0
        self._unrestored: set[TP] = set()
        """Assigned partitions whose checkpoint Redis could not give yet: paused until it does."""
        self._next_restore = 0.0
        self.failure: Exception | None = None
        """Set when restoring assigned partitions failed: :meth:`run` raises it."""

    @property
    def partitions(self) -> dict[int, PartitionState]:
        return self.state.partitions

    @property
    def reorder(self) -> Reorder:
        return self.state.reorder

    @property
    def watch(self) -> ModelWatch | None:
        return self.state.watch

    # ---- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand, checkpoint, and return from :meth:`run`."""
        self._stop.set()

    def readiness(self) -> tuple[bool, str]:
        down = self.outages.readiness()
        if down is not None:
            return down
        if self._unrestored:
            return False, f"partitions {sorted(self._unrestored)} wait for Redis to restore"
        if not self.partitions:
            return False, "waiting for partitions (consumer group join)"
        return True, f"monitoring {self.model} on partitions {sorted(self.partitions)}"

    def run(self, timeout_s: float | None = None) -> int:
        """Monitor until :meth:`stop` or ``timeout_s``; return the records processed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        inputs = [self._topics.predictions, self._topics.labels]

        self._consumer.subscribe(inputs, on_assign=self._assigned, on_revoke=self._revoked)
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.last_loop = time.monotonic()
                self._restore_waiting()
                try:
                    polled = poll_records(
                        self._consumer,
                        self.outages,
                        self._stop,
                        "polling the monitor's topics",
                        timeout_s=0.1,
                        max_records=self._batch_max,
                    )
                finally:
                    if self.failure is not None:  # say why, not "rebalance callback failed"
                        raise self.failure
                self._metrics.consumer_lag.update(self._consumer)
                if polled is None:
                    continue
                for tp, records in _by_partition(polled).items():
                    self._metrics.records.labels(self.model, _noun(self._topics, tp.topic)).inc(
                        len(records)
                    )
                    self._process(tp, records)
                self._resume_caught_up()
                self._flush_examples()  # one record per partition and poll
                now = monotonic_ms()
                self._inputs.mark_backlogs(self.partitions, self.reorder, now)
                self._analyse(self.reorder.release(now))
                for state in self.partitions.values():
                    state.join.expire()
                if self._checkpoints.due():
                    self.checkpoint()
        finally:
            if self.partitions and self.failure is None:
                # Stopping: what is held would wait for data that a restart reads anyway.
                self._analyse(self.reorder.release(monotonic_ms(), everything=True))
                self.checkpoint()
            self._closing = True  # the close that follows revokes everything: nothing left to save
        return self.processed

    # ---- records ---------------------------------------------------------------------------

    def _process(self, tp: TP, records: list[Record]) -> None:
        state = self.state.partitions.get(tp.partition)
        if state is None:  # revoked while the batch was in flight: its next owner reads it
            return
        join = state.join
        topic = tp.topic
        partition = tp.partition
        now = monotonic_ms()
        align = self._inputs.align
        predictions = topic == self._topics.predictions
        other_backlog = self._inputs.other_backlog(tp)
        # The alignment is asked only once a quarter of the cap is pending, and told the latest
        # event time once per batch: a live stream pays next to nothing for it.
        min_pending = align.min_pending
        latest = -(2**62)
        rights: list[int] | None = None  # each label record's partition by its key, once needed
        try:
            for index, record in enumerate(records):
                state.offsets[topic] = record.offset + 1
                self.processed += 1
                try:
                    if predictions:
                        prediction = Prediction.decode(
                            record_value(record), max_bytes=self._max_bytes
                        )
                        ts = prediction.ts
                    else:
                        label = Label.decode(
                            record_value(record),
                            max_bytes=self._max_bytes,
                            default_ts=record.timestamp,
                        )
                        ts = label.ts if label.ts is not None else record.timestamp
                        self._times(ts, record.timestamp)
                    if join.pending >= min_pending and align.pause(
                        topic, partition, ts, join.pending, other_backlog
                    ):
                        self._leave_unread(tp, records[index:], state)
                        break
                    latest = max(latest, ts)
                    if not predictions:
                        label = self._checked(label)
                        # A label whose prediction waits here is on its partition: only the
                        # others need their key hashed (pure-Python murmur2, 5% of the CPU).
                        if not join.awaits_label(label.event_id):
                            if rights is None:  # the batch's keys hashed at once, when needed
                                rights = self._key_partitions(records)
                            if self._misrouted(record, label, rights[index] if rights else None):
                                continue
                        self._completed(partition, join.add_label(label), now)
                        continue
                    if prediction.model != self.model:
                        continue
                    if prediction.features is None:
                        raise BadMessage(
                            "features",
                            "missing: the monitor needs the features the model scored "
                            "(driftline predictors write them with every prediction)",
                        )
                    self._learn_version(prediction.version)  # before its labels arrive
                    self._completed(partition, join.add_prediction(prediction), now)
                except BadMessage as exc:
                    self._dead_letter(record, str(exc))
                    self._metrics.dead.labels(self.model, _noun(self._topics, topic)).inc()
        finally:
            align.seen(topic, partition, latest)

    def _leave_unread(self, tp: TP, rest: list[Record], state: PartitionState) -> None:
        """Pause ``tp`` and keep ``rest`` (already handed over by a poll) for when it resumes; a
        checkpoint meanwhile restarts from the first of them."""
        state.offsets[tp.topic] = rest[0].offset
        self.processed -= 1
        self._inputs.pause(tp, rest)

    def _resume_caught_up(self) -> None:
        def pending(partition: int) -> int:
            state = self.partitions.get(partition)
            return 0 if state is None else state.join.pending

        for tp, rest in self._inputs.resume_caught_up(pending, self.partitions):
            self._process(tp, rest)  # before anything a later poll hands over

    def _label_partition_count(self) -> int | None:
        if self._label_partitions is None:
            found = self._consumer.partitions_for(self._topics.labels)
            if found:
                self._label_partitions = len(found)
        return self._label_partitions

    def _key_partitions(self, records: list[Record]) -> list[int]:
        """The partition each record's key belongs to (empty while the count is unknown)."""
        partitions = self._label_partition_count()
        if partitions is None:
            return []
        return key_partitions([record.key or b"" for record in records], partitions)

    def _misrouted(self, record: Record, label: Label, right: int | None = None) -> bool:
        """Forward a label found on another partition than its ``event_id``'s to that partition,
        where its prediction is; True when it was forwarded (and is not joined here).

        driftline's predictors key predictions by ``event_id`` with murmur2, Java's and
        kafka-python's default partitioner. A label produced with librdkafka's default (kcat,
        confluent-kafka: crc32) lands elsewhere for most keys, where it would wait for a prediction
        that never comes. Forwarded, it joins once (a second copy after a crash counts as a
        duplicate); each is counted, and a ``data_quality`` alert names the fix."""
        partitions = self._label_partition_count()
        if partitions is None:
            return False
        key = label.event_id.encode()
        if right is None or record.key != key:  # ``right`` is the record key's partition
            right = key_partition(key, partitions)
        if right == record.partition:
            return False
        self._send(
            self._topics.labels,
            key,
            record.value or b"",
            partition=right,
            timestamp_ms=record.timestamp if record.timestamp >= 0 else None,
        )
        self.misrouted += 1
        self._metrics.labels_misrouted.labels(self.model).inc()
        if time.monotonic() >= self._next_misrouted_alert:
            self._next_misrouted_alert = time.monotonic() + 3_600.0
            self._misrouted_alert(record.partition, right)
        return True

    def _misrouted_alert(self, found: int, right: int) -> None:
        message = (
            f"labels of {self.model} arrive on other partitions than their event_id's (one for "
            f"partition {right} on {found}): their producer does not partition as Java and "
            "kafka-python do. The monitor forwards each to its partition, at a cost; fix the "
            "producer: librdkafka clients (kcat, confluent-kafka) need partitioner=murmur2_random "
            "(kcat -X partitioner=murmur2_random; confluent_kafka.Producer({..., 'partitioner': "
            "'murmur2_random'})), and every label keyed by its event_id"
        )
        version = max(self._label_checks, default=None) or self._active_version() or 1
        alert = DriftAlert(
            alert_id=uuid.uuid4().hex,
            ts=now_ms(),
            model=self.model,
            version=version,
            kind="data_quality",
            detector="partitioner",
            statistic=float(self.misrouted),
            threshold=0.0,
            window=self.misrouted,
            severity="warning",
            message=message,
        )
        self._send_alert(alert)

    def _send_alert(self, alert: DriftAlert) -> None:
        """One alert to ``alerts``, keyed by model, with its CloudEvents headers; counted and logged."""
        headers = alert_headers(alert, deployment=self._topics.deployment, service="monitor")
        self._send(self._topics.alerts, self.model, alert.encode(), headers=headers)
        self._metrics.alerts.labels(self.model, alert.kind, alert.state).inc()
        _log_alert(alert)

    def _learn_version(self, version: int) -> LabelCheck:
        check = self._label_checks.get(version)
        if check is None:
            info = self._describe(version)
            classes = tuple(info.classes) if info.classes is not None else None
            check = self._label_checks[version] = LabelCheck(info.task, classes)
        return check

    def _checked(self, label: Label) -> Label:
        """``label`` as a class of the newest version seen (or the active one, before any
        prediction is read), or :class:`BadMessage` naming the classes: a label that fits no class
        would be joined as a wrong answer, raise false drift and reach the trainer."""
        if not self._label_checks and time.monotonic() >= self._next_active_ask:
            self._next_active_ask = time.monotonic() + 10.0
            active = self._active_version()
            if active is not None:
                self._learn_version(active)
        if not self._label_checks:
            return label
        check = self._label_checks[max(self._label_checks)]
        value = check(label.label)
        if value is label.label:
            return label
        self._metrics.labels_coerced.labels(self.model).inc()
        return msgspec.structs.replace(label, label=value)

    def _completed(self, partition: int, completed: list[Scored | Joined], now: int) -> None:
        """Send each joined event to ``examples`` now; hand both kinds to the reorder, which
        holds them until every partition has passed their event time."""
        reorder = self.state.reorder
        for item in completed:
            if isinstance(item, Joined):
                self._lags.append(item.lag_ms)
                self._new_lags.append(item.lag_ms)
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
            reorder.push(partition, item.ts, item, now)

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
            self._send_alert(alert)
        for request in signals.retrain:
            self._send(self._topics.retrain, self.model, request.encode())
            self._metrics.retrain.labels(self.model).inc()
            log.warning(
                "retrain requested for %s (since ts %s): %s",
                self.model,
                request.since_ts,
                request.reason,
            )

    def _send(
        self,
        topic: str,
        key: str | bytes,
        value: bytes,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Hand one output to the producer. While Kafka is away (no metadata, the buffer full) it
        waits in bounded attempts; asked to stop meanwhile, it raises, and nothing past the last
        checkpoint is saved: the next start reads it again."""
        encoded = key.encode() if isinstance(key, str) else key

        def send() -> None:
            self._producer.send(
                topic,
                value,
                encoded,
                partition=partition,
                timestamp_ms=timestamp_ms,
                headers=headers,
            )

        self._hand_over(send, f"outputs for {topic}")

    def _dead_letter(self, record: Record, reason: str) -> None:
        """Like :meth:`_send`: waits while Kafka does not take it, raises if asked to stop."""
        self._hand_over(lambda: self._dead_letters.write(record, reason), "dead letters")

    def _hand_over(self, send: Callable[[], object], what: str) -> None:
        """``send()`` until the producer takes it (a retriable Kafka error is a wait, in bounded
        attempts); the next checkpoint's flush says whether it was delivered. Asked to stop meanwhile: raise, and
        nothing past the last checkpoint is saved, so the next start reads it again."""

        if not hand_over(self.outages, send, stopping=self._stop.is_set, tick=self.tick):
            raise KafkaError(
                f"stopping while Kafka does not take {what}: nothing after the last checkpoint "
                "is saved, and the next start reads it again"
            )

    def tick(self) -> None:
        """Stamp the loop as alive (a wait on a server that is away is not a stuck loop)."""
        self.last_loop = time.monotonic()

    def _flush_examples(self) -> None:
        for partition, batch in self._examples.drain():
            self._send_examples(partition, batch)
        if len(self._new_lags) >= 50_000:  # checkpoints failing for long: count them meanwhile
            lags, self._new_lags = self._new_lags, []
            self._metrics.observe_lags(lags)

    def _send_examples(self, partition: int, batch: bytes) -> None:
        key = f"{self.model}:{partition}"
        self._send(self._topics.examples, key, batch, self._example_partition(partition))

    def _example_partition(self, partition: int) -> int | None:
        """An example keeps its event's partition when ``examples`` has as many partitions as the
        joined topics: the partitioner would hash its key to that same partition, and naming it
        skips the hashing and a metadata lookup (a third of a send's cost in kafka-python)."""
        if self._examples_copartitioned is None:
            ours = self._producer.partitions_for(self._topics.examples)
            joined = self._consumer.partitions_for(self._topics.predictions)
            self._examples_copartitioned = bool(ours) and ours == joined
        return partition if self._examples_copartitioned else None

    def _ensure_watch(self) -> ModelWatch:
        if self.state.watch is None:
            self.state.watch = ModelWatch(
                self.model, self._config, self._describe, self._retrain_claim
            )
        return self.state.watch

    # ---- checkpoints and rebalances (services.monitor.checkpoint) ---------------------------

    def checkpoint(self, *, commit: bool = True) -> bool:
        """Hand the last examples to the producer, save (:meth:`Checkpointer.save`), and publish
        the status; True when the checkpoint was written.

        A checkpoint that cannot be written because Kafka or Redis is away is not an error: the
        monitor keeps joining from memory, says so on /readyz, and tries again with a backoff;
        the first that succeeds saves everything. ``commit=False`` inside a rebalance callback:
        it runs on kafka-python's I/O thread, which cannot block on a commit.
        """
        try:
            self._flush_examples()
            saved = self._checkpoints.save(self.state, commit=commit)
        except (KafkaError, RedisError) as exc:
            if isinstance(exc, KafkaError) and not exc.retriable:
                raise
            what = "kafka" if isinstance(exc, KafkaError) else "redis"
            self.outages.down(what, exc)
            self._checkpoint_failures += 1
            self._checkpoints.pacer.retry(time.monotonic(), self._checkpoint_failures)
            return False
        if self._checkpoint_failures:
            log.info("checkpoint written after %d failed attempts", self._checkpoint_failures)
        self._checkpoint_failures = 0
        if saved.commit_error is not None:
            self.outages.down("kafka", saved.commit_error)
        elif saved.committed:  # only a commit that reached the broker says it answers
            self.outages.up("kafka")
        self.outages.up("redis")
        self._metrics.checkpoint_seconds.labels(self.model).observe(saved.seconds)
        self._metrics.checkpoint_bytes.labels(self.model).set(saved.bytes)
        status = self.status()
        lags, self._new_lags = self._new_lags, []
        self._metrics.observe_lags(lags)
        self._metrics.publish(status)
        self._publish_status(status)
        return True

    def _restore_waiting(self) -> None:
        """Assigned partitions that waited for Redis: restore and resume them once it answers."""
        if not self._unrestored or time.monotonic() < self._next_restore:
            return
        waiting = sorted(self._unrestored, key=lambda tp: (tp.topic, tp.partition))
        try:
            restored = self._checkpoints.assign(self.state, waiting)
        except RedisError as exc:
            self.outages.down("redis", exc)
            self._next_restore = time.monotonic() + 5.0
            for tp in waiting:
                self.state.partitions.pop(tp.partition, None)
            return
        self._unrestored.clear()
        self.outages.up("redis")
        self._consumer.resume(waiting)
        log.info("partitions %s restored from checkpoint; resuming", restored.partitions)

    def _revoked(self, revoked: list[TP]) -> None:
        try:
            self.on_revoked(revoked)
        except Exception:
            log.exception("saving state for revoked partitions failed")
            raise

    def _assigned(self, assigned: list[TP]) -> None:
        try:
            self.on_assigned(assigned)
        except Exception as exc:
            log.exception("restoring state for assigned partitions failed")
            # A client may report only that a rebalance callback failed: keep the cause for
            # run() to raise.
            self.failure = exc
            raise

    def on_revoked(self, revoked: list[TP]) -> None:
        self._unrestored -= set(revoked)
        lost = {tp.partition for tp in revoked} & set(self.partitions)
        if not lost:
            return
        if not self._closing:
            log.info("partitions revoked: %s; checkpointing", sorted(lost))
            self.checkpoint(commit=False)
        self._checkpoints.revoke(self.state, lost)
        self._inputs.forget(lost)

    def on_assigned(self, assigned: list[TP]) -> None:
        try:
            restored = self._checkpoints.assign(self.state, assigned)
        except RedisError as exc:
            # Their checkpoint cannot be read now: they wait, paused, rather than start afresh.
            self.outages.down("redis", exc)
            self._unrestored |= set(assigned)
            self._consumer.pause(assigned)
            for tp in assigned:
                self.state.partitions.pop(tp.partition, None)
            log.warning(
                "partitions %s wait for Redis to restore their checkpoint",
                sorted({tp.partition for tp in assigned}),
            )
            return
        log.info(
            "partitions assigned: %s (%s)",
            restored.partitions,
            "restored from checkpoint" if restored.analytics else "no analytics checkpoint",
        )

    # ---- status ----------------------------------------------------------------------------

    def status(self) -> MonitorStatus:
        """Counts, coverage, join lag and per-version analytics, for metrics and `status`."""
        counts = dict.fromkeys(COUNTS, 0)
        for state in self.partitions.values():
            for name, value in state.join.counts.items():
                counts[name] += value
        closed = counts["joined"] + counts["expired"]
        lags = np.fromiter(self._lags, dtype=float) / 1000.0
        watch = self.watch
        summary = None if watch is None else watch.summary()
        return MonitorStatus(
            model=self.model,
            partitions=sorted(self.partitions),
            join=counts,
            pending=sum(state.join.pending for state in self.partitions.values()),
            held=len(self.reorder),
            paused=sorted(f"{_noun(self._topics, t)}[{p}]" for t, p in self._inputs.paused),
            label_coverage=counts["joined"] / closed if closed else None,
            labels_misrouted=self.misrouted,
            join_lag_s=JoinLag(
                p50=float(np.quantile(lags, 0.5)) if lags.size else None,
                p99=float(np.quantile(lags, 0.99)) if lags.size else None,
            ),
            current_version=None if summary is None else summary.current_version,
            retrain_outstanding=None if summary is None else summary.retrain_outstanding,
            versions=[] if summary is None else summary.versions,
            checkpoint_every_s=round(self._checkpoints.pacer.pause_s, 3),
            updated_at=now_ms(),
        )


ALIGN_SLACK_MS = 1_000
"""How far (event time) one input may run ahead of the other on a partition while both have a
backlog (:mod:`services.monitor.inputs`)."""


def _by_partition(records: list[Record]) -> dict[TP, list[Record]]:
    """Records grouped by topic partition, in the order each partition handed them over."""
    grouped: dict[TP, list[Record]] = {}
    for record in records:
        tp = TP(record.topic, record.partition)
        found = grouped.get(tp)
        if found is None:
            grouped[tp] = [record]
        else:
            found.append(record)
    return grouped


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
