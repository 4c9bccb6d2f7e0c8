"""The pieces every service main wires the same way: flags, names, signals, gc, liveness.

>>> from shared.core.topics import Topics
>>> ids = ServiceIds.of(Topics("driftline.").group("monitor", "churn"), instance_id="m1", pid=42)
>>> ids.group, ids.client_id, ids.member
('driftline-monitor-churn', 'driftline-monitor-churn-m1-42', 'm1-42')
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from prometheus_client import CollectorRegistry

from shared.core.settings import Settings
from shared.io.http import HealthServer
from shared.runtime.metrics import add_service_metrics

log = logging.getLogger(__name__)

STUCK_AFTER_S = 60.0
"""By default, a service whose loop has not run for this long fails ``/healthz``."""


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


@dataclass(frozen=True)
class ServiceIds:
    """The names one service process goes by.

    ``group`` is the consumer group of every instance of the service for one model; ``instance``
    the stable name of this instance (``DRIFTLINE_INSTANCE_ID``, else the host name); ``member``
    this process (instance and pid: status keys, lock tokens); ``client_id`` what Kafka logs.
    """

    group: str
    instance: str
    member: str
    client_id: str

    @classmethod
    def of(cls, group: str, *, instance_id: str | None, pid: int | None = None) -> ServiceIds:
        """The names of this process in ``group`` (:meth:`Topics.group`)."""
        instance = instance_id or socket.gethostname()
        member = f"{instance}-{os.getpid() if pid is None else pid}"
        return cls(group=group, instance=instance, member=member, client_id=f"{group}-{member}")


def http_port(configured: int | None, default: int) -> int:
    """``DRIFTLINE_HTTP_PORT`` (or ``--http-port``) when given, else the service's default."""
    return default if configured is None else configured


def loop_liveness(
    last_loop: Callable[[], float], stuck_after_s: float = STUCK_AFTER_S
) -> Callable[[], tuple[bool, str]]:
    """``/healthz`` for a loop that stamps ``time.monotonic()`` each time round."""

    def liveness() -> tuple[bool, str]:
        idle = time.monotonic() - last_loop()
        return idle < stuck_after_s, f"loop last ran {idle:.1f} s ago"

    return liveness


def settle_gc() -> None:
    """For a long-running service, once it has started: move everything loaded so far (modules,
    models, restored state) out of the collector's reach, and collect young objects less often.
    A stream service allocates many short-lived objects and holds large windows; with the default
    thresholds the collector rescans those windows again and again (a third of the monitor's
    analytics time in a micro-benchmark)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def install_signal_handlers(stop: Callable[[], None], stop_timeout_s: float = 30.0) -> None:
    """SIGTERM and Ctrl+C call ``stop`` (finish the batch in hand, then exit 0); a second Ctrl+C
    exits at once. A service that has not stopped ``stop_timeout_s`` after the first signal (a
    server it waits on does not answer) exits 1 by itself: what it had not committed is read
    again by whoever takes over, so a stop is always bounded."""
    stopping = {"asked": False}

    def give_up() -> None:
        log.error(
            "not stopped %.0f s after the signal (a server does not answer): exiting now; what "
            "was not committed is read again by the next owner",
            stop_timeout_s,
        )
        logging.shutdown()
        os._exit(1)

    def handler(signum: int, frame: FrameType | None) -> None:
        if stopping["asked"] and signum == signal.SIGINT:
            os._exit(130)
        if not stopping["asked"]:
            timer = threading.Timer(stop_timeout_s, give_up)
            timer.daemon = True
            timer.start()
        stopping["asked"] = True
        log.info(
            "%s received: finishing the batch in hand, then stopping", signal.Signals(signum).name
        )
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def start_service(
    settings: Settings,
    *,
    service: str,
    default_port: int,
    metrics: CollectorRegistry,
    last_loop: Callable[[], float],
    readiness: Callable[[], tuple[bool, str]],
    stop: Callable[[], None],
    stuck_after_s: float = STUCK_AFTER_S,
) -> HealthServer:
    """What every service does once it is wired, just before its loop runs: serve ``/healthz``
    (the loop ran within ``stuck_after_s``), ``/readyz`` and ``/metrics``, let SIGTERM and Ctrl+C
    call ``stop``, and settle the collector. The caller stops the server when the loop ends.
    ``metrics`` gains the build info and the process's metrics (:mod:`shared.runtime.metrics`)."""
    add_service_metrics(metrics, service, settings.kafka_client, readiness)
    port = http_port(settings.http_port, default_port)
    liveness = loop_liveness(last_loop, stuck_after_s)
    http = HealthServer(settings.http_host, port, metrics, liveness, readiness)
    install_signal_handlers(stop, settings.stop_timeout_s)
    settle_gc()
    http.start()
    return http
