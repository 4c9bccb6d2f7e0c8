"""Helpers for trainer tests: labelled examples and retrain requests on the topics, and waits on
what the trainer does to the registry."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.cli.demo.synthetic import SyntheticEvent
from shared.core.messages import Example, ExampleBatch, RetrainRequest
from shared.io.kafka import make_producer
from shared.models.serving import ServingModel
from tests.harness.predictor import Deployment, ServiceProcess

TRAINER_ENV = {
    "DRIFTLINE_TRAINER_LOCK_TTL_S": "3",
    "DRIFTLINE_TRAINER_MIN_EXAMPLES": "400",
}


def start_trainer(
    deployment: Deployment, algo: str, *, env: dict[str, str] | None = None
) -> ServiceProcess:
    return deployment.start(
        "trainer", "--model", deployment.model, "--algo", algo, env={**TRAINER_ENV, **(env or {})}
    )


def produce_examples(
    deployment: Deployment,
    events: Sequence[SyntheticEvent],
    serving: ServingModel | None = None,
    *,
    batch: int | None = None,
) -> None:
    """Examples with what ``serving`` predicted, or labelled history that no model scored
    (``serving`` None); one per record, or ``batch`` per record as the monitor writes them."""
    predictions: list[Any] = [None] * len(events)
    if serving is not None:
        X = np.array([[e.features[name] for name in serving.features] for e in events])
        predictions = list(serving.score(X)[0])
    producer = make_producer(deployment.bootstrap, client_id="test-examples", linger_ms=20)
    made = []
    for event, prediction in zip(events, predictions, strict=True):
        example = Example(
            event_id=event.event_id,
            ts=event.ts,
            model=deployment.model,
            features=event.features,
            label=event.label,
            prediction=prediction,
            version=None if serving is None else serving.version,
        )
        made.append(example)
    if batch is None:
        for example in made:
            producer.send(
                deployment.topic("examples"), key=example.event_id.encode(), value=example.encode()
            )
    else:
        for start in range(0, len(made), batch):
            record = ExampleBatch(model=deployment.model, examples=made[start : start + batch])
            producer.send(
                deployment.topic("examples"), key=str(start).encode(), value=record.encode()
            )
    producer.flush()
    producer.close()


def request_retrain(deployment: Deployment, request_id: str, since_ts: int | None) -> None:
    request = RetrainRequest(
        request_id=request_id,
        ts=int(time.time() * 1000),
        model=deployment.model,
        reason="test",
        since_ts=since_ts,
    )
    producer = make_producer(deployment.bootstrap, client_id="test-retrain")
    producer.send(
        deployment.topic("retrain"), key=deployment.model.encode(), value=request.encode()
    ).get(timeout=30)
    producer.close()


def wait_for(
    what: str,
    check: Any,
    processes: Sequence[ServiceProcess],
    timeout_s: float = 120.0,
) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the services' logs."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        logs = "\n".join(f"--- {p.service}:\n{p.log()[-4000:]}" for p in processes)
        for process in processes:
            assert process.proc.poll() is None, f"{process.service} exited:\n{logs}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{logs}"
        time.sleep(0.3)


def trainer_status(deployment: Deployment, process: ServiceProcess) -> dict[str, Any] | None:
    keys = deployment.registry.keys
    client = deployment.registry.client
    for name in client.scan_iter(
        match=keys.trainer_status(deployment.model, f"*-{process.proc.pid}")
    ):
        text = client.get(name)
        if text:
            return dict(json.loads(text))
    return None
