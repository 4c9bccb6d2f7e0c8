"""Registry changes that everyone should hear of: `model-events` records on Kafka."""

from __future__ import annotations

import logging

from shared.core.clock import now_ms
from shared.core.errors import KafkaError
from shared.core.messages import ModelEvent, ModelEventKind
from shared.io.transport import Producer

log = logging.getLogger(__name__)

WAIT_S = 30.0
"""How long a record may take to be stored before the change is said to have failed."""


class ModelEvents:
    """Writes :class:`ModelEvent` records, keyed by model name, and waits until they are stored."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    def publish(
        self,
        model: str,
        version: int,
        event: ModelEventKind,
        metrics: dict[str, float] | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        record = ModelEvent(
            ts=now_ms(),
            model=model,
            version=version,
            event=event,
            metrics=metrics or {},
            reason=reason,
        )
        action = f"writing a {event} record to {self._topic}"
        self._producer.send(self._topic, record.encode(), model.encode())
        flushed = self._producer.flush(WAIT_S)
        if flushed.failed:
            raise KafkaError(f"{action}: {flushed.failed[0][1]}")
        if flushed.pending:
            raise KafkaError(f"{action}: no answer in {WAIT_S:g} s", retriable=True)
        log.info("%s v%d %s", model, version, event, extra={"model": model, "version": version})
        return record
