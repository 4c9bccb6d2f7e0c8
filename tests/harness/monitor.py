"""Helpers for monitor tests: a registered model, a scored synthetic stream with late labels, and
readers for what the monitor publishes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.cli.demo.synthetic import Scenario, SyntheticEvent, SyntheticStream
from shared.core.messages import decode_examples
from shared.io.kafka import make_producer
from shared.models.algorithms import algorithm
from shared.models.serving import ServingModel
from shared.models.signing import load_signer, load_verifier
from shared.registry.loading import load_version
from tests.harness.predictor import Deployment, ServiceProcess, read_all

MONITOR_ENV = {
    "DRIFTLINE_MONITOR_CHECKPOINT_S": "2",
    "DRIFTLINE_MONITOR_CONCEPT_MIN_LABELS": "500",
}


@dataclass
class Scored:
    """A stream of the scenario, scored by the registered model, ready to produce."""

    events: list[SyntheticEvent]
    predictions: list[Any]
    scores: list[float | None]
    version: int


def register_model(
    deployment: Deployment, scenario: Scenario, *, algo: str = "logistic", name: str | None = None
) -> tuple[int, ServingModel]:
    """Train a first model on the scenario's undrifted concept, register it, load it back."""
    from shared.models.training import train  # noqa: PLC0415

    model = name or deployment.model
    data = SyntheticStream(scenario, seed=99).dataset(3_000)
    signer = load_signer(deployment.home / "keys" / "signing.key", None)
    candidate = train(data, model=model, algo=algorithm(algo), signer=signer)
    version = deployment.registry.register(replace(candidate, model=model)).version
    deployment.registry.promote(model, version)
    verifier = load_verifier(deployment.home / "keys" / "signing.pub", None)
    return version, load_version(deployment.registry, model, version, verifier)


def score(scenario: Scenario, count: int, serving: ServingModel, seed: int = 1) -> Scored:
    events = list(SyntheticStream(scenario, seed=seed).events(count))
    X = np.array([[e.features[name] for name in serving.features] for e in events])
    predictions, scores = serving.score(X)
    return Scored(events, list(predictions), list(scores or [None] * count), serving.version)


def produce(
    deployment: Deployment,
    scored: Scored,
    *,
    models: tuple[str, ...] | None = None,
    max_label_delay: int = 500,
    seed: int = 7,
    rate: float | None = 2_000.0,
    extra: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    predictions: bool = True,
    labels_first: bool = False,
    labels: bool = True,
) -> None:
    """Produce features, predictions (one per model in ``models``; none without ``predictions``,
    when a real predictor makes them) and labels, at ``rate`` events per second (a live stream:
    the monitor sees partitions interleaved as they would be in life).

    The label of event ``i`` is sent after event ``i + d`` with ``d`` uniform in
    ``[0, max_label_delay)``: late and out of order, as labels are in life. With ``labels_first``,
    every label (stamped a second after its event) is on its topic before the first event: a
    backfill of history.
    """
    rng = np.random.default_rng(seed)
    names = (models or (deployment.model,)) if predictions else ()
    delays = rng.integers(0, max_label_delay, size=len(scored.events)) if max_label_delay else None
    labels_due: list[tuple[int, int]] = sorted(
        (i + (int(delays[i]) if delays is not None else 0), i) for i in range(len(scored.events))
    )
    producer = make_producer(deployment.bootstrap, client_id="test-feed", linger_ms=20)
    topic = deployment.topic

    def send_label(event: SyntheticEvent, ts: int) -> None:
        if not labels:  # the test sends them its own way
            return
        producer.send(
            topic("labels"),
            key=event.event_id.encode(),
            value=json.dumps({"event_id": event.event_id, "ts": ts, "label": event.label}).encode(),
            timestamp_ms=ts,  # event time: the synthetic stream's is in the past
        )

    if labels_first:
        for event in scored.events:
            send_label(event, event.ts + 1_000)
        labels_due = []
    due = 0
    started = time.monotonic()
    for i, event in enumerate(scored.events):
        if rate and i % 100 == 0:
            ahead = started + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        key = event.event_id.encode()
        producer.send(
            topic("features"),
            key=key,
            value=json.dumps(
                {"event_id": event.event_id, "ts": event.ts, "features": event.features}
            ).encode(),
            timestamp_ms=event.ts,
        )
        for name in names:
            producer.send(
                topic("predictions"),
                key=key,
                value=json.dumps(
                    {
                        "event_id": event.event_id,
                        "ts": event.ts,
                        "model": name,
                        "version": scored.version,
                        "prediction": scored.predictions[i],
                        "score": scored.scores[i],
                        "latency_ms": 1.0,
                        "features": event.features,
                    }
                ).encode(),
            )
        while due < len(labels_due) and labels_due[due][0] <= i:
            send_label(scored.events[labels_due[due][1]], event.ts + 1)
            due += 1
    last_ts = scored.events[-1].ts
    for _, j in labels_due[due:]:
        send_label(scored.events[j], last_ts + 1)
    for name, key_text, value in extra:
        producer.send(topic(name), key=key_text.encode(), value=value)
    producer.flush()
    producer.close()


