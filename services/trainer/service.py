"""The trainer: a bounded window of labelled examples, retrain requests, and one leader that acts.

Every trainer of a model reads all of ``examples`` and all of ``retrain``
(:mod:`~services.trainer.inputs`), so a standby's window is as warm as the leader's. Only the
holder of the Redis leader lock (:class:`~services.trainer.leader.LeaderLock`) trains, registers,
promotes, rolls back and commits. Requests are handled once (:mod:`~services.trainer.requests`);
the training and judging are :func:`services.trainer.retraining.retrain`; every registry write is
:mod:`~services.trainer.promotion`'s; continuous learning is :mod:`~services.trainer.online`'s.
This module is the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from services.trainer.inputs import position
from services.trainer.leader import LeaderLock
from services.trainer.metrics import TrainerMetrics
from services.trainer.online import ContinuousLearning
from services.trainer.promotion import Promotion
from services.trainer.requests import Handled, Pending, RequestLog, Requests
from services.trainer.retraining import Outcome, TrainerConfig, preload, retrain
from services.trainer.rollback_guard import RollbackGuard, Verdict
from services.trainer.status import PendingRequest, TrainerStatus
from services.trainer.window import ExampleWindow, Stored
from shared.core.clock import now_ms
from shared.core.errors import BadMessage, DriftlineError, RedisError
from shared.core.kinds import Task
from shared.core.messages import DEFAULT_MAX_BYTES, Example, RetrainRequest, decode_examples
from shared.core.topics import Topics
from shared.io.kafka import DeadLetterWriter, record_value
from shared.io.transport import TP, Consumer, Record
from shared.models.serving import ServingModel
from shared.models.signing import Signer, Verifier
from shared.models.targets import LabelCheck
from shared.registry.claims import release_claim
from shared.registry.events import ModelEvents
from shared.registry.loading import load_version
from shared.registry.store import Registry
from shared.runtime.outage import Outages, backoff_s, poll_records

log = logging.getLogger(__name__)

WAITING_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class GuardSettings:
    labels: int = 300
    margin: float = 0.05


class Trainer:
    def __init__(
        self,
        *,
        model: str,
        consumer: Consumer,
        topics: Topics,
        registry: Registry,
        events: ModelEvents,
        lock: LeaderLock,
        signer: Signer,
        verifier: Verifier,
        config: TrainerConfig,
        window: ExampleWindow,
        requests: RequestLog,
        dead_letters: DeadLetterWriter,
        metrics: TrainerMetrics,
        guard: GuardSettings = GuardSettings(),
        publish_status: Callable[[TrainerStatus], None] = lambda status: None,
        status_every_s: float = 5.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.model = model
        self._consumer = consumer
        self._topics = topics
        self._registry = registry
        self.lock = lock
        self._signer = signer
        self._verifier = verifier
        self.config = config
        self.window = window
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._guard_settings = guard
        self.guard: RollbackGuard | None = None
        self._publish_status = publish_status
        self._status_every_s = status_every_s
        self._max_bytes = max_bytes
        self._stop = threading.Event()
        self._requests = Requests(
            model=model,
            request_log=requests,
            registry=registry,
            consumer=consumer,
            partition=TP(topics.retrain, 0),
            metrics=metrics,
        )
        self._promotion = Promotion(
            model=model,
            registry=registry,
            events=events,
            examples_topic=topics.examples,
            metrics=metrics,
            leading=lambda: self.lock.held,
        )
        self._online = ContinuousLearning(
            model=model,
            config=config,
            registry=registry,
            signer=signer,
            window=window,
            metrics=metrics,
        )
        self._champion: ServingModel | None = None
        self.outages = Outages()
        """Kafka or Redis unreachable: the leader's work waits, /readyz says why."""
        self._redis_failures = 0
        self._redis_retry_at = 0.0
        self._label_check_of: LabelCheck | None = None
        self._label_check_until = 0.0
        self._next_skip_log = 0.0
        self._next_snapshot = time.monotonic() + config.online_snapshot_s
        self._positioned = False
        self._next_lock_try = 0.0
        self._next_bootstrap = 0.0
        self._last_status = 0.0
        self.last_loop = time.monotonic()
        self.last_outcome: Handled | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> tuple[bool, str]:
        down = self.outages.readiness()
        if down is not None:
            return down
        if self.lock.error is not None:
            return False, f"redis unreachable: {self.lock.error}; waiting, nothing is lost"
        if not self._positioned:
            return False, "assigning examples and retrain partitions"
        if self.lock.held:
            role = "leader"
        else:
            try:
                role = f"standby (leader: {self.lock.current_holder()})"
            except DriftlineError:
                role = "standby"
        return True, f"trainer for {self.model}: {role}, {len(self.window)} examples"

    def run(self, timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        started = time.monotonic()
        preload()  # scikit-learn, skops, river: seconds to import, better now than mid-request
        log.info("training libraries loaded in %.1f s", time.monotonic() - started)
        position(
            self._consumer,
            self._topics,
            self._requests.partition,
            self.window.max_count,
            self.model,
        )
        self._positioned = True
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.last_loop = time.monotonic()
                self._lead()
                polled = poll_records(
                    self._consumer,
                    self.outages,
                    self._stop,
                    "polling examples and retrain requests",
                    timeout_s=0.2,
                    max_records=5_000,
                )
                self._metrics.consumer_lag.update(self._consumer)
                if polled is None:
                    continue
                retrain = self._topics.retrain
                for record in polled:
                    if record.topic == retrain:
                        self._on_request(record)
                    else:
                        self._on_examples(record)
                self._metrics.window.labels(self.model).set(len(self.window))
                self._work()
        finally:
            self.lock.release()
            self._metrics.leader.labels(self.model).set(0)

    def _work(self) -> None:
        """The leader's work and the status. Without Redis (the registry, the request log) it
        waits with a backoff and keeps reading examples into its window meanwhile."""
        if time.monotonic() < self._redis_retry_at:
            return
        try:
            if self.lock.held and not self._stop.is_set():
                self._act()
                if self.config.online and time.monotonic() >= self._next_snapshot:
                    self._next_snapshot = time.monotonic() + self.config.online_snapshot_s
                    self._snapshot()
            if time.monotonic() - self._last_status >= self._status_every_s:
                self._report()
        except RedisError as exc:
            self.outages.down("redis", exc)
            self._redis_failures += 1
            self._redis_retry_at = time.monotonic() + backoff_s(self._redis_failures)
            return
        if self._redis_failures:
            self._redis_failures = 0
            self.outages.up("redis")

    def _lead(self) -> None:
        now = time.monotonic()
        if self.lock.held or now < self._next_lock_try:
            return
        self._next_lock_try = now + 1.0
        try:
            if self.lock.try_acquire():
                log.info("trainer for %s is the leader (%s)", self.model, self.lock.holder)
                self._metrics.leader.labels(self.model).set(1)
                self._champion = None  # the registry may have moved while standing by
                self._online.reset()
        except DriftlineError as exc:
            self.outages.down("redis", f"cannot reach the leader lock: {exc}")
            return
        if self._redis_failures == 0:
            self.outages.up("redis")

    # ---- records ---------------------------------------------------------------------------

    def _on_examples(self, record: Record) -> None:
        """A record of ``examples``: one example, or the monitor's batch of them."""
        try:
            examples = decode_examples(record_value(record), max_bytes=self._max_bytes)
        except BadMessage as exc:
            self._dead_letter(record, exc, "examples")
            return
        for example in examples:
            if example.model == self.model:
                self._on_example(example, record)

    def _on_example(self, example: Example, record: Record) -> None:
        check = self._label_check()
        if check is not None:
            try:
                label = check(example.label)
            except BadMessage as exc:
                self._skip(example, record, "bad_label", exc)
                return
            if label is not example.label:
                example = msgspec.structs.replace(example, label=label)
        stored = Stored(
            example.event_id,
            example.ts,
            example.features,
            example.label,
            example.version,
            record.partition,
            record.offset,
            example.prediction,
        )
        if not self.window.add(stored):
            self._metrics.duplicates.labels(self.model).inc()
            return
        self._metrics.examples.labels(self.model).inc()
        if self.lock.held:
            try:
                self._online.learn(example)
            except Exception as exc:  # one example never stops the trainer
                self._skip(example, record, "learn_failed", exc)
        if self.guard is None and check is not None:
            self._make_guard(check.task)  # every new version is judged, whoever promoted it
        if self.guard is not None:
            verdict = self.guard.observe(example.version, example.label, example.prediction)
            if verdict is not None:
                self._judge(verdict)

    def _label_check(self) -> LabelCheck | None:
        """How labels of the active version are checked (its task and classes), looked up again
        when the active version may have moved; None while nothing says what a label should be."""
        now = time.monotonic()
        if now >= self._label_check_until:
            self._label_check_until = now + 5.0
            try:
                active = self._registry.active(self.model)
                if active is not None:
                    record = self._registry.get(self.model, active)
                    classes = tuple(record.classes) if record.classes is not None else None
                    self._label_check_of = LabelCheck(record.task, classes)
                elif self.config.task is not None:
                    self._label_check_of = LabelCheck(self.config.task, None)
            except DriftlineError as exc:
                log.warning("cannot read the active version to check labels: %s", exc)
        return self._label_check_of

    def _skip(self, example: Example, record: Record, reason: str, exc: Exception) -> None:
        """An example that cannot be used is counted and logged (at most once a minute), never
        kept: a bad one in ``examples`` must not stop the trainer on every restart."""
        self._metrics.skipped.labels(self.model, reason).inc()
        now = time.monotonic()
        if now >= self._next_skip_log:
            self._next_skip_log = now + 60.0
            log.warning(
                "example %s (examples partition %d offset %d) skipped, %s: %s",
                example.event_id,
                record.partition,
                record.offset,
                reason,
                exc,
            )

    def _on_request(self, record: Record) -> None:
        try:
            request = RetrainRequest.decode(record_value(record), max_bytes=self._max_bytes)
        except BadMessage as exc:
            self._dead_letter(record, exc, "retrain")
            return
        if request.model != self.model:
            return
        if not self._requests.add(record.offset, request, time.monotonic()):
            return
        log.info(
            "retrain request %s for %s: %s (since ts %s)",
            request.request_id,
            self.model,
            request.reason,
            request.since_ts,
        )

    def _dead_letter(self, record: Record, exc: BadMessage, noun: str) -> None:
        log.warning("%s record at offset %d refused: %s", noun, record.offset, exc)
        try:
            self._dead_letters.write(record, str(exc)).get(timeout=30)
        except (
            Exception
        ) as failed:  # the trainer commits no examples: nothing is lost but the letter
            self.outages.down("kafka", f"a dead letter was not delivered: {failed!r}")
        self._metrics.dead.labels(self.model, noun).inc()

    # ---- the leader's work -----------------------------------------------------------------

    def _act(self) -> None:
        if self._requests.pending:
            self._serve(self._requests.pending[0])
        elif time.monotonic() >= self._next_bootstrap:
            self._next_bootstrap = time.monotonic() + 5.0
            if self._registry.active(self.model) is None:
                self._bootstrap()

    def _serve(self, pending: Pending) -> None:
        request = pending.request
        done = None if pending.checked else self._requests.handled(request.request_id)
        pending.checked = True
        if done is not None:
            log.info(
                "retrain request %s was handled already (%s): nothing to train",
                request.request_id,
                done.outcome,
            )
            self._metrics.requests.labels(self.model, "replayed").inc()
            self._requests.finish(pending)
            return
        have = self.window.count(request.since_ts)
        if have < self.config.min_examples:
            outcome = Outcome("waiting", _waiting(have, self.config.min_examples, request.since_ts))
        else:
            outcome = self._train(request.request_id, request.since_ts)
        if outcome.kind == "waiting":
            now = time.monotonic()
            pending.why = outcome.reason
            if now - pending.last_said >= WAITING_LOG_EVERY_S:
                pending.last_said = now
                log.info("retrain request %s: %s", request.request_id, outcome.reason)
            return
        handled = self._apply(outcome)
        if not self.lock.held:
            return  # lost leadership midway: the new leader re-reads the request and decides
        self._requests.record(request.request_id, handled)
        self._metrics.requests.labels(self.model, "served").inc()
        self._requests.finish(pending)
        if handled.outcome not in ("promote", "registered"):
            # Answered without a new version (a rejected candidate, a failed training): the
            # monitors may ask again as soon as they find the next change.
            try:
                if release_claim(
                    self._registry.client,
                    self._registry.keys.retrain_outstanding(self.model),
                    request.request_id,
                ):
                    log.info(
                        "retrain request %s answered (%s): claim released",
                        request.request_id,
                        handled.outcome,
                    )
            except DriftlineError as exc:
                log.warning("could not release retrain request %s: %s", request.request_id, exc)

    def _bootstrap(self) -> None:
        outcome = self._train(None, None)
        if outcome.kind == "waiting":
            if time.monotonic() - self._last_status >= self._status_every_s:
                log.info("no model %s yet: %s", self.model, outcome.reason)
            return
        self._apply(outcome)

    def _train(self, request_id: str | None, since_ts: int | None) -> Outcome:
        champion = self._load_champion()
        started = time.perf_counter()
        outcome = retrain(
            self.window,
            model=self.model,
            config=self.config,
            signer=self._signer,
            champion=champion,
            request_id=request_id,
            since_ts=since_ts,
        )
        if outcome.kind != "waiting":
            seconds = time.perf_counter() - started
            self._metrics.training_seconds.labels(self.model, self.config.algorithm).observe(
                seconds
            )
            log.info(
                "trained %s on %d examples in %.1f s: %s",
                self.config.algorithm,
                outcome.examples,
                seconds,
                outcome.reason,
            )
        return outcome

    def _load_champion(self) -> ServingModel | None:
        active = self._registry.active(self.model)
        if active is None:
            self._champion = None
            return None
        if self._champion is None or self._champion.version != active:
            self._champion = load_version(self._registry, self.model, active, self._verifier)
            if self.guard is None:
                self._make_guard(self._champion.task)
        return self._champion

    def _make_guard(self, task: Task) -> None:
        settings = self._guard_settings
        self.guard = RollbackGuard(task, settings.labels, settings.margin)

    def _apply(self, outcome: Outcome) -> Handled:
        """Register, promote or reject as ``outcome`` says; watch what was promoted."""
        champion = self._champion
        applied = self._promotion.apply(outcome, champion.version if champion else None)
        promoted = applied.promoted
        if promoted is not None:
            if self.guard is None:
                self._make_guard(promoted.task)
            if applied.parent is not None and self.guard is not None:
                self.guard.promoted(promoted.version, applied.parent)
            self._online.reset()  # continuous learning goes on from the version now served
        self.last_outcome = applied.handled
        return applied.handled

    def _snapshot(self) -> None:
        champion = self._load_champion()
        if champion is None:
            return
        outcome = self._online.snapshot(champion)
        if outcome is not None:
            self._apply(outcome)

    def _judge(self, verdict: Verdict) -> None:
        if not verdict.rollback:
            log.info("rollback guard: %s", verdict.reason)
            return
        if not self.lock.held:
            return
        log.warning("rollback guard: %s; rolling v%d back", verdict.reason, verdict.version)
        try:
            handled = self._promotion.roll_back(verdict)
        except RedisError as exc:
            self.outages.down("redis", exc)
            if self.guard is not None:  # judge it again on the next labels
                self.guard.promoted(verdict.version, verdict.predecessor)
            return
        if handled is not None:
            self.last_outcome = handled

    # ---- status ----------------------------------------------------------------------------

    def status(self) -> TrainerStatus:
        return TrainerStatus(
            model=self.model,
            leader=self.lock.held,
            holder=self.lock.holder,
            algorithm=self.config.algorithm,
            examples=len(self.window),
            newest_ts=self.window.newest_ts,
            duplicates=self.window.duplicates,
            evicted=self.window.evicted,
            pending=[
                PendingRequest(
                    request_id=p.request.request_id, since_ts=p.request.since_ts, waiting=p.why
                )
                for p in self._requests.pending
            ],
            last_outcome=self.last_outcome,
            updated_at=now_ms(),
        )

    def _report(self) -> None:
        self._last_status = time.monotonic()
        try:
            self._publish_status(self.status())
        except DriftlineError as exc:
            log.warning("could not publish the trainer's status: %s", exc)


def _waiting(have: int, need: int, since_ts: int | None) -> str:
    where = "" if since_ts is None else f" at or after the change (event time {since_ts})"
    return f"{have} of the {need} examples needed{where}; waiting for more"
