"""`driftline demo`: the whole loop on a synthetic stream, as separate processes over real Kafka and
Redis: a first model, predictor, monitor and trainer, events with late labels, drift at a scheduled
point, and a summary of what happened (detection, retrain, swap, error before and after, nothing
lost)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cli.common import EXIT_OK, progress
from shared.core.clock import now_ms
from shared.core.errors import ConfigError, DriftlineError
from shared.core.settings import Settings
from shared.infra.ports import free_port
from shared.infra.stack import Endpoints, Infra
from shared.runtime.entry import EXIT_ERROR

if TYPE_CHECKING:
    from services.cli.demo.synthetic import DriftKind, SyntheticEvent
    from shared.core.kinds import Task

FAST_EVENTS = 12_000
DEFAULT_EVENTS = 40_000
DEFAULT_RATE = 1_000.0
ALGORITHMS = {"classification": "logistic", "regression": "linear"}
READY_TIMEOUT_S = 120.0


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    demo = commands.add_parser(
        "demo",
        parents=parents,
        help="the whole loop on a synthetic stream: drift, detection, retrain, swap, recovery",
        description="Start local Kafka and Redis (unless DRIFTLINE_KAFKA_BOOTSTRAP and "
        "DRIFTLINE_REDIS_URL point elsewhere), create signing keys if missing, train and promote "
        "a first model on synthetic data, start a predictor, a monitor and a trainer as separate "
        "processes, stream feature events at a steady rate with labels arriving after a random "
        "delay, inject drift at --drift-at, and stop everything at the end (or on Ctrl+C). "
        "Prints a summary; with --json its last line is one JSON object. Exit 0 when no event "
        "was lost.",
    )
    demo.add_argument("--events", type=int, help="events to stream (default 40000; --fast 12000)")
    demo.add_argument("--rate", type=float, help="events per second (default 1000)")
    demo.add_argument("--task", choices=["classification", "regression"], default="classification")
    demo.add_argument("--algo", help="algorithm (default logistic, or linear for regression)")
    demo.add_argument(
        "--drift",
        choices=["sudden", "gradual", "recurring", "covariate", "categorical"],
        default="sudden",
        help="concept drift (sudden, gradual, recurring), a shift of two numeric features "
        "(covariate), or one category's share moving (categorical: channel=phone 10%% -> 40%%); "
        "the stream is mixed: ten numbers (one with gaps), a category and a boolean",
    )
    demo.add_argument(
        "--drift-at", type=float, default=0.3, help="share of the stream before drift (0.3)"
    )
    demo.add_argument("--fast", action="store_true", help="a short run: about two minutes")
    demo.add_argument("--model", help="model name (default demo-XXXXXX, new for each run)")
    demo.add_argument(
        "--no-services",
        action="store_true",
        help="use the predictor, monitor and trainer already running for --model "
        "(docker compose) instead of starting them",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep this run's topics and leave the local servers running",
    )
    demo.add_argument("--json", action="store_true", help="end with one JSON line (the summary)")
    demo.set_defaults(run=run_demo)


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


@dataclass(frozen=True)
class Plan:
    """One demo run, as the flags ask for it."""

    events: int
    rate: float
    task: Task
    drift: DriftKind
    drift_at: int
    algo: str
    run_id: str
    model: str
    services: bool
    as_json: bool


def _plan(args: argparse.Namespace) -> Plan:
    events: int = args.events or (FAST_EVENTS if args.fast else DEFAULT_EVENTS)
    rate: float = args.rate or DEFAULT_RATE
    if events < 2_000:
        raise ConfigError("--events: at least 2000, so that drift has room to be found and fixed")
    if not 0.05 <= args.drift_at <= 0.7:
        raise ConfigError("--drift-at: between 0.05 and 0.7 of the stream")
    if rate <= 0:
        raise ConfigError("--rate: events per second, above 0")
    if args.no_services and not args.model:
        raise ConfigError("--no-services needs --model: the model the running services serve")
    run_id = uuid.uuid4().hex[:6]
    return Plan(
        events=events,
        rate=rate,
        task=args.task,
        drift=args.drift,
        drift_at=int(events * args.drift_at),
        algo=args.algo or ALGORITHMS[args.task],
        run_id=run_id,
        model=args.model or f"demo-{run_id}",
        services=not args.no_services,
        as_json=args.json,
    )


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.demo.synthetic import Scenario  # noqa: PLC0415

    plan = _plan(args)
    workdir = settings.home / "demo" / plan.run_id
    workdir.mkdir(parents=True, exist_ok=True)
    infra = Infra(settings, progress=progress)
    was_running = infra.status().ok
    progress("starting Kafka and Redis" if not was_running else "Kafka and Redis are up")
    if not infra.up().ok:
        raise ConfigError("Kafka or Redis did not come up; see `driftline infra status`")
    endpoints = infra.endpoints()
    started_infra = not was_running and settings.kafka_bootstrap is None
    if plan.services:
        # A run of its own on topics of its own: a new model's consumer groups start from the
        # beginning of a topic, and would otherwise score every earlier run's events again.
        settings = _run_settings(settings, plan.run_id)
        _create_topics(settings, endpoints)
    services: list[Service] = []
    scenario = Scenario(task=plan.task, drift=plan.drift, at=plan.drift_at, mixed=True)
    try:
        initial = _first_model(settings, endpoints, plan.model, plan.algo, scenario)
        if plan.services:
            env = _service_env(settings, endpoints, plan.algo, plan.task)
            for name in ("predictor", "monitor", "trainer"):
                services.append(_start(name, plan.model, env, workdir))
            _wait_ready(services)
            progress("predictor, monitor and trainer are ready; streaming")
        else:
            progress(f"streaming to the services already running for {plan.model}")
        summary = _stream(settings, endpoints, plan, scenario, services, initial)
        summary.update(
            model=plan.model,
            topic_prefix=settings.topic_prefix,
            redis_prefix=settings.redis_prefix,
            logs=str(workdir),
        )
        summary["report"] = _report(settings, plan, scenario, workdir, summary)
        if plan.services and not args.keep:
            _delete_topics(settings, endpoints)
    except KeyboardInterrupt:
        progress("interrupted: stopping the services")
        raise
    finally:
        for service in services:
            if service.proc.poll() is None:
                service.stop()
        if started_infra and not args.keep:
            progress("stopping the local Kafka and Redis this demo started (--keep leaves them)")
            infra.down()
    _print_summary(summary, plan.as_json)
    return EXIT_OK if summary["events_lost"] == 0 and summary["report"] else EXIT_ERROR


def _report(
    settings: Settings, plan: Plan, scenario: Any, workdir: Path, summary: dict[str, Any]
) -> str | None:
    """Write the run's report (the same page as `driftline report`); its path, or None."""
    from services.cli.report.command import write_report  # noqa: PLC0415

    injected_ts = scenario.start_ts + plan.drift_at * scenario.step_ms
    try:
        written = write_report(
            settings, plan.model, workdir / "report", injected_ts=injected_ts, summary=summary
        )
    except DriftlineError as exc:
        progress(f"the report could not be written: {exc}")
        return None
    return str(written["page"])


