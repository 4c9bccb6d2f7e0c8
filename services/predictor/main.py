"""`driftline predictor --model NAME`: builds the predictor from settings and runs it.

SIGTERM or Ctrl+C finishes the batch in hand, commits, closes everything in reverse order and exits
0; a second Ctrl+C exits at once.
"""

from __future__ import annotations

import argparse
import logging
import uuid

from services.predictor.metrics import PredictorMetrics
from services.predictor.quality import FeatureWatch
from services.predictor.service import Predictor
from services.predictor.status import PredictorStatus
from services.predictor.watcher import PromotionWatcher
from shared.core.clock import now_ms
from shared.core.cloudevents import alert_headers
from shared.core.errors import ArtifactRejected, ModelNotFound, RedisError
from shared.core.messages import DriftAlert, EventTimes
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import DeadLetterWriter, KafkaEndpoint
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport import Consumer, Producer, open_consumer, open_producer
from shared.io.transport.admin import require_topics
from shared.models.serving import ServingModel
from shared.models.signing import load_verifier
from shared.registry.loading import load_version
from shared.registry.store import Registry
from shared.runtime.service import ServiceIds, add_service_flags, start_service
from shared.runtime.status import StatusPublisher

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 9311
QUALITY_WINDOW = 1_000
"""Events per window of the predictor's feature watch (refused values, unknown features)."""


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "predictor",
        parents=parents,
        help="score feature events with the active model (hot-swaps new versions)",
        description="Consume feature events in consumer group DEPLOYMENT-predictor-MODEL (driftline-predictor-MODEL "
        "by default), score them "
        "in micro-batches with the model's active version, and produce predictions. A promoted "
        "version is loaded and verified in the background and takes over at a batch boundary. "
        "Health on /healthz, readiness on /readyz, Prometheus metrics on /metrics.",
    )
    parser.add_argument("--model", required=True, help="name of the model to serve")
    parser.add_argument(
        "--exactly-once",
        action="store_true",
        default=None,
        help="use Kafka transactions (DRIFTLINE_EXACTLY_ONCE)",
    )
    parser.add_argument("--batch-max", type=int, help="most events per batch (DRIFTLINE_BATCH_MAX)")
    parser.add_argument(
        "--batch-wait-ms", type=int, help="longest wait to fill a batch (DRIFTLINE_BATCH_WAIT_MS)"
    )
    add_service_flags(parser, DEFAULT_HTTP_PORT, "its transactional id")
    parser.add_argument(
        "--max-messages", type=int, help="stop after this many records (for tests and benchmarks)"
    )
    parser.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    parser.set_defaults(
        run=lambda settings, args: run(
            settings, args.model, max_messages=args.max_messages, timeout_s=args.timeout_s
        )
    )


def _publish(
    status: StatusPublisher, member: str, watcher: PromotionWatcher, settings: Settings
) -> None:
    """What this predictor serves, for `driftline models list` and `driftline status`."""
    current = watcher.current()
    status.publish(
        PredictorStatus(
            member=member,
            serving=None if current is None else current.version,
            status=watcher.status,
            refused=watcher.refused,
            kafka_client=settings.kafka_client,
        ),
        ttl_s=max(3 * settings.model_poll_s, 10.0),
    )


def _kafka_clients(
    settings: Settings, kafka: KafkaEndpoint, ids: ServiceIds
) -> tuple[Consumer, Producer, Producer]:
    """The predictor's consumer, its producer (transactional with exactly-once), and the
    producer of its alerts, on the configured client."""
    kafka_client = settings.kafka_client
    log.info("Kafka client: %s", kafka_client)
    alerts = open_producer(kafka_client, kafka, client_id=f"{ids.client_id}-alerts")
    producer = open_producer(
        kafka_client,
        kafka,
        client_id=ids.client_id,
        transactional_id=f"{ids.group}-{ids.instance}" if settings.exactly_once else None,
    )
    if settings.exactly_once:
        producer.init_transactions(30.0)
    # Cooperative rebalancing: a predictor joining or leaving moves only the partitions it takes
    # or gives up; the others go on scoring through the rebalance.
    consumer = open_consumer(
        kafka_client,
        kafka,
        group_id=ids.group,
        client_id=ids.client_id,
        assignor="cooperative-sticky",
        fetch_wait_ms=max(settings.batch_wait_ms, 1),
    )
    return consumer, producer, alerts


