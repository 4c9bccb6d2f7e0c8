"""`driftline trainer --model NAME`: retrain on request, promote only a better model."""

from __future__ import annotations

import argparse
import logging

from services.trainer.leader import LeaderLock
from services.trainer.metrics import TrainerMetrics
from services.trainer.requests import RequestLog
from services.trainer.retraining import TrainerConfig
from services.trainer.service import GuardSettings, Trainer
from services.trainer.status import TrainerStatus
from services.trainer.window import ExampleWindow
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import DeadLetterWriter
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport import open_consumer, open_producer
from shared.io.transport.admin import require_topics
from shared.models.algorithms import ALGORITHMS, parse_params
from shared.models.signing import load_signer, load_verifier
from shared.registry.events import ModelEvents
from shared.registry.store import Registry
from shared.runtime.service import ServiceIds, add_service_flags, start_service
from shared.runtime.status import StatusPublisher

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 9313
STUCK_AFTER_S = 3_600.0
"""Training holds the loop; only an hour without a loop counts as stuck."""


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "trainer",
        parents=parents,
        help="retrain on drift, promote only a better model, roll back a worse one",
        description="Keep a window of recent labelled examples (from the monitor's `examples` "
        "topic) and read retrain requests. One trainer per model leads (a Redis lock with "
        "expiry); others stand by, with warm windows, and take over when it dies. On a request "
        "the leader trains ALGO on the examples at or after the request's change point, scores "
        "the candidate and the active model on the same most recent held-out slice, and promotes "
        "the candidate only if it wins by the margin and a paired test (McNemar, or a bootstrap "
        "on the squared error); otherwise it registers it as rejected. With no model yet it "
        "trains and promotes a first one as soon as it holds enough examples. A promoted version "
        "that does worse on live labels than its predecessor is rolled back. Every outcome is a "
        "model-events record. Health on /healthz, readiness on /readyz, metrics on /metrics.",
    )
    parser.add_argument("--model", required=True, help="name of the model to train")
    parser.add_argument(
        "--algo",
        dest="trainer_algorithm",
        choices=list(ALGORITHMS),
        metavar="ALGO",
        help="one of: "
        + ", ".join(ALGORITHMS)
        + " (DRIFTLINE_TRAINER_ALGORITHM, default logistic)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="estimator parameter, repeatable (DRIFTLINE_TRAINER_PARAMS, comma-separated)",
    )
    parser.add_argument(
        "--min-examples",
        dest="trainer_min_examples",
        type=int,
        metavar="N",
        help="examples needed before training (DRIFTLINE_TRAINER_MIN_EXAMPLES, default 1000)",
    )
    parser.add_argument(
        "--margin",
        dest="trainer_margin",
        type=float,
        metavar="X",
        help="how much better a candidate must be (DRIFTLINE_TRAINER_MARGIN, default 0.01)",
    )
    add_service_flags(parser, DEFAULT_HTTP_PORT, "for the lock and status")
    parser.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    parser.set_defaults(
        run=lambda settings, args: run(
            settings, args.model, params=args.param, timeout_s=args.timeout_s
        )
    )


def trainer_config(settings: Settings, params: list[str] | None = None) -> TrainerConfig:
    """The trainer's settings, checked; `--param` pairs override DRIFTLINE_TRAINER_PARAMS."""
    pairs = [p.strip() for p in settings.trainer_params.split(",") if p.strip()]
    return TrainerConfig(
        algorithm=settings.trainer_algorithm,
        params=parse_params([*pairs, *(params or [])]),
        task=settings.trainer_task,
        min_examples=settings.trainer_min_examples,
        holdout=settings.trainer_holdout,
        margin=settings.trainer_margin,
        alpha=settings.trainer_alpha,
        online_snapshot_s=settings.trainer_online_snapshot_s,
    )


def run(
    settings: Settings,
    model: str,
    *,
    params: list[str] | None = None,
    timeout_s: float | None = None,
) -> int:
    """Run a trainer for ``model`` until stopped; return the exit code."""
    config = trainer_config(settings, params)
    signer = load_signer(settings.signing_key_path, settings.secret)
    verifier = load_verifier(settings.verify_key_path, settings.secret)
    endpoints = Infra(settings).endpoints()
    topics = Topics(settings.topic_prefix)
    require_topics(
        endpoints.kafka,
        [topics.examples, topics.retrain, topics.model_events, topics.dlq],
        client=settings.kafka_client,
    )
    keys = RedisKeys(settings.redis_prefix)
    client = connect_redis(endpoints.redis_url, timeout_s=5.0)
    registry = Registry(client, keys)
    registry.claim(settings.topic_prefix)
    ids = ServiceIds.of(topics.group("trainer", model), instance_id=settings.instance_id)
    group, instance = ids.group, ids.member
    log.info("Kafka client: %s", settings.kafka_client)
    producer = open_producer(settings.kafka_client, endpoints.kafka, client_id=ids.client_id)
    # Assigned, not subscribed: every trainer reads every partition. The group id only holds the
    # leader's committed retrain offset.
    consumer = open_consumer(
        settings.kafka_client, endpoints.kafka, group_id=group, client_id=ids.client_id
    )
    metrics = TrainerMetrics.create(model)
    status = StatusPublisher(client, keys.trainer_status(model, instance), "trainer")

    def publish_status(current: TrainerStatus) -> None:
        status.publish(current, ttl_s=30.0)

    trainer = Trainer(
        model=model,
        consumer=consumer,
        topics=topics,
        registry=registry,
        events=ModelEvents(producer, topics.model_events),
        lock=LeaderLock(
            client, keys.lock(f"trainer:{model}"), instance, ttl_s=settings.trainer_lock_ttl_s
        ),
        signer=signer,
        verifier=verifier,
        config=config,
        window=ExampleWindow(settings.trainer_window_count, int(settings.trainer_window_s * 1000)),
        requests=RequestLog(client, keys.trainer_requests(model)),
        dead_letters=DeadLetterWriter(producer, topics.dlq, service="trainer"),
        metrics=metrics,
        guard=GuardSettings(settings.trainer_guard_labels, settings.trainer_guard_margin),
        publish_status=publish_status,
        max_bytes=settings.max_message_bytes,
    )

    http = start_service(
        settings,
        service="trainer",
        default_port=DEFAULT_HTTP_PORT,
        metrics=metrics.registry,
        last_loop=lambda: trainer.last_loop,
        readiness=trainer.readiness,
        stop=trainer.stop,
        stuck_after_s=STUCK_AFTER_S,
    )
    log.info(
        "trainer for %s started (%s, window %d examples / %.0f s, min %d examples)",
        model,
        config.algorithm,
        settings.trainer_window_count,
        settings.trainer_window_s,
        config.min_examples,
    )
    try:
        trainer.run(timeout_s=timeout_s)
    finally:
        consumer.close()
        producer.close(5.0)
        http.stop()
        status.clear()
        client.close()
    log.info("trainer for %s stopped", model)
    return 0
