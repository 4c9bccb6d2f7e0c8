"""`driftline monitor --model NAME`: builds the monitor from settings and runs it.

SIGTERM or Ctrl+C finishes the batch in hand, checkpoints, and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from shared.core.errors import (
    ArtifactRejected,
    ConfigError,
    DriftlineError,
    ModelNotFound,
    RedisError,
)
from shared.core.kinds import DETECTOR_NAMES, Task
from shared.core.messages import EventTimes
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import DeadLetterWriter, KafkaEndpoint
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport import ClientName, Consumer, Producer, open_consumer, open_producer
from shared.io.transport.admin import require_topics
from shared.models.signing import Verifier, load_verifier
from shared.models.version import verify_record
from shared.registry.store import Registry
from shared.runtime.outage import backoff_s
from shared.runtime.service import ServiceIds, add_service_flags, start_service
from shared.runtime.status import StatusPublisher

FETCH: dict[str, Any] = {
    "max_poll_records": 1_000,
    # Fetches of 256 KiB per partition (the client's default is 1 MiB) interleave the partitions
    # finely when the monitor reads a backlog: the event-time order across them (Reorder) then
    # holds about a thousand events instead of 60,000, which every checkpoint had to write.
    "max_partition_fetch_bytes": 256 * 1024,
}
"""The monitor consumer's fetch settings (also what ``benchmarks/pipeline_bench.py`` reads its
floor with)."""

if TYPE_CHECKING:
    from services.monitor.analytics.config import MonitorConfig, VersionInfo
    from services.monitor.status import MonitorStatus

# The analytics import river (and, through it, scikit-learn): seconds of start-up that every
# other `driftline` command should not pay. They are imported when the monitor runs.

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 9312


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "monitor",
        parents=parents,
        help="join predictions with labels; rolling error, drift, alerts and retrain requests",
        description="Consume predictions (which carry the features the model scored) and labels "
        "in consumer group DEPLOYMENT-monitor-MODEL (driftline-monitor-MODEL by default); join "
        "them by event_id within the label window; keep rolling "
        "error metrics, data, prediction and concept drift per model version; publish joined "
        "examples, alerts (with hysteresis and a cooldown) and one retrain request per drift. "
        "State is checkpointed to Redis, so a restart resumes where it stopped. "
        "Health on /healthz, readiness on /readyz, Prometheus metrics on /metrics.",
    )
    parser.add_argument("--model", required=True, help="name of the model to monitor")
    parser.add_argument(
        "--detector",
        dest="monitor_detector",
        choices=DETECTOR_NAMES,
        help="concept-drift detector (DRIFTLINE_MONITOR_DETECTOR, default adwin)",
    )
    parser.add_argument(
        "--label-window-s",
        dest="monitor_label_window_s",
        type=float,
        help="event time a prediction waits for its label (DRIFTLINE_MONITOR_LABEL_WINDOW_S)",
    )
    parser.add_argument(
        "--performance",
        dest="monitor_performance",
        help="performance alerts, e.g. 'accuracy<0.8,mse>2.5' (DRIFTLINE_MONITOR_PERFORMANCE)",
    )
    parser.add_argument(
        "--checkpoint-s",
        dest="monitor_checkpoint_s",
        type=float,
        help=(
            "seconds between checkpoints to Redis; a slow checkpoint is followed by a pause of "
            "20 times its cost (DRIFTLINE_MONITOR_CHECKPOINT_S)"
        ),
    )
    add_service_flags(parser, DEFAULT_HTTP_PORT, "for its status key")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="forget this model's monitor checkpoints first (counts and detectors start at zero)",
    )
    parser.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    parser.set_defaults(
        run=lambda settings, args: run(
            settings, args.model, reset=args.reset, timeout_s=args.timeout_s
        )
    )


def monitor_config(settings: Settings) -> MonitorConfig:
    """The analytics settings, checked: a performance threshold must name a known metric in its
    natural direction (``accuracy<0.8``, ``mse>2``)."""
    from services.monitor.analytics.config import MonitorConfig  # noqa: PLC0415
    from services.monitor.analytics.version import LOWER_IS_BETTER  # noqa: PLC0415
    from shared.stats.rolling import BINARY, MULTICLASS, PROBABILISTIC, REGRESSION  # noqa: PLC0415

    known = set(REGRESSION) | set(BINARY) | set(MULTICLASS) | set(PROBABILISTIC)
    for metric, op, threshold in settings.performance_rules:
        if metric not in known:
            raise ConfigError(
                f"DRIFTLINE_MONITOR_PERFORMANCE: unknown metric {metric!r}; "
                f"choose from {', '.join(sorted(known))}"
            )
        expected = ">" if metric in LOWER_IS_BETTER else "<"
        if op != expected:
            raise ConfigError(
                f"DRIFTLINE_MONITOR_PERFORMANCE: '{metric}{op}{threshold}' alerts when {metric} is "
                f"{'above' if expected == '>' else 'below'} the threshold; write "
                f"'{metric}{expected}{threshold}'"
            )
    return MonitorConfig(
        metrics_window=settings.monitor_metrics_window,
        metrics_period_s=settings.monitor_metrics_period_s,
        drift_window=settings.monitor_drift_window,
        drift_every=settings.monitor_drift_every,
        psi_threshold=settings.monitor_psi_threshold,
        quality_threshold=settings.monitor_quality_threshold,
        false_alarms_per_million=settings.monitor_false_alarms_per_million,
        detector=settings.monitor_detector,
        concept_min_labels=settings.monitor_concept_min_labels,
        performance=settings.performance_thresholds,
        cooldown_ms=int(settings.monitor_cooldown_s * 1000),
        retrain_timeout_ms=int(settings.retrain_timeout_s * 1000),
    )


def _kafka_clients(
    client: ClientName, kafka_at: KafkaEndpoint, group: str, client_id: str, topics: Topics
) -> tuple[Producer, Consumer]:
    log.info("Kafka client: %s", client)
    # Examples go out as one batch record per partition and poll; a longer linger and bigger
    # batches keep kafka-python's accumulator lock (contended with its sender thread) off the hot
    # path.
    producer = open_producer(
        client, kafka_at, client_id=client_id, linger_ms=50, batch_bytes=512 * 1024
    )
    # A first send to a topic waits for its metadata: learn it now, not when an alert fires.
    for topic in (topics.examples, topics.alerts, topics.retrain, topics.dlq):
        producer.partitions_for(topic)
    consumer = open_consumer(
        client,
        kafka_at,
        group_id=group,
        client_id=client_id,
        partition_fetch_bytes=FETCH["max_partition_fetch_bytes"],
        # Range keeps partition p of predictions and labels on one member: the join needs it.
        # Eager: a rebalance revokes every partition, whose state is checkpointed first.
        assignor="range",
    )
    return producer, consumer


def _describer(
    registry: Registry, model: str, verifier: Verifier, ticks: list[Callable[[], None]]
) -> Callable[[int], VersionInfo]:
    """What the registry's signed record says of each version, looked up once. A record that
    does not verify (edited, forged, or copied from another version) is not believed: the
    version is watched without its reference (no drift tests) and without label classes."""
    from services.monitor.analytics.config import VersionInfo  # noqa: PLC0415

    @functools.cache
    def describe(version: int) -> VersionInfo:
        # A version the monitor has not seen: it cannot go on without what the registry says of
        # it, so it waits for Redis (alive, and saying why) rather than exit.
        attempt = 0
        while True:
            try:
                found = registry.get(model, version)
                verify_record(found, verifier, model=model, version=version)
                break
            except (ArtifactRejected, ModelNotFound) as exc:
                log.error(
                    "%s v%d: its registry record is not believed (%s); watching it without its "
                    "reference profile or classes",
                    model,
                    version,
                    exc,
                )
                return VersionInfo(
                    version=version,
                    task=_task(registry, model, version),
                    features=[],
                    reference=None,
                )
            except RedisError as exc:
                log.warning("waiting for Redis to describe %s v%d: %s", model, version, exc)
                for tick in ticks:
                    tick()
                time.sleep(backoff_s(attempt))
                attempt += 1
        return VersionInfo(
            version=version,
            task=found.task,
            features=list(found.features),
            reference=found.reference,
            classes=found.classes,
        )

    return describe


def _task(registry: Registry, model: str, version: int) -> Task:
    """The task of an unbelieved version: the active version's, else classification."""
    try:
        active = registry.active(model)
        if active is not None and active != version:
            return registry.get(model, active).task
    except DriftlineError:
        pass
    return "classification"


