"""Thousands of random and mutated records thrown at a running predictor and monitor, among valid
ones: every valid event is predicted and joined, every other record is accounted for (a prediction
or a dead letter), and neither process ever stops."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from services.cli.demo.synthetic import Scenario
from tests.harness.fuzz import hostile
from tests.harness.monitor import produce, register_model, score, start_monitor, wait_joined
from tests.harness.predictor import (
    Deployment,
    read_all,
    send_raw,
    wait_for_predictions,
)

pytestmark = pytest.mark.integration

FUZZ = 2_000


def test_a_predictor_takes_thousands_of_hostile_records_among_valid_ones(
    deployment: Deployment,
) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    predictor = deployment.start_predictor()
    predictor.wait_ready()
    rng, values = random.Random(41), np.random.default_rng(41)
    items: list[tuple[bytes | None, bytes | None]] = []
    good = []
    for i in range(FUZZ):
        items.append((f"h{i}".encode() if i % 3 else None, hostile(rng)))
        if i % 4 == 0:
            event_id = f"g{i}"
            good.append(event_id)
            features = dict(zip("abc", values.normal(size=3).tolist(), strict=True))
            items.append(
                (
                    event_id.encode(),
                    json.dumps({"event_id": event_id, "features": features}).encode(),
                )
            )
    send_raw(deployment.bootstrap, deployment.features_topic, items)
    found = wait_for_predictions(deployment, good)
    assert set(good) <= set(found)
    predictions = read_all(deployment.bootstrap, deployment.topic("predictions"), settle_s=2)
    letters = read_all(deployment.bootstrap, deployment.topic("dlq"))
    assert len(predictions) + len(letters) == len(items)  # each record: one outcome
    assert predictor.proc.poll() is None and "Traceback" not in predictor.log()
    assert predictor.stop() == 0


def test_a_monitor_takes_thousands_of_hostile_labels_among_valid_ones(
    deployment: Deployment,
) -> None:
    scenario = Scenario()
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 1_000, serving, seed=42)
    monitor = start_monitor(deployment)
    monitor.wait_ready()
    rng = random.Random(42)
    send_raw(
        deployment.bootstrap,
        deployment.topic("labels"),
        [(f"h{i}".encode(), hostile(rng)) for i in range(FUZZ)],
    )
    produce(deployment, scored, max_label_delay=100)
    final = wait_joined(deployment, monitor, len(scored.events))
    assert final["join"]["joined"] >= len(scored.events)
    assert monitor.proc.poll() is None and "Traceback" not in monitor.log()
    assert monitor.stop() == 0
