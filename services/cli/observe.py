"""`driftline alerts` and `driftline status`: what the monitors found, for people and scripts."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from services.cli.common import EXIT_OK
from shared.core.clock import now_ms
from shared.core.errors import BadMessage
from shared.core.messages import DriftAlert
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import Kafka, TopicPartition, kafka_errors, plain_consumer
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, connect_redis, redis_errors
from shared.registry.store import Registry


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    alerts = commands.add_parser(
        "alerts",
        parents=parents,
        help="print drift and performance alerts",
        description="Print the alerts on the alerts topic, oldest first (a replayed copy of an "
        "alert, same id and state, is printed once). --follow keeps printing new ones.",
    )
    alerts.add_argument("--model", help="only this model's alerts")
    alerts.add_argument("--follow", "-f", action="store_true", help="keep printing new alerts")
    alerts.add_argument("--json", action="store_true", help="one JSON object per line")
    alerts.add_argument("--last", type=int, help="only the last N alerts (before --follow)")
    alerts.set_defaults(run=run_alerts)

    status = commands.add_parser(
        "status",
        parents=parents,
        help="per model: active version, rolling metrics, drifted features, recent alerts",
        description="Show, per model, the active version, what each running monitor reports "
        "(rolling metrics per version, label coverage, join lag, the most drifted features) and "
        "the most recent alerts.",
    )
    status.add_argument("--model", help="only this model")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.add_argument("--alerts", type=int, default=5, help="recent alerts per model (5)")
    status.set_defaults(run=run_status)


def read_alerts(
    kafka_at: Kafka, topic: str, *, follow: bool = False, idle_s: float = 1.0
) -> Iterator[DriftAlert]:
    """Alerts from the beginning of ``topic``; with ``follow``, forever. Copies counted once."""
    seen: set[tuple[str, str]] = set()
    with kafka_errors(f"reading {topic}", kafka_at):
        consumer = plain_consumer(kafka_at)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while True:
            batch = consumer.poll(timeout_ms=int(idle_s * 1000))
            for records in batch.values():
                for record in records:
                    try:
                        alert = DriftAlert.decode(record.value or b"")
                    except BadMessage:
                        continue
                    key = (alert.alert_id, alert.state)
                    if key not in seen:
                        seen.add(key)
                        yield alert
            caught_up = all(consumer.position(tp) >= ends[tp] for tp in partitions)
            if caught_up and not follow:
                return
    finally:
        consumer.close()


def format_alert(alert: DriftAlert) -> str:
    when = dt.datetime.fromtimestamp(alert.ts / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    feature = f" [{alert.feature}]" if alert.feature else ""
    return (
        f"{when}  {alert.state:8} {alert.severity:8} {alert.model} v{alert.version} "
        f"{alert.kind}{feature}: {alert.message}"
    )


def run_alerts(settings: Settings, args: argparse.Namespace) -> int:
    endpoints = Infra(settings).endpoints()
    topic = Topics(settings.topic_prefix).alerts
    stream = read_alerts(endpoints.kafka, topic, follow=False)
    backlog = [a for a in stream if args.model in (None, a.model)]
    if args.last is not None:
        backlog = backlog[-args.last :]
    for alert in backlog:
        _print(alert, args.json)
    if args.follow:
        already = {(a.alert_id, a.state) for a in backlog}
        for alert in read_alerts(endpoints.kafka, topic, follow=True):
            if args.model in (None, alert.model) and (alert.alert_id, alert.state) not in already:
                _print(alert, args.json)
    return EXIT_OK


def _print(alert: DriftAlert, as_json: bool) -> None:
    print(alert.encode().decode() if as_json else format_alert(alert), flush=True)


def collect_status(settings: Settings, model: str | None, recent: int) -> dict[str, Any]:
    """Per model: active version, the monitors' latest status, recent alerts."""
    endpoints = Infra(settings).endpoints()
    keys = RedisKeys(settings.redis_prefix)
    client = connect_redis(endpoints.redis_url)
    try:
        registry = Registry(client, keys)
        if model:
            registry.require(model)
        names = [model] if model else registry.models()
        alerts = list(read_alerts(endpoints.kafka, Topics(settings.topic_prefix).alerts))
        out: dict[str, Any] = {"models": []}
        for name in names:
            predictors = _statuses(client, keys.predictor_status(name, "*"), "predictor")
            predictors.sort(key=lambda p: p["member"])
            monitors = _statuses(client, keys.monitor_status(name, "*"), "monitor")
            trainers = _statuses(client, keys.trainer_status(name, "*"), "trainer")
            trainers.sort(key=lambda t: not t["leader"])
            mine = [a for a in alerts if a.model == name]
            out["models"].append(
                {
                    "model": name,
                    "active_version": registry.active(name),
                    "predictors": predictors,
                    "monitors": monitors,
                    "trainers": trainers,
                    "recent_alerts": [json.loads(a.encode()) for a in mine[-recent:]],
                }
            )
        notifiers = _statuses(client, keys.notify_status("*"), "notifier")
        out["notifiers"] = sorted(notifiers, key=lambda n: (not n["partitions"], n["member"]))
        out["generated_at"] = now_ms()
        return out
    finally:
        client.close()


