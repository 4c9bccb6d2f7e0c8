"""What every service's ``/metrics`` holds besides its own: build info, the process, consumer lag.

Every series passes ``promtool check metrics``. Counters expose no ``_created`` series (one per
label set, which nobody graphs and which doubles what Prometheus stores); importing this module
turns them off for the process, as ``PROMETHEUS_DISABLE_CREATED_SERIES=True`` would.

- ``driftline_ready{service}``: 1 while ``/readyz`` answers ready, else 0;
- ``driftline_build_info{service, version, python, kafka_client}``: always 1, for joins
  (``* on (instance) group_left(version) driftline_build_info``);
- ``process_*`` (CPU seconds, resident memory, open file descriptors, start time) and
  ``python_info``: prometheus-client's own collectors;
- ``driftline_consumer_lag{service, topic, partition}``: records of each assigned partition not
  yet handed to the service, as of the last high watermark a fetch reported (no request goes
  out); a partition that leaves the assignment leaves the metric.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> add_service_metrics(registry, "predictor", "confluent")
>>> b'driftline_build_info{kafka_client="confluent"' in generate_latest(registry)
True
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from shared import __version__
from shared.io.transport import TP, Consumer

disable_created_metrics()  # type: ignore[no-untyped-call]

LAG_EVERY_S = 5.0
"""Seconds between two updates of the consumer-lag gauges (a scrape every 15 s or more)."""


def add_service_metrics(
    registry: CollectorRegistry,
    service: str,
    kafka_client: str,
    readiness: Callable[[], tuple[bool, str]] | None = None,
) -> None:
    """Add the build info, the process's own metrics and (with ``readiness``, what ``/readyz``
    answers) ``driftline_ready`` to a service's ``registry``."""
    if readiness is not None:
        Gauge(
            "driftline_ready",
            "1 while the service is ready (GET /readyz says why when it is not).",
            ["service"],
            registry=registry,
        ).labels(service).set_function(lambda: 1.0 if readiness()[0] else 0.0)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    Gauge(
        "driftline_build_info",
        "Always 1: the driftline version, Python and Kafka client a service runs.",
        ["service", "version", "python", "kafka_client"],
        registry=registry,
    ).labels(service, __version__, platform.python_version(), kafka_client).set(1)


class ConsumerLag:
    """``driftline_consumer_lag`` of one service's consumer, updated from its loop at most every
    ``every_s`` seconds (the consumer is not thread-safe: a scrape never calls it).

    >>> registry = CollectorRegistry()
    >>> lag = ConsumerLag(registry, "monitor")
    >>> class Stub:  # what a consumer reports; the real ones are tested with a broker
    ...     def assignment(self): return {TP("t", 0), TP("t", 1)}
    ...     def unread(self, tp): return {0: 7, 1: None}[tp.partition]
    >>> lag.update(Stub(), now=100.0)
    >>> registry.get_sample_value("driftline_consumer_lag", {"service": "monitor", "topic": "t", "partition": "0"})
    7.0
    """

    def __init__(self, registry: CollectorRegistry, service: str, every_s: float = LAG_EVERY_S):
        self._gauge = Gauge(
            "driftline_consumer_lag",
            "Records of an assigned partition not yet handed to this service, as of the last "
            "high watermark a fetch reported.",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self._service = service
        self._every_s = every_s
        self._next = 0.0
        self._shown: set[TP] = set()

    def update(self, consumer: Consumer, now: float | None = None) -> None:
        """Set each assigned partition's lag (when ``every_s`` has passed since the last time)."""
        now = time.monotonic() if now is None else now
        if now < self._next:
            return
        self._next = now + self._every_s
        assigned = consumer.assignment()
        for tp in self._shown - assigned:
            self._gauge.remove(self._service, tp.topic, str(tp.partition))
        shown = set()
        for tp in assigned:
            lag = consumer.unread(tp)
            if lag is not None:
                self._gauge.labels(self._service, tp.topic, str(tp.partition)).set(lag)
                shown.add(tp)
            elif tp in self._shown:
                self._gauge.remove(self._service, tp.topic, str(tp.partition))
        self._shown = shown
