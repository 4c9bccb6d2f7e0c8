"""Registry changes that everyone should hear of: `model-events` records on Kafka."""

from __future__ import annotations

import logging

from shared.core.clock import now_ms
from shared.core.messages import ModelEvent, ModelEventKind
from shared.io.kafka import KafkaProducer, kafka_errors

log = logging.getLogger(__name__)


class ModelEvents:
    """Writes :class:`ModelEvent` records, keyed by model name, and waits until they are stored."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
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
        with kafka_errors(f"writing a {event} record to {self._topic}"):
            self._producer.send(self._topic, key=model.encode(), value=record.encode()).get(
                timeout=30
            )
        log.info("%s v%d %s", model, version, event, extra={"model": model, "version": version})
        return record
