"""The trainer: a bounded window of labelled examples, retrain requests, and one leader that acts.

Every trainer of a model reads all of ``examples`` (from the newest ``window_count`` records per
partition back) and all of ``retrain``, so a standby's window is as warm as the leader's. Only the
holder of the Redis leader lock (:class:`~services.trainer.leader.LeaderLock`) trains, registers, promotes,
rolls back and commits. A request is handled once: its outcome is recorded in Redis by request id
(and a version trained for it names it in its lineage), so a replayed or re-read request trains
nothing new. The training and judging are :func:`services.trainer.retraining.retrain`; this module is the
loop and the side effects.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.trainer.leader import LeaderLock
from services.trainer.metrics import TrainerMetrics
from services.trainer.online import OnlineLearner
from services.trainer.retraining import Outcome, TrainerConfig, preload, retrain
from services.trainer.rollback_guard import RollbackGuard, Verdict
from services.trainer.status import PendingRequest, TrainerStatus
from services.trainer.window import ExampleWindow, Stored
from shared.core.clock import now_ms
from shared.core.errors import BadMessage, DriftlineError, KafkaError, ModelNotFound
from shared.core.kinds import Task
from shared.core.messages import DEFAULT_MAX_BYTES, Example, RetrainRequest, decode_examples
from shared.core.topics import Topics
from shared.io.kafka import (
    ConsumerRecord,
    DeadLetterWriter,
    KafkaConsumer,
    OffsetAndMetadata,
    TopicPartition,
    kafka_errors,
    record_value,
)
from shared.io.redis import Redis, redis_errors
from shared.models.algorithms import algorithm
from shared.models.serving import ServingModel
from shared.models.signing import Signer, Verifier
from shared.registry.events import ModelEvents
from shared.registry.loading import load_version
from shared.registry.store import Registry

log = logging.getLogger(__name__)

WAITING_LOG_EVERY_S = 10.0
REPLAY_ON_START = 10_000
"""Examples from the window a new continuous learner learns first (seconds of River time)."""


class RequestLog:
    """What became of each retrain request, in a Redis hash keyed by request id."""

    def __init__(self, client: Redis, key: str) -> None:
        self._client = client
        self._key = key

    def get(self, request_id: str) -> dict[str, Any] | None:
        with redis_errors("reading the trainer's request log"):
            found = self._client.hget(self._key, request_id)
        return None if found is None else dict(json.loads(found))

    def record(self, request_id: str, outcome: dict[str, Any]) -> None:
        with redis_errors("writing the trainer's request log"):
            self._client.hset(self._key, request_id, json.dumps(outcome))


@dataclass
class Pending:
    offset: int
    request: RetrainRequest
    waiting_since: float
    last_said: float = 0.0
    why: str = ""
    checked: bool = False
    """Whether the request log was consulted (once is enough: only the leader records)."""


@dataclass(frozen=True)
class GuardSettings:
    labels: int = 300
    margin: float = 0.05


class Trainer:
    def __init__(
        self,
        *,
        model: str,
        consumer: KafkaConsumer,
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
        self._events = events
        self.lock = lock
        self._signer = signer
        self._verifier = verifier
        self.config = config
        self.window = window
        self._requests = requests
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._guard_settings = guard
        self.guard: RollbackGuard | None = None
        self._publish_status = publish_status
        self._status_every_s = status_every_s
        self._max_bytes = max_bytes
        self._stop = threading.Event()
        self._pending: list[Pending] = []
        self._champion: ServingModel | None = None
        self._learner: OnlineLearner | None = None
        self._learner_version: int | None = None
        self._next_snapshot = time.monotonic() + config.online_snapshot_s
        self._retrain_tp = TopicPartition(topics.retrain, 0)
        self._positioned = False
        self._next_lock_try = 0.0
        self._next_bootstrap = 0.0
        self._last_status = 0.0
        self.last_loop = time.monotonic()
        self.last_outcome: dict[str, Any] | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> tuple[bool, str]:
        if not self._positioned:
            return False, "assigning examples and retrain partitions"
        role = "leader" if self.lock.held else f"standby (leader: {self.lock.current_holder()})"
        return True, f"trainer for {self.model}: {role}, {len(self.window)} examples"

    def run(self, timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        started = time.monotonic()
        preload()  # scikit-learn, skops, river: seconds to import, better now than mid-request
        log.info("training libraries loaded in %.1f s", time.monotonic() - started)
        self._position()
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.last_loop = time.monotonic()
                self._lead()
                with kafka_errors("polling examples and retrain requests"):
                    polled = self._consumer.poll(timeout_ms=200, max_records=5_000)
                for tp, records in polled.items():
                    for record in records:
                        if tp.topic == self._topics.retrain:
                            self._on_request(record)
                        else:
                            self._on_examples(record)
                self._metrics.window.labels(self.model).set(len(self.window))
                if self.lock.held and not self._stop.is_set():
                    self._act()
                    if self.config.online and time.monotonic() >= self._next_snapshot:
                        self._next_snapshot = time.monotonic() + self.config.online_snapshot_s
                        self._snapshot()
                if time.monotonic() - self._last_status >= self._status_every_s:
                    self._report()
        finally:
            self.lock.release()
            self._metrics.leader.labels(self.model).set(0)

    def _records_back(self, tp: TopicPartition, start: int, end: int) -> int:
        """Records to read back for a full window: one per example for single examples, fewer for
        the monitor's batches, judged by the newest record's size, with room to spare (twice)."""
        if end <= start:
            return 0
        self._consumer.assign([tp])  # alone: a poll returns nothing else, and moves nothing else
        self._consumer.seek(tp, end - 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            newest = self._consumer.poll(timeout_ms=200, max_records=1).get(tp)
            if newest:
                try:
                    per_record = len(decode_examples(record_value(newest[-1])))
                except BadMessage:
                    per_record = 1
                return -(-2 * self.window.max_count // max(per_record, 1))
        return self.window.max_count  # not read in time: as if one example per record

    def _position(self) -> None:
        """Assign every examples partition (from far enough back for ``window_count`` examples)
        and the retrain partition (from the last request the leader committed, else the start)."""
        deadline = time.monotonic() + 60
        while True:
            with kafka_errors(f"reading the partitions of {self._topics.examples}"):
                partitions = self._consumer.partitions_for_topic(self._topics.examples)
            if partitions:
                break
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"topic {self._topics.examples} has no partitions; run `driftline infra up`"
                )
            time.sleep(0.5)
        examples = [TopicPartition(self._topics.examples, p) for p in sorted(partitions)]
        with kafka_errors("assigning the trainer's partitions"):
            ends = self._consumer.end_offsets(examples)
            starts = self._consumer.beginning_offsets(examples)
            back = {tp: self._records_back(tp, starts[tp], ends[tp]) for tp in examples}
            self._consumer.assign([*examples, self._retrain_tp])
            for tp in examples:
                self._consumer.seek(tp, max(starts[tp], ends[tp] - back[tp]))
            committed = self._consumer.committed(self._retrain_tp)
            if committed is None:
                self._consumer.seek_to_beginning(self._retrain_tp)
            else:
                self._consumer.seek(self._retrain_tp, committed)
        self._positioned = True
        log.info(
            "trainer for %s reading %s (%d partitions) and %s from offset %s",
            self.model,
            self._topics.examples,
            len(examples),
            self._topics.retrain,
            committed if committed is not None else "0",
        )

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
                self._learner = None
        except DriftlineError as exc:
            log.warning("cannot reach the leader lock: %s", exc)

    # ---- records ---------------------------------------------------------------------------

    def _on_examples(self, record: ConsumerRecord) -> None:
        """A record of ``examples``: one example, or the monitor's batch of them."""
        try:
            examples = decode_examples(record_value(record), max_bytes=self._max_bytes)
        except BadMessage as exc:
            self._dead_letter(record, exc, "examples")
            return
        for example in examples:
            if example.model == self.model:
                self._on_example(example, record)

    def _on_example(self, example: Example, record: ConsumerRecord) -> None:
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
        if self._learner is not None and self.lock.held:
            self._learner.learn(
                example.features,
                example.label,
                served=example.prediction,
                version=example.version,
                ts=example.ts,
            )
        if self.guard is not None:
            verdict = self.guard.observe(example.version, example.label, example.prediction)
            if verdict is not None:
                self._judge(verdict)

    def _on_request(self, record: ConsumerRecord) -> None:
        try:
            request = RetrainRequest.decode(record_value(record), max_bytes=self._max_bytes)
        except BadMessage as exc:
            self._dead_letter(record, exc, "retrain")
            return
        if request.model != self.model:
            return
        if any(p.request.request_id == request.request_id for p in self._pending):
            self._metrics.requests.labels(self.model, "duplicate").inc()
            return
        log.info(
            "retrain request %s for %s: %s (since ts %s)",
            request.request_id,
            self.model,
            request.reason,
            request.since_ts,
        )
        self._pending.append(Pending(record.offset, request, time.monotonic()))
        self._metrics.pending.labels(self.model).set(len(self._pending))

    def _dead_letter(self, record: ConsumerRecord, exc: BadMessage, noun: str) -> None:
        log.warning("%s record at offset %d refused: %s", noun, record.offset, exc)
        self._dead_letters.write(record, str(exc)).get(timeout=30)
        self._metrics.dead.labels(self.model, noun).inc()

    # ---- the leader's work -----------------------------------------------------------------

    def _act(self) -> None:
        if self._pending:
            self._serve(self._pending[0])
        elif time.monotonic() >= self._next_bootstrap:
            self._next_bootstrap = time.monotonic() + 5.0
            if self._registry.active(self.model) is None:
                self._bootstrap()

    def _serve(self, pending: Pending) -> None:
        request = pending.request
        done = None if pending.checked else self._handled(request.request_id)
        pending.checked = True
        if done is not None:
            log.info(
                "retrain request %s was handled already (%s): nothing to train",
                request.request_id,
                done.get("outcome"),
            )
            self._metrics.requests.labels(self.model, "replayed").inc()
            self._finish(pending)
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
        result = self._apply(outcome, request.request_id)
        if not self.lock.held:
            return  # lost leadership midway: the new leader re-reads the request and decides
        self._requests.record(request.request_id, result)
        self._metrics.requests.labels(self.model, "served").inc()
        self._finish(pending)

    def _handled(self, request_id: str) -> dict[str, Any] | None:
        """The recorded outcome; else a version whose lineage names the request (the trainer
        died between registering it and recording the outcome)."""
        found = self._requests.get(request_id)
        if found is not None:
            return found
        for version in reversed(self._registry.versions(self.model)):
            if version.trained_on.get("request_id") == request_id:
                return {"outcome": version.status, "version": version.version}
        return None

    def _finish(self, pending: Pending) -> None:
        self._pending.remove(pending)
        self._metrics.pending.labels(self.model).set(len(self._pending))
        offsets = {self._retrain_tp: OffsetAndMetadata(pending.offset + 1, "", -1)}
        try:
            with kafka_errors("committing the retrain offset"):
                self._consumer.commit(offsets=offsets)
        except KafkaError as exc:
            # The request log in Redis stops a replay from training again.
            log.warning("retrain offset commit failed (%s); the request log stands", exc)

    def _bootstrap(self) -> None:
        outcome = self._train(None, None)
        if outcome.kind == "waiting":
            if time.monotonic() - self._last_status >= self._status_every_s:
                log.info("no model %s yet: %s", self.model, outcome.reason)
            return
        self._apply(outcome, None)

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

    def _apply(self, outcome: Outcome, request_id: str | None) -> dict[str, Any]:
        """Register, promote or reject as ``outcome`` says; publish a model-events record."""
        self._metrics.outcomes.labels(self.model, outcome.kind).inc()
        result: dict[str, Any] = {"outcome": outcome.kind, "reason": outcome.reason}
        candidate = outcome.candidate
        if candidate is None:  # failed
            log.error("retrain for %s failed: %s", self.model, outcome.reason)
            self.last_outcome = result
            return result
        lineage: dict[str, Any] = {"topic": self._topics.examples}
        decision = outcome.decision
        if decision is not None:
            lineage["gate"] = {
                "reason": decision.reason,
                "metric": decision.metric,
                "champion": decision.champion,
                "candidate": decision.candidate,
                "p_value": decision.p_value,
                "test": decision.test,
                "holdout": decision.n,
            }
        candidate = dataclasses.replace(candidate, trained_on={**candidate.trained_on, **lineage})
        champion = self._champion
        parent = champion.version if champion is not None else None
        rejected = outcome.kind == "reject"
        record = self._registry.register(
            candidate, parent=parent, status="rejected" if rejected else "registered"
        )
        result["version"] = record.version
        if rejected:
            self._events.publish(
                self.model, record.version, "rejected", candidate.metrics, reason=outcome.reason
            )
            log.warning("%s v%d rejected: %s", self.model, record.version, outcome.reason)
        else:
            self._events.publish(self.model, record.version, "registered", candidate.metrics)
            if not self.lock.held:
                log.warning(
                    "lost the leader lock before promoting %s v%d; it stays registered",
                    self.model,
                    record.version,
                )
                result["outcome"] = "registered"
                self.last_outcome = result
                return result
            self._registry.promote(self.model, record.version)
            self._events.publish(
                self.model, record.version, "promoted", candidate.metrics, reason=outcome.reason
            )
            log.warning("%s v%d promoted: %s", self.model, record.version, outcome.reason)
            if self.guard is None:
                self._make_guard(candidate.task)
            if parent is not None and self.guard is not None:
                self.guard.promoted(record.version, parent)
            self._learner = None  # continuous learning goes on from the version now served
        self.last_outcome = result
        return result

    def _snapshot(self) -> None:
        """Continuous learning (River): start a learner from the serving version; on schedule,
        judge it against that version on the same recent events and promote it if it wins. A
        snapshot that does not win is logged, not registered (the registry would fill with them)."""
        champion = self._load_champion()
        if champion is None:
            return
        if self._learner is None or self._learner_version != champion.version:
            self._learner = OnlineLearner(
                self._start_model(champion),
                champion.task,
                list(champion.features),
                recent=max(self.config.min_examples, 2_000),
            )
            self._learner_version = champion.version
            replay = self.window.examples()[-REPLAY_ON_START:]
            for stored in replay:
                self._learner.learn(
                    stored.features,
                    stored.label,
                    served=stored.prediction,
                    version=stored.version,
                    ts=stored.ts,
                )
            log.info(
                "continuous learning for %s starts from v%d (learnt the window's last %d examples)",
                self.model,
                champion.version,
                len(replay),
            )
            return
        if self._learner.learnt < self.config.min_examples:
            return
        decision = self._learner.judge(
            champion.version,
            margin=self.config.margin,
            alpha=self.config.alpha,
            last=max(100, int(self.config.min_examples * self.config.holdout)),
        )
        if decision is None:
            return
        if not decision.promote:
            log.info("continuous-learning snapshot not promoted: %s", decision.reason)
            self._metrics.outcomes.labels(self.model, "snapshot_kept").inc()
            return
        record = self._registry.get(self.model, champion.version)
        candidate = self._learner.snapshot(
            model=self.model,
            algo=algorithm(self.config.algorithm),
            params=self.config.params,
            classes=record.classes,
            signer=self._signer,
            decision=decision,
        )
        reason = f"continuous learning: {decision.reason}"
        self._apply(Outcome("promote", reason, candidate, decision, self._learner.learnt), None)

    def _start_model(self, champion: ServingModel) -> Any:
        """The serving version itself when it is a model of the configured River algorithm (it
        goes on learning), else a fresh one."""
        record = self._registry.get(self.model, champion.version)
        if champion.scorer.family == "river" and record.algorithm == self.config.algorithm:
            return copy.deepcopy(champion.scorer.model)
        return algorithm(self.config.algorithm).make(champion.task, self.config.params)

    def _judge(self, verdict: Verdict) -> None:
        if not verdict.rollback:
            log.info("rollback guard: %s", verdict.reason)
            return
        if not self.lock.held:
            return
        try:
            active = self._registry.active(self.model)
            if active != verdict.version:
                log.info(
                    "rollback guard: v%d is no longer active; nothing to roll back", verdict.version
                )
                return
            change = self._registry.rollback(self.model)
        except (ModelNotFound, DriftlineError) as exc:
            log.error("rollback guard could not roll back %s: %s", self.model, exc)
            return
        metrics = {"live_loss": verdict.loss}
        if verdict.predecessor_loss is not None:
            metrics["predecessor_live_loss"] = verdict.predecessor_loss
        self._events.publish(
            self.model, change.current, "rolled_back", metrics, reason=verdict.reason
        )
        self._metrics.outcomes.labels(self.model, "rolled_back").inc()
        self.last_outcome = {"outcome": "rolled_back", "version": change.current}
        log.warning(
            "%s rolled back from v%d to v%d: %s",
            self.model,
            verdict.version,
            change.current,
            verdict.reason,
        )

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
                for p in self._pending
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