def _stream(
    settings: Settings,
    endpoints: Endpoints,
    plan: Plan,
    scenario: Any,
    services: list[Service],
    initial: int,
) -> dict[str, Any]:
    """Feed the events, wait for the loop to settle, stop the services, and summarize."""
    from services.cli.demo.feed import feed  # noqa: PLC0415
    from services.cli.demo.summary import RunFacts, summarize  # noqa: PLC0415
    from services.cli.demo.synthetic import SyntheticStream  # noqa: PLC0415
    from services.cli.demo.view import DemoView  # noqa: PLC0415 - rich: only for the demo
    from shared.io.transport import open_producer  # noqa: PLC0415

    live = not plan.as_json and sys.stderr.isatty()
    view = DemoView(
        settings, endpoints, plan.model, plan.events, plan.drift_at, live=live, initial=initial
    )
    producer = open_producer(
        settings.kafka_client, endpoints.kafka, client_id=f"driftline-demo-{plan.run_id}"
    )
    stream = SyntheticStream(scenario, seed=11, prefix=f"{plan.run_id}-")
    labels: dict[str, Any] = {}

    def remembered(count: int) -> Iterator[SyntheticEvent]:
        for event in stream.events(count):
            labels[event.event_id] = event.label
            yield event

    started_ms = now_ms()
    with view:
        sent = feed(
            producer,
            f"{settings.topic_prefix}features",
            f"{settings.topic_prefix}labels",
            remembered(plan.events),
            rate=plan.rate,
            max_label_delay=300,
            mark=[plan.drift_at],
            on_progress=view.update,
            stop=lambda: any(s.proc.poll() is not None for s in services),
        )
        producer.close()
        _check_alive(services)
        view.settle(
            _settle_timeout(plan.events, plan.rate),
            concept=plan.drift not in ("covariate", "categorical"),
            initial=initial,
        )
        for service in services:
            code = service.stop()
            if code not in (0, None):
                progress(f"{service.name} exited with {code}:\n{service.tail()}")
        facts = RunFacts(
            task=plan.task,
            drift=plan.drift,
            drift_at=plan.drift_at,
            drift_sent_s=sent.marks.get(plan.drift_at, time.time()),
            start_ts=scenario.start_ts,
            step_ms=scenario.step_ms,
            labels=labels,
            index={event_id: i for i, event_id in enumerate(labels)},
        )
        return summarize(
            facts,
            view.predictions(),
            view.alerts(),
            active_version=view.active(),
            dead_letters=view.dead_letters(started_ms),
            initial_version=initial,
        )


