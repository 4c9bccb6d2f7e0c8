"""What every command shares: exit codes, progress lines, and the clients a command needs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, connect_redis
from shared.io.transport import open_producer
from shared.io.transport.admin import require_topics
from shared.registry.events import ModelEvents
from shared.registry.store import Registry

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
"""Besides 1 for a driftline error and 130 when interrupted (``shared.runtime.entry``)."""


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout stays clean for --json."""
    print(f"driftline: {message}", file=sys.stderr, flush=True)


@dataclass
class Clients:
    registry: Registry
    events: ModelEvents | None

    @property
    def client(self) -> Redis:
        return self.registry.client


@contextmanager
def clients(settings: Settings, *, kafka: bool) -> Iterator[Clients]:
    """The registry, and (with ``kafka``) a model-events writer, closed when the command ends."""
    endpoints = Infra(settings).endpoints()
    if kafka:  # before anything is written: a missing topic would leave a half-done change
        needed = [Topics(settings.topic_prefix).model_events]
        require_topics(endpoints.kafka, needed, client=settings.kafka_client)
    redis_client = connect_redis(endpoints.redis_url)
    producer = (
        open_producer(settings.kafka_client, endpoints.kafka, client_id="driftline-cli")
        if kafka
        else None
    )
    try:
        events = None
        if producer is not None:
            events = ModelEvents(producer, Topics(settings.topic_prefix).model_events)
        registry = Registry(redis_client, RedisKeys(settings.redis_prefix))
        if kafka:  # a command that changes the registry: only this deployment's
            registry.claim(settings.topic_prefix)
        yield Clients(registry, events)
    finally:
        if producer is not None:
            producer.close()
        redis_client.close()