def run(
    settings: Settings, model: str, *, reset: bool = False, timeout_s: float | None = None
) -> int:
    """Run a monitor for ``model`` until stopped; return the exit code."""
    from services.monitor.metrics import MonitorMetrics  # noqa: PLC0415
    from services.monitor.retrain import SharedClaim  # noqa: PLC0415
    from services.monitor.service import Monitor  # noqa: PLC0415
    from services.monitor.state import MonitorStateStore  # noqa: PLC0415

    config = monitor_config(settings)
    endpoints = Infra(settings).endpoints()
    topics = Topics(settings.topic_prefix)
    require_topics(
        endpoints.kafka,
        [
            topics.predictions,
            topics.labels,
            topics.examples,
            topics.alerts,
            topics.retrain,
            topics.dlq,
        ],
        client=settings.kafka_client,
    )
    verifier = load_verifier(settings.verify_key_path, settings.secret)
    keys = RedisKeys(settings.redis_prefix)
    client = connect_redis(endpoints.redis_url, timeout_s=5.0)
    registry = Registry(client, keys)
    store = MonitorStateStore(client, keys, model)
    registry.claim(settings.topic_prefix)
    if reset:
        log.info("forgot %d checkpoint keys of the %s monitor", store.clear(), model)
    metrics = MonitorMetrics.create(model)
    ids = ServiceIds.of(topics.group("monitor", model), instance_id=settings.instance_id)
    group, client_id = ids.group, ids.client_id
    producer, consumer = _kafka_clients(
        settings.kafka_client, endpoints.kafka, group, client_id, topics
    )

    ticks: list[Callable[[], None]] = []  # the monitor's liveness stamp, once it exists
    describe = _describer(registry, model, verifier, ticks)

    claim = SharedClaim(client, keys.retrain_outstanding(model), settings.retrain_timeout_s)

    def active_version() -> int | None:
        try:
            return registry.active(model)
        except RedisError as exc:
            log.warning(
                "cannot read the active version of %s (labels wait unchecked): %s", model, exc
            )
            return None

    status = StatusPublisher(client, keys.monitor_status(model, ids.member), "monitor")

    def publish_status(current: MonitorStatus) -> None:
        # Published at each checkpoint, which slow ones space out (services.monitor.checkpoint).
        status.publish(
            msgspec.structs.replace(current, kafka_client=settings.kafka_client),
            ttl_s=max(current.checkpoint_every_s * 3, 30),
        )

    monitor = Monitor(
        model=model,
        consumer=consumer,
        producer=producer,
        topics=topics,
        store=store,
        describe=describe,
        config=config,
        dead_letters=DeadLetterWriter(producer, topics.dlq, service="monitor"),
        metrics=metrics,
        retrain_claim=claim,
        active_version=active_version,
        publish_status=publish_status,
        label_window_ms=int(settings.monitor_label_window_s * 1000),
        max_pending=settings.monitor_max_pending,
        partition_idle_ms=int(settings.monitor_partition_idle_s * 1000),
        checkpoint_s=settings.monitor_checkpoint_s,
        max_bytes=settings.max_message_bytes,
        times=EventTimes(int(settings.max_event_skew_s * 1000)),
    )
    ticks.append(monitor.tick)

    http = start_service(
        settings,
        service="monitor",
        default_port=DEFAULT_HTTP_PORT,
        metrics=metrics.registry,
        last_loop=lambda: monitor.last_loop,
        readiness=monitor.readiness,
        stop=monitor.stop,
    )
    log.info(
        "monitor for %s started (group %s, detector %s, label window %.0f s)",
        model,
        group,
        config.detector,
        settings.monitor_label_window_s,
    )
    try:
        processed = monitor.run(timeout_s=timeout_s)
    finally:
        consumer.close()
        producer.close(5.0)
        http.stop()
        status.clear()
        client.close()
    log.info("monitor for %s stopped after %d records", model, processed)
    return 0
