"""The predictor: feature events in, predictions out, scored in micro-batches by the active model.

Per batch: poll up to ``batch_max`` records (waiting at most ``batch_wait_ms``), read the watcher's
current model once (the batch boundary, where a hot swap takes effect), decode, validate and score
(:func:`services.predictor.scoring.handle`, the data plane), then either (at-least-once) send,
flush and commit the batch's offsets, or (exactly-once) send and commit the offsets inside one
Kafka transaction. Events that cannot be scored go to the dead-letter topic with the reason; the
partition moves on and nothing accepted is lost.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from services.predictor.codec import PredictionEncoder, RowDecoder
from services.predictor.metrics import PredictorMetrics
from services.predictor.quality import FeatureWatch
from services.predictor.scoring import ScoredBatch, handle
from shared.core.clock import now_ms
from shared.core.errors import KafkaError
from shared.core.messages import DEFAULT_MAX_BYTES, DriftAlert, EventTimes
from shared.core.schema import refused_feature
from shared.core.topics import Topics
from shared.io.kafka import DeadLetterWriter
from shared.io.transport import TP, Consumer, Producer, Record, first_offsets, next_offsets
from shared.models.serving import ServingModel
from shared.runtime.outage import Outages, poll_records

log = logging.getLogger(__name__)

WAIT_LOG_EVERY_S = 10.0


def _names(partitions: list[TP]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"


class Predictor:
    """Consumes feature events and produces predictions with the watcher's current model."""

    def __init__(
        self,
        *,
        model: str,
        consumer: Consumer,
        producer: Producer,
        topics: Topics,
        current_model: Callable[[], ServingModel | None],
        wait_for_model: Callable[[float], ServingModel | None],
        dead_letters: DeadLetterWriter,
        metrics: PredictorMetrics,
        group_id: str,
        batch_max: int = 500,
        batch_wait_ms: int = 50,
        max_bytes: int = DEFAULT_MAX_BYTES,
        times: EventTimes | None = None,
        exactly_once: bool = False,
        crash_after_batches: int | None = None,
        feature_watch: FeatureWatch | None = None,
        publish_alert: Callable[[DriftAlert], None] | None = None,
    ) -> None:
        self._model = model
        self._feature_watch = feature_watch
        self._publish_alert = publish_alert
        self._consumer = consumer
        self._producer = producer
        self._topics = topics
        self._current_model = current_model
        self._wait_for_model = wait_for_model
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._group_id = group_id
        self._batch_max = batch_max
        self._batch_wait_ms = batch_wait_ms
        self._max_bytes = max_bytes
        self._times = times or EventTimes()
        self._exactly_once = exactly_once
        self._crash_after_batches = crash_after_batches
        self._batches = 0
        self._stop = threading.Event()
        self._partitions: set[TP] = set()
        self._serving_version: int | None = None
        self._coded: ServingModel | None = None
        """The version the decoder and encoder are for (made once per version)."""
        self._decoder: RowDecoder | None = None
        self._encoder: PredictionEncoder | None = None
        self.last_loop = time.monotonic()
        """When the loop last went round: /healthz reports a loop stuck for too long."""
        self.waiting_reason = "starting"
        self.outages = Outages()
        """Kafka unreachable: the batch in hand waits, and /readyz says why."""

    @property
    def ready(self) -> bool:
        """A model is loaded and this predictor owns at least one partition."""
        return self._serving_version is not None and bool(self._partitions)

    def readiness(self) -> tuple[bool, str]:
        down = self.outages.readiness()
        if down is not None:
            return down
        if self._serving_version is None:
            return False, self.waiting_reason
        if not self._partitions:
            return False, "waiting for partitions of the features topic (consumer group join)"
        return (
            True,
            f"serving {self._model} v{self._serving_version} on {len(self._partitions)} partitions",
        )

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit, and return."""
        self._stop.set()

    def run(self, max_messages: int | None = None, timeout_s: float | None = None) -> int:
        """Score until :meth:`stop`, ``max_messages`` records, or ``timeout_s`` seconds; return the
        number of records processed.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if not self._await_first_model(deadline):
            return 0

        self._consumer.subscribe(
            [self._topics.features], on_assign=self._assigned, on_revoke=self._revoked
        )
        processed = 0
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if max_messages is not None and processed >= max_messages:
                break
            self.last_loop = time.monotonic()
            limit = (
                self._batch_max
                if max_messages is None
                else min(self._batch_max, max_messages - processed)
            )
            records = poll_records(
                self._consumer,
                self.outages,
                self._stop,
                f"polling {self._topics.features}",
                timeout_s=self._batch_wait_ms / 1000,
                max_records=limit,
            )
            self._metrics.consumer_lag.update(self._consumer)
            if records:
                self._process(records)
                processed += len(records)
        return processed

    def _assigned(self, partitions: list[TP]) -> None:
        self._partitions |= set(partitions)
        log.info("partitions assigned: %s", _names(partitions))

    def _revoked(self, partitions: list[TP]) -> None:
        self._partitions -= set(partitions)
        log.info("partitions revoked: %s", _names(partitions))

    def _await_first_model(self, deadline: float | None) -> bool:
        last_log = 0.0
        while not self._stop.is_set():
            self.last_loop = time.monotonic()
            model = self._wait_for_model(0.5)
            if model is not None:
                self._serving_version = model.version
                self._metrics.active_version.set(model.version)
                return True
            if time.monotonic() - last_log > WAIT_LOG_EVERY_S:
                log.warning("not ready: %s", self.waiting_reason)
                last_log = time.monotonic()
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return False

    def _process(self, records: list[Record]) -> None:
        received_at = time.time()
        started = time.perf_counter()
        model = self._current_model()
        assert model is not None  # noqa: S101 - a model never goes away once loaded
        if model.version != self._serving_version:
            log.info(
                "swapped %s v%s -> v%d at a batch boundary",
                self._model,
                self._serving_version,
                model.version,
            )
            self._serving_version = model.version
            self._metrics.active_version.set(model.version)
            self._metrics.swaps.inc()
        if self._coded is not model:
            self._coded = model
            self._decoder = RowDecoder(model.schema)
            self._encoder = PredictionEncoder(model.name, model.version, model.features)
        self._batches += 1
        outcome = handle(
            records,
            model,
            received_at,
            self._max_bytes,
            times=self._times,
            decoder=self._decoder,
            encoder=self._encoder,
        )
        self._metrics.events_in.inc(len(records))
        offsets = next_offsets(records)
        if self._exactly_once:
            self._deliver_transactionally(outcome, offsets, records)
        else:
            self._deliver(outcome, offsets, records)
        self._metrics.predicted(model.version, len(outcome.encoded))
        for _, category, _ in outcome.refused:
            self._metrics.dead_lettered(category)
        self._watch_features(model, outcome)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(records))

    def _watch_features(self, model: ServingModel, outcome: ScoredBatch) -> None:
        """Count refused values and unknown features; publish what the watch says."""
        refused = [
            name
            for _, category, reason in outcome.refused
            if category in ("bad_feature", "missing_feature")
            and (name := refused_feature(reason)) is not None
        ]
        for name in refused:
            self._metrics.refused_values.labels(self._model, name).inc()
        watch = self._feature_watch
        if watch is None:
            return
        alerts = watch.observe(model.version, model.schema, outcome.seen, refused, ts=now_ms())
        for alert in alerts:
            log.warning("data quality (%s): %s", alert.state, alert.message)
            if self._publish_alert is not None:
                self._publish_alert(alert)

    def _send_all(self, outcome: ScoredBatch) -> None:
        topic = self._topics.predictions
        send = self._producer.send
        for key, value in zip(outcome.keys, outcome.encoded, strict=True):
            send(topic, value, key)
        for record, _, reason in outcome.refused:
            self._dead_letters.write(record, reason)

    def _deliver(self, outcome: ScoredBatch, offsets: dict[TP, int], records: list[Record]) -> None:
        """At-least-once: send, flush, and commit only when every send succeeded.

        While the broker is away the flush waits in bounded attempts (the loop stays alive,
        /readyz says why); asked to stop meanwhile, it commits nothing, and the next owner of
        these partitions scores the batch again."""
        try:
            self._send_all(outcome)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            self.outages.down("kafka", exc)
            self._rewind(records)
            return
        failed: list[tuple[str, str]] = []

        def flushed(timeout_s: float) -> bool:
            result = self._producer.flush(timeout_s)
            failed.extend(result.failed)
            return result.pending == 0

        if not self._wait("kafka", flushed, "flush timed out"):
            log.warning("stopping with %d records unconfirmed: they are scored again", len(records))
            self._rewind(records)
            return
        if failed:
            log.error(
                "%d sends failed (%s: %s); the batch will be scored again",
                len(failed),
                *failed[0],
            )
            self._rewind(records)
            return
        self._fault_point()
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took the partitions away, or the broker is away: the next owner (or
            # this one, from the last commit) scores these records again.
            log.warning("commit failed (%s); these records are scored again", exc)

    def _wait(self, what: str, attempt: Callable[[float], bool | str], why: str) -> bool:
        return self.outages.wait(
            what, attempt, stopping=self._stop.is_set, tick=self._tick, why=why
        )

    def _tick(self) -> None:
        self.last_loop = time.monotonic()

    def _step(self, action: str, call: Callable[[float], None]) -> bool:
        """Wait on one transaction step in bounded attempts: True once it is done, False when
        asked to stop meanwhile. A retriable error is a step that has not finished yet (called
        again, it goes on waiting); any other is raised."""

        def attempt(timeout_s: float) -> bool | str:
            try:
                call(timeout_s)
            except KafkaError as exc:
                if exc.retriable:
                    return str(exc)
                raise
            return True

        return self._wait("kafka", attempt, f"{action} timed out")

    def _deliver_transactionally(
        self, outcome: ScoredBatch, offsets: dict[TP, int], records: list[Record]
    ) -> None:
        """Exactly-once: predictions, dead letters and offsets in one Kafka transaction.

        Each step that waits on the broker waits in bounded attempts; stopping in the middle,
        nothing is committed (the next instance with this transactional id aborts it)."""
        producer = self._producer
        try:
            producer.begin_transaction()
            self._send_all(outcome)
            if (
                not self._step(
                    "adding offsets to the transaction",
                    lambda t: producer.send_offsets_to_transaction(offsets, self._consumer, t),
                )
                or not self._committed()
            ):
                log.warning("stopping inside a transaction: it commits nothing")
                self._rewind(records)
                return
        except KafkaError as exc:
            if "fenced" in str(exc).lower():
                raise
            log.error("transaction failed (%s); aborting and scoring the batch again", exc)
            self._step("aborting the transaction", producer.abort_transaction)
            self._rewind(records)

    def _committed(self) -> bool:
        self._fault_point()
        return self._step("committing the transaction", self._producer.commit_transaction)

    def _fault_point(self) -> None:
        """Testing only (DRIFTLINE_FAULT_CRASH_AFTER_BATCHES): die at the worst moment, with this
        batch's outputs sent and its offsets not committed, as a power cut would.
        """
        if self._crash_after_batches is not None and self._batches >= self._crash_after_batches:
            log.critical(
                "fault injection: SIGKILL after batch %d, before its commit", self._batches
            )
            os.kill(os.getpid(), signal.SIGKILL)

    def _rewind(self, records: list[Record]) -> None:
        """Seek each partition back to the batch's first record, so nothing is skipped."""
        for tp, offset in first_offsets(records).items():
            if tp in self._partitions:
                self._consumer.seek(tp, offset)