def _first_model(
    settings: Settings, endpoints: Endpoints, model: str, algo: str, scenario: Any
) -> int:
    """Train and promote a first version unless the model has an active one; that version."""
    from services.cli.demo.synthetic import SyntheticStream  # noqa: PLC0415
    from shared.core.topics import Topics  # noqa: PLC0415
    from shared.io.keys import RedisKeys  # noqa: PLC0415
    from shared.io.redis import connect_redis  # noqa: PLC0415
    from shared.io.transport import open_producer  # noqa: PLC0415
    from shared.models.algorithms import algorithm  # noqa: PLC0415
    from shared.models.signing import create_key_pair, load_signer  # noqa: PLC0415
    from shared.models.training import train  # noqa: PLC0415
    from shared.registry.events import ModelEvents  # noqa: PLC0415
    from shared.registry.store import Registry  # noqa: PLC0415

    if not settings.secret and not settings.signing_key_path.exists():
        create_key_pair(settings.signing_key_path, settings.verify_key_path)
        progress(f"created a signing key pair under {settings.signing_key_path.parent}")
    client = connect_redis(endpoints.redis_url)
    registry = Registry(client, RedisKeys(settings.redis_prefix))
    active = registry.active(model)
    if active is not None:
        client.close()
        progress(f"{model} v{active} is active: the demo streams to it")
        return active
    signer = load_signer(settings.signing_key_path, settings.secret)
    data = SyntheticStream(scenario, seed=99).dataset(4_000)
    candidate = train(data, model=model, algo=algorithm(algo), signer=signer, task=scenario.task)
    producer = open_producer(settings.kafka_client, endpoints.kafka, client_id="driftline-demo")
    try:
        events = ModelEvents(producer, Topics(settings.topic_prefix).model_events)
        version = registry.register(candidate).version
        events.publish(model, version, "registered", candidate.metrics)
        registry.promote(model, version)
        events.publish(model, version, "promoted", candidate.metrics)
    finally:
        producer.close()
        client.close()
    progress(f"{model} v{version} ({algo}) trained on 4,000 synthetic events and promoted")
    return version


