"""`driftline notify`: deliver alerts, grouped into incidents, to Alertmanager, webhooks, Slack."""

from __future__ import annotations

import argparse
import logging
import queue
import uuid
from pathlib import Path

from services.notify.delivery import Result, Sender, post
from services.notify.incidents import IncidentBook
from services.notify.metrics import NotifyMetrics
from services.notify.outbox import NotifyStore
from services.notify.payloads import notification_id, render
from services.notify.routes import Route, load_routes
from services.notify.service import Notifier
from services.notify.status import NotifyStatus, RouteStatus
from shared.core.clock import now_ms
from shared.core.messages import DriftAlert
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import DeadLetterWriter
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport import open_consumer, open_producer
from shared.io.transport.admin import require_topics
from shared.registry.store import Registry
from shared.runtime.service import ServiceIds, add_service_flags, start_service
from shared.runtime.status import StatusPublisher

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 9314
EXIT_CHECK_FAILED = 4


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "notify",
        parents=parents,
        help="deliver alerts, grouped into incidents, to Alertmanager, webhooks and Slack",
        description="Read the `alerts` topic in a consumer group (run several: one delivers, "
        "the others stand by and take over), group the alerts of one model version that fire "
        "together into one incident, and tell each route of an incident once its group wait has "
        "passed, then of its changes at most once per group interval. Routes: Prometheus "
        "Alertmanager (POST /api/v2/alerts; endsAt on resolution; group_by: [incident] in "
        "Alertmanager gathers an incident), generic webhooks (JSON, an Idempotency-Key header, "
        "signed with HMAC-SHA256 when a secret is set) and Slack-compatible incoming webhooks. "
        "Each change (an alert firing, an alert resolving) reaches each route once, across "
        "restarts and kills: deliveries go through an outbox in Redis. A failing endpoint is "
        "retried with backoff on its own thread, never holding up the others, and its alerts "
        "are dead-lettered with the reason once retries run out. Health on /healthz, readiness "
        "on /readyz, metrics on /metrics.",
        epilog="Examples: driftline notify --slack https://hooks.slack.com/services/T/B/X ; "
        "driftline notify --routes routes.toml (see the README's `driftline notify`)",
    )
    parser.add_argument(
        "--routes",
        dest="notify_routes",
        type=Path,
        metavar="FILE",
        help="TOML file of [[routes]] (DRIFTLINE_NOTIFY_ROUTES)",
    )
    for kind, what in (
        ("alertmanager", "an Alertmanager's base URL, e.g. http://localhost:9093"),
        ("webhook", "a webhook URL (signed with DRIFTLINE_NOTIFY_WEBHOOK_SECRET when set)"),
        ("slack", "a Slack-compatible incoming webhook URL"),
    ):
        parser.add_argument(
            f"--{kind}",
            action="append",
            default=[],
            metavar="URL",
            help=f"route every alert to {what}; repeatable",
        )
    parser.add_argument(
        "--group-wait-s",
        dest="notify_group_wait_s",
        type=float,
        metavar="S",
        help="time an incident gathers its alerts before it is told (DRIFTLINE_NOTIFY_GROUP_WAIT_S, "
        "default 10)",
    )
    parser.add_argument(
        "--group-interval-s",
        dest="notify_group_interval_s",
        type=float,
        metavar="S",
        help="least time between an incident's notifications to a route "
        "(DRIFTLINE_NOTIFY_GROUP_INTERVAL_S, default 60)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="send one test notification to every route, say what each answered, and exit "
        f"(0: all delivered, {EXIT_CHECK_FAILED}: some did not); needs no Kafka and no Redis",
    )
    add_service_flags(parser, DEFAULT_HTTP_PORT, "for the status")
    parser.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run a notifier until stopped; return the exit code."""
    secret = settings.notify_webhook_secret
    routes = load_routes(
        settings.notify_routes,
        alertmanager=args.alertmanager,
        webhook=args.webhook,
        slack=args.slack,
        webhook_secret=None if secret is None else secret.get_secret_value().encode(),
    )
    if args.check:
        return check_routes(routes, Topics(settings.topic_prefix).deployment, settings)
    endpoints = Infra(settings).endpoints()
    topics = Topics(settings.topic_prefix)
    require_topics(endpoints.kafka, [topics.alerts, topics.dlq], client=settings.kafka_client)
    keys = RedisKeys(settings.redis_prefix)
    client = connect_redis(endpoints.redis_url, timeout_s=5.0)
    Registry(client, keys).claim(settings.topic_prefix)
    ids = ServiceIds.of(f"{topics.deployment}-notify", instance_id=settings.instance_id)
    log.info("Kafka client: %s", settings.kafka_client)
    consumer = open_consumer(
        settings.kafka_client,
        endpoints.kafka,
        group_id=ids.group,
        client_id=ids.client_id,
        assignor="cooperative-sticky",
    )
    producer = open_producer(settings.kafka_client, endpoints.kafka, client_id=ids.client_id)
    metrics = NotifyMetrics.create()
    status = StatusPublisher(client, keys.notify_status(ids.member), "notifier")

    def publish_status(current: Notifier) -> None:
        failing = current.failing()
        routes = [
            RouteStatus(
                name=r.name,
                where=r.describe(),
                waiting=current.backlog(r.name),
                failing=failing.get(r.name),
            )
            for r in current.routes
        ]
        shown = NotifyStatus(
            member=ids.member,
            kafka_client=settings.kafka_client,
            partitions=sorted(current.owned),
            incidents=len(current.book.incidents),
            routes=routes,
            ts=now_ms(),
        )
        status.publish(shown, ttl_s=30.0)

    results: queue.Queue[Result] = queue.Queue()
    senders: dict[str, Sender] = {}
    notifier = Notifier(
        consumer=consumer,
        producer=producer,
        topic=topics.alerts,
        store=NotifyStore(client, keys),
        routes=routes,
        senders=senders,
        results=results,
        dead_letters=DeadLetterWriter(producer, topics.dlq, service="notify"),
        metrics=metrics,
        deployment=topics.deployment,
        group_wait_s=settings.notify_group_wait_s,
        group_interval_s=settings.notify_group_interval_s,
        resend_s=settings.notify_resend_s,
        max_bytes=settings.max_message_bytes,
        publish_status=publish_status,
    )
    for route in routes:
        senders[route.name] = Sender(
            route,
            results,
            timeout_s=settings.notify_http_timeout_s,
            retry_for_s=settings.notify_retry_for_s,
            stopping=notifier.stopping,
        )
        senders[route.name].start()
    http = start_service(
        settings,
        service="notify",
        default_port=DEFAULT_HTTP_PORT,
        metrics=metrics.registry,
        last_loop=lambda: notifier.last_loop,
        readiness=notifier.readiness,
        stop=notifier.stop,
    )
    log.info(
        "notifier started: %s; group wait %.0f s, interval %.0f s",
        ", ".join(r.describe() for r in routes),
        settings.notify_group_wait_s,
        settings.notify_group_interval_s,
    )
    try:
        notifier.run(timeout_s=args.timeout_s)
    finally:
        notifier.stop()
        for sender in senders.values():
            sender.close()
        consumer.close()
        producer.close(5.0)
        http.stop()
        status.clear()
        client.close()
    log.info("notifier stopped")
    return 0


def check_routes(routes: list[Route], deployment: str, settings: Settings) -> int:
    """POST one test notification (a resolved info alert, so nobody stays paged) to each route,
    once, and print what each answered."""
    now = now_ms()
    alert = DriftAlert(
        alert_id=f"check-{uuid.uuid4().hex[:12]}",
        ts=now,
        model="driftline-notify-check",
        version=1,
        kind="data_quality",
        state="resolved",
        detector="notify-check",
        statistic=0.0,
        threshold=0.0,
        window=0,
        severity="info",
        message="a test notification from `driftline notify --check`: this route works",
    )
    book = IncidentBook(group_wait_ms=0)
    incident = book.apply(alert, partition=0, offset=0, now_ms=now)
    if incident is None:  # a fresh book folds every alert
        raise RuntimeError("the test alert made no incident")
    failed = 0
    for route in routes:
        changes = incident.unsent(route)
        if not changes:
            print(f"{route.describe()}: skipped (it takes no info data_quality alert)")
            continue
        notification = notification_id(route, incident, [m.key for m in changes])
        body = render(route, incident, changes, deployment=deployment, notification=notification)
        said = post(route.endpoint, body.data, body.headers, settings.notify_http_timeout_s)
        if said.ok:
            print(f"{route.describe()}: delivered ({said.reason})")
        else:
            failed += 1
            print(f"{route.describe()}: FAILED: {said.reason}")
    return EXIT_CHECK_FAILED if failed else 0