def _statuses(client: Redis, pattern: str, service: str) -> list[dict[str, Any]]:
    """The latest status each running instance of ``service`` published."""
    found = []
    with redis_errors(f"reading {service} status"):
        for key in client.scan_iter(match=pattern):
            text = client.get(key)
            if text:
                found.append(json.loads(text))
    return found


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    found = collect_status(settings, args.model, args.alerts)
    if args.json:
        print(json.dumps(found, default=str))
        return EXIT_OK
    if not found["models"]:
        print("no models registered (driftline train --promote ...)")
    for entry in found["models"]:
        print(f"{entry['model']}: active v{entry['active_version']}")
        if not entry["predictors"]:
            print("  no predictor running (driftline predictor --model NAME)")
        for predictor in entry["predictors"]:
            client_name = predictor.get("kafka_client") or "?"
            print(f"  predictor {predictor['member']} ({client_name}): {predictor['status']}")
        if not entry["monitors"]:
            print("  no monitor running (driftline monitor --model NAME)")
        for monitor in entry["monitors"]:
            joined = monitor["join"]
            coverage = monitor["label_coverage"]
            lag = monitor["join_lag_s"]
            print(
                f"  monitor ({monitor.get('kafka_client') or '?'}) on partitions "
                f"{monitor['partitions']}: joined {joined['joined']}, "
                f"expired {joined['expired']}, orphans {joined['orphans']}, late {joined['late']}, "
                f"pending {monitor['pending']}, coverage "
                f"{'-' if coverage is None else f'{coverage:.1%}'}, join lag p50/p99 "
                f"{_seconds(lag['0.5'])}/{_seconds(lag['0.99'])}"
            )
            if monitor.get("labels_misrouted"):  # another client's partitioner (README)
                print(
                    f"    {monitor['labels_misrouted']} labels came on the wrong partition and were "
                    "forwarded: produce labels with partitioner=murmur2_random (see the alerts)"
                )
            if monitor.get("paused"):  # a backfill: one input waits for the other (README)
                print(f"    catching up, reading in step: paused {', '.join(monitor['paused'])}")
            for version in monitor["versions"][:3]:
                metrics = ", ".join(
                    f"{k} {v:.4g}" for k, v in version["metrics"].items() if v is not None
                )
                print(
                    f"    v{version['version']}{' (retired)' if version['retired'] else ''}: "
                    f"{version['labelled']} labelled; last {version['window']}: {metrics or '-'}"
                )
                drifted = [d for d in version["drift"] if d["drifting"]]
                if drifted:
                    print(
                        "      drifting: "
                        + ", ".join(f"{d['feature']} (PSI {d['psi']:.2f})" for d in drifted)
                    )
                for quality in version.get("quality", []):
                    if quality["problem"]:
                        print(f"      data quality: {quality['feature']}: {quality['message']}")
                if version["firing"]:
                    print(f"      firing: {', '.join(version['firing'])}")
        if not entry["trainers"]:
            print("  no trainer running (driftline trainer --model NAME)")
        for trainer in entry["trainers"]:
            role = "leader" if trainer["leader"] else "standby"
            print(
                f"  trainer {trainer['holder']} ({role}, {trainer['algorithm']}): "
                f"{trainer['examples']} examples in the window"
            )
            for pending in trainer["pending"]:
                print(f"    request {pending['request_id']}: {pending['waiting'] or 'queued'}")
            last = trainer["last_outcome"]
            if last:
                version = f" v{last['version']}" if last.get("version") else ""
                print(f"    last: {last['outcome']}{version}: {last.get('reason', '')}")
        for alert in entry["recent_alerts"]:
            print("  " + format_alert(DriftAlert.decode(json.dumps(alert).encode())))
    _print_notifiers(found["notifiers"])
    return EXIT_OK


def _print_notifiers(notifiers: list[dict[str, Any]]) -> None:
    if not notifiers:
        print("no notifier running (driftline notify --slack URL, or --routes FILE)")
    for notifier in notifiers:
        owns = notifier["partitions"]
        role = f"delivers alerts partitions {owns}" if owns else "stands by"
        print(f"notifier {notifier['member']}: {role}, {notifier['incidents']} incident(s) held")
        for route in notifier["routes"]:
            state = f"failing, retrying: {route['failing']}" if route["failing"] else "ok"
            print(f"  route {route['where']}: {state}, {route['waiting']} waiting")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