def _service_env(settings: Settings, endpoints: Endpoints, algo: str, task: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env.update(
        DRIFTLINE_HOME=str(settings.home),
        **endpoints.env,
        DRIFTLINE_TOPIC_PREFIX=settings.topic_prefix,
        DRIFTLINE_REDIS_PREFIX=settings.redis_prefix,
        DRIFTLINE_LOG_LEVEL="INFO",
        DRIFTLINE_KAFKA_CLIENT=settings.kafka_client,
        DRIFTLINE_TRAINER_ALGORITHM=algo,
        DRIFTLINE_TRAINER_TASK=task,
        DRIFTLINE_TRAINER_MIN_EXAMPLES="1000",
        DRIFTLINE_MONITOR_CHECKPOINT_S="2",
    )
    if settings.signing_key is not None:
        env["DRIFTLINE_SIGNING_KEY"] = str(settings.signing_key)
    if settings.verify_key is not None:
        env["DRIFTLINE_VERIFY_KEY"] = str(settings.verify_key)
    if settings.secret:
        env["DRIFTLINE_HMAC_SECRET"] = settings.secret
    return env


def _run_settings(settings: Settings, run_id: str) -> Settings:
    """The settings of one run's own deployment: its topic prefix, and a Redis prefix of its own
    (the one the topic prefix implies, or one under an explicitly set Redis prefix).

    >>> s = _run_settings(Settings(), "ab12")
    >>> s.topic_prefix, s.redis_prefix
    ('driftline.demo-ab12.', 'driftline.demo-ab12:')
    >>> _run_settings(Settings(redis_prefix="team:"), "ab12").redis_prefix
    'team:demo-ab12:'
    """
    from shared.core.topics import deployment_redis_prefix  # noqa: PLC0415

    topic_prefix = f"{settings.topic_prefix}demo-{run_id}."
    if settings.redis_prefix == deployment_redis_prefix(settings.topic_prefix):
        redis_prefix = deployment_redis_prefix(topic_prefix)
    else:
        redis_prefix = f"{settings.redis_prefix}demo-{run_id}:"
    return settings.model_copy(update={"topic_prefix": topic_prefix, "redis_prefix": redis_prefix})


def _delete_topics(settings: Settings, endpoints: Endpoints) -> None:
    """The run's topics go when it ends (its report holds what they showed): demo runs would
    otherwise pile up topics on a long-lived Kafka."""
    from shared.io.transport.admin import delete_topics  # noqa: PLC0415

    try:
        deleted = delete_topics(
            endpoints.kafka, settings.topic_prefix, client=settings.kafka_client
        )
    except DriftlineError as exc:
        progress(f"this run's topics {settings.topic_prefix}* were not deleted: {exc}")
        return
    progress(
        f"deleted this run's {len(deleted)} topics {settings.topic_prefix}* (--keep keeps them)"
    )


def _create_topics(settings: Settings, endpoints: Endpoints) -> None:
    from shared.core.topics import Topics  # noqa: PLC0415
    from shared.io.transport.admin import ensure_topics  # noqa: PLC0415

    specs = Topics(settings.topic_prefix).specs(settings.partitions)
    ensure_topics(endpoints.kafka, specs, client=settings.kafka_client)
    progress(f"this run streams on its own topics: {settings.topic_prefix}*")


def _start(name: str, model: str, env: dict[str, str], workdir: Path) -> Service:
    port = free_port()
    log = workdir / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "services.cli",
        name,
        "--model",
        model,
        "--http-port",
        str(port),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    progress(f"started the {name} (pid {proc.pid}, log {log})")
    return Service(name, proc, port, log)


def _wait_ready(services: list[Service]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = list(services)
    while waiting:
        _check_alive(services)
        waiting = [s for s in waiting if not s.ready()]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(s.name for s in waiting)
            raise DriftlineError(
                f"{names} not ready after {READY_TIMEOUT_S:.0f} s; last log lines:\n"
                + "\n".join(f"--- {s.name}\n{s.tail()}" for s in waiting)
            )
        time.sleep(0.5)


def _check_alive(services: list[Service]) -> None:
    for service in services:
        code = service.proc.poll()
        if code is not None:
            raise DriftlineError(
                f"the {service.name} exited with {code}; its log ({service.log}) ends:\n"
                f"{service.tail()}"
            )


def _settle_timeout(events: int, rate: float) -> float:
    """How long to wait after the stream for the last predictions and the loop to finish."""
    return max(60.0, events / rate)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value}"

    lines = [
        "",
        f"driftline demo: {summary['task']}, {summary['drift']} drift ({summary['model']})",
        f"  drift injected at event {summary['drift_injected_at']:,}; detected at event "
        f"{fmt(summary['drift_detected_at'])} ({fmt(summary['detection_delay_events'])} events, "
        f"{fmt(summary['detection_delay_s'])} s later) by {fmt(summary['detected_by'])}",
        *(f"  found: {line}" for line in summary.get("found", [])),
        f"  serving at the end: v{fmt(summary['promoted_version'])}",
        f"  {summary['error_metric']}: before drift {fmt(summary['error_before'])}, after drift on "
        f"v1 {fmt(summary['error_after_drift'])}, after the swap {fmt(summary['error_after'])}",
        f"  events in {summary['events_in']:,}, predictions out {summary['predictions_out']:,}, "
        f"dead letters {summary['dead_letters']}, events lost {summary['events_lost']}",
        f"  service logs: {summary['logs']}",
        f"  report: {fmt(summary['report'])}",
    ]
    print("\n".join(lines), file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(summary))
