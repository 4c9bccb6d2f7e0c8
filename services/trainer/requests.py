"""Retrain requests: the ones a trainer has read and not yet finished, and what became of each.

A request is handled once. What became of it is recorded in Redis by request id
(:class:`RequestLog`), and a version trained for it names it in its lineage, so a replayed or
re-read request trains nothing new; a finished request's offset is committed, so a restarted
trainer starts after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec

from services.trainer.metrics import TrainerMetrics
from shared.core.errors import KafkaError
from shared.core.messages import RetrainRequest
from shared.io.redis import Redis, redis_errors
from shared.io.transport import TP, Consumer
from shared.registry.store import Registry

log = logging.getLogger(__name__)


class Handled(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What became of a request, a bootstrap or a snapshot: ``promote``, ``reject``, ``failed``,
    ``registered`` (leadership lost before the promotion), ``rolled_back``, or a registry status
    (a version found by its lineage); the version it made, and why."""

    outcome: str
    reason: str = ""
    version: int | None = None


class RequestLog:
    """What became of each retrain request, in a Redis hash keyed by request id."""

    def __init__(self, client: Redis, key: str) -> None:
        self._client = client
        self._key = key

    def get(self, request_id: str) -> Handled | None:
        with redis_errors("reading the trainer's request log"):
            found = self._client.hget(self._key, request_id)
        return None if found is None else msgspec.json.decode(found, type=Handled)

    def record(self, request_id: str, handled: Handled) -> None:
        with redis_errors("writing the trainer's request log"):
            self._client.hset(self._key, request_id, msgspec.json.encode(handled))


@dataclass
class Pending:
    offset: int
    request: RetrainRequest
    waiting_since: float
    last_said: float = 0.0
    why: str = ""
    checked: bool = False
    """Whether the request log was consulted (once is enough: only the leader records)."""


class Requests:
    """The requests read from ``retrain`` and not yet finished, oldest first."""

    def __init__(
        self,
        *,
        model: str,
        request_log: RequestLog,
        registry: Registry,
        consumer: Consumer,
        partition: TP,
        metrics: TrainerMetrics,
    ) -> None:
        self.model = model
        self._log = request_log
        self._registry = registry
        self._consumer = consumer
        self.partition = partition
        """The retrain partition, whose offset the leader commits past finished requests."""
        self._metrics = metrics
        self.pending: list[Pending] = []

    def add(self, offset: int, request: RetrainRequest, now: float) -> bool:
        """Queue a request read at ``offset``; False (and counted) when it is queued already."""
        if any(p.request.request_id == request.request_id for p in self.pending):
            self._metrics.requests.labels(self.model, "duplicate").inc()
            return False
        self.pending.append(Pending(offset, request, now))
        self._metrics.pending.labels(self.model).set(len(self.pending))
        return True

    def handled(self, request_id: str) -> Handled | None:
        """The recorded outcome; else a version whose lineage names the request (the trainer
        died between registering it and recording the outcome)."""
        found = self._log.get(request_id)
        if found is not None:
            return found
        for version in reversed(self._registry.versions(self.model)):
            if version.trained_on.get("request_id") == request_id:
                return Handled(outcome=version.status, version=version.version)
        return None

    def record(self, request_id: str, handled: Handled) -> None:
        self._log.record(request_id, handled)

    def finish(self, pending: Pending) -> None:
        """Done with ``pending``: drop it and commit the retrain offset past it."""
        self.pending.remove(pending)
        self._metrics.pending.labels(self.model).set(len(self.pending))
        try:
            self._consumer.commit({self.partition: pending.offset + 1})
        except KafkaError as exc:
            # The request log in Redis stops a replay from training again.
            log.warning("retrain offset commit failed (%s); the request log stands", exc)