def start_monitor(
    deployment: Deployment, *args: str, model: str | None = None, env: dict[str, str] | None = None
) -> ServiceProcess:
    return deployment.start(
        "monitor", "--model", model or deployment.model, *args, env={**MONITOR_ENV, **(env or {})}
    )


def status(
    deployment: Deployment, model: str | None = None, pid: int | None = None
) -> dict[str, Any] | None:
    """The latest status a monitor of ``model`` (with process id ``pid``) published in Redis."""
    client = deployment.registry.client
    keys = deployment.registry.keys
    pattern = keys.monitor_status(model or deployment.model, "*" if pid is None else f"*-{pid}")
    found = [client.get(name) for name in client.scan_iter(match=pattern)]
    texts = [text for text in found if text]
    return json.loads(texts[0]) if texts else None


def wait_joined(
    deployment: Deployment,
    process: ServiceProcess,
    count: int,
    *,
    model: str | None = None,
    timeout_s: float = 240.0,
    settled: bool = True,
) -> dict[str, Any]:
    """Wait until the monitor has joined ``count`` events (or more) and, when ``settled``, its
    analytics hold none back (:class:`~services.monitor.reorder.Reorder`); its status then."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while True:
        assert process.proc.poll() is None, f"monitor exited:\n{process.log()[-5000:]}"
        last = status(deployment, model, process.proc.pid)
        if last and last["join"]["joined"] >= count and (last["held"] == 0 or not settled):
            return last
        assert time.monotonic() < deadline, (
            f"monitor joined {last and last['join']} of {count} in {timeout_s} s (pending "
            f"{last and last['pending']}, paused {last and last['paused']}, held "
            f"{last and last['held']}):\n"
            f"{process.log()[-3000:]}"
        )
        time.sleep(0.5)


def messages(deployment: Deployment, noun: str, model: str | None = None) -> list[dict[str, Any]]:
    """Every message on the topic (of ``model`` when given), decoded."""
    found = [json.loads(r.value) for r in read_all(deployment.bootstrap, deployment.topic(noun))]
    return [m for m in found if model is None or m.get("model") == model]


def examples(deployment: Deployment, model: str | None = None) -> list[dict[str, Any]]:
    """Every example on the topic (of ``model`` when given), out of the monitor's batches."""
    records = read_all(deployment.bootstrap, deployment.topic("examples"))
    found = [json.loads(e.encode()) for r in records for e in decode_examples(r.value)]
    return [e for e in found if model is None or e["model"] == model]


def distinct_alerts(alerts: list[dict[str, Any]]) -> list[tuple[str, str | None, str, int]]:
    """``(kind, feature, state, version)`` of each alert, a replayed copy (same id) counted once."""
    seen: dict[tuple[str, str], tuple[str, str | None, str, int]] = {}
    for alert in alerts:
        key = (alert["alert_id"], alert["state"])
        seen.setdefault(key, (alert["kind"], alert["feature"], alert["state"], alert["version"]))
    return sorted(seen.values(), key=str)