def run(
    settings: Settings,
    model: str,
    *,
    max_messages: int | None = None,
    timeout_s: float | None = None,
) -> int:
    """Run a predictor for ``model`` until stopped; return the exit code."""
    endpoints = Infra(settings).endpoints()
    topics = Topics(settings.topic_prefix)
    require_topics(
        endpoints.kafka,
        [topics.features, topics.predictions, topics.alerts, topics.dlq],
        client=settings.kafka_client,
    )
    verifier = load_verifier(settings.verify_key_path, settings.secret)
    client = connect_redis(endpoints.redis_url, timeout_s=2.0, check=False)
    registry = Registry(client, RedisKeys(settings.redis_prefix))
    try:
        registry.claim(settings.topic_prefix)
        registry.require(model)
    except ModelNotFound as exc:  # it waits for a first version, but a typo is said at once
        log.warning("%s; waiting for a first version of %r", exc, model)
    except RedisError as exc:  # the predictor starts without Redis and serves once it answers
        log.warning(
            "could not check which deployment Redis prefix %r belongs to: %s",
            settings.redis_prefix,
            exc,
        )
    metrics = PredictorMetrics.create(model)
    ids = ServiceIds.of(topics.group("predictor", model), instance_id=settings.instance_id)
    group = ids.group

    consumer, producer, alerts = _kafka_clients(settings, endpoints.kafka, ids)

    def publish_alert(alert: DriftAlert) -> None:
        headers = alert_headers(alert, deployment=topics.deployment, service="predictor")
        alerts.send(topics.alerts, alert.encode(), key=model.encode(), headers=headers)

    def on_failure(version: int, exc: Exception) -> None:
        metrics.load_failures.inc()
        kind = "was refused" if isinstance(exc, ArtifactRejected) else "failed to load"
        alert = DriftAlert(
            alert_id=uuid.uuid4().hex,
            ts=now_ms(),
            model=model,
            version=version,
            kind="model_load",
            detector="predictor",
            statistic=1.0,
            threshold=0.0,
            window=0,
            severity="critical",
            message=f"{model} v{version} {kind}: {exc}; predictors keep serving the previous version",
        )
        publish_alert(alert)

    def on_swap(new: ServingModel, old: ServingModel | None) -> None:
        log.info(
            "v%d is loaded; the predictor moves from v%s at its next batch",
            new.version,
            old.version if old else "-",
        )

    status = StatusPublisher(client, registry.keys.predictor_status(model, ids.member), "predictor")

    watcher = PromotionWatcher(
        model=model,
        registry=registry,
        client=client,
        loader=lambda version: load_version(registry, model, version, verifier),
        poll_s=settings.model_poll_s,
        on_failure=on_failure,
        on_swap=on_swap,
        on_tick=lambda: _publish(status, ids.member, watcher, settings),
    )
    predictor = Predictor(
        model=model,
        consumer=consumer,
        producer=producer,
        topics=topics,
        current_model=watcher.current,
        wait_for_model=watcher.wait_for_model,
        dead_letters=DeadLetterWriter(producer, topics.dlq, service="predictor"),
        metrics=metrics,
        group_id=group,
        batch_max=settings.batch_max,
        batch_wait_ms=settings.batch_wait_ms,
        max_bytes=settings.max_message_bytes,
        times=EventTimes(int(settings.max_event_skew_s * 1000)),
        exactly_once=settings.exactly_once,
        crash_after_batches=settings.fault_crash_after_batches,
        feature_watch=FeatureWatch(
            model, threshold=settings.monitor_quality_threshold, window=QUALITY_WINDOW
        ),
        publish_alert=publish_alert,
    )

    def readiness() -> tuple[bool, str]:
        predictor.waiting_reason = watcher.status
        return predictor.readiness()

    http = start_service(
        settings,
        service="predictor",
        default_port=DEFAULT_HTTP_PORT,
        metrics=metrics.registry,
        last_loop=lambda: predictor.last_loop,
        readiness=readiness,
        stop=predictor.stop,
    )
    watcher.start()
    log.info(
        "predictor for %s started (group %s, %s delivery)",
        model,
        group,
        "exactly-once" if settings.exactly_once else "at-least-once",
    )
    try:
        processed = predictor.run(max_messages=max_messages, timeout_s=timeout_s)
    finally:
        watcher.stop()
        status.clear()
        consumer.close()
        producer.close(5.0)
        alerts.close(5.0)
        http.stop()
        client.close()
    log.info("predictor for %s stopped after %d records", model, processed)
    return 0
