"""What every command shares: exit codes, progress lines, and the clients a command needs."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import make_producer
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.registry.events import ModelEvents
from shared.registry.store import Registry

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout stays clean for --json."""
    print(f"driftline: {message}", file=sys.stderr, flush=True)


@dataclass
class Clients:
    registry: Registry
    events: ModelEvents | None


@contextmanager
def clients(settings: Settings, *, kafka: bool) -> Iterator[Clients]:
    """The registry, and (with ``kafka``) a model-events writer, closed when the command ends."""
    endpoints = Infra(settings).endpoints()
    redis_client = connect_redis(endpoints.redis_url)
    producer = make_producer(endpoints.bootstrap, client_id="driftline-cli") if kafka else None
    try:
        events = None
        if producer is not None:
            events = ModelEvents(producer, Topics(settings.topic_prefix).model_events)
        yield Clients(Registry(redis_client, RedisKeys(settings.redis_prefix)), events)
    finally:
        if producer is not None:
            producer.close()
        redis_client.close()


def add_service_flags(parser: argparse.ArgumentParser, default_port: int, instance: str) -> None:
    """The flags every service has: its HTTP port and a stable instance name (what it is for)."""
    parser.add_argument(
        "--http-port",
        type=int,
        help=f"health/metrics port, default {default_port}; 0: any (DRIFTLINE_HTTP_PORT)",
    )
    parser.add_argument(
        "--instance-id", help=f"stable instance name, {instance} (DRIFTLINE_INSTANCE_ID)"
    )


def settle_gc() -> None:
    """For a long-running service, once it has started: move everything loaded so far (modules,
    models, restored state) out of the collector's reach, and collect young objects less often.
    A stream service allocates many short-lived objects and holds large windows; with the default
    thresholds the collector rescans those windows again and again (a third of the monitor's
    analytics time in a micro-benchmark)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM and Ctrl+C call ``stop`` (finish the batch in hand, then exit 0); a second Ctrl+C
    exits at once."""
    stopping = {"asked": False}

    def handler(signum: int, frame: FrameType | None) -> None:
        if stopping["asked"] and signum == signal.SIGINT:
            os._exit(130)
        stopping["asked"] = True
        log.info(
            "%s received: finishing the batch in hand, then stopping", signal.Signals(signum).name
        )
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
