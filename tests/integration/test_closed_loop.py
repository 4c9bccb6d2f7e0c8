"""The whole loop through real processes: predictor, monitor and trainer on the real broker and
Redis. A flipped concept is detected, a better model is trained on post-change examples and
promoted automatically, predictions switch to it with no lost event, and live accuracy recovers."""

from __future__ import annotations

import json

import numpy as np

from shared.synthetic import Scenario
from tests.integration.monitor_harness import (
    Scored,
    messages,
    produce,
    register_model,
    score,
    start_monitor,
)
from tests.integration.predictor_harness import (
    Deployment,
    read_all,
    versions_never_go_backwards,
    wait_for_predictions,
)
from tests.integration.trainer_harness import start_trainer, wait_for

EVENTS = 11_000
FLIP = 4_000
AFTER = 8_000
"""Events from here on are produced once the new version serves."""


def test_a_flipped_concept_is_retrained_promoted_and_served(deployment: Deployment) -> None:
    registry, model = deployment.registry, deployment.model
    scenario = Scenario(drift="sudden", at=FLIP)
    _, served = register_model(deployment, scenario)
    stream = score(scenario, EVENTS, served, seed=11)  # the events; the predictor scores them
    predictor = deployment.start_predictor()
    monitor = start_monitor(deployment)
    trainer = start_trainer(deployment, "logistic", env={"DRIFTLINE_TRAINER_MIN_EXAMPLES": "1000"})
    services = [predictor, monitor, trainer]
    for service in services:
        service.wait_ready()

    produce(
        deployment, _part(stream, 0, AFTER), predictions=False, rate=1_000.0, max_label_delay=300
    )
    wait_for("v2 promoted by the trainer", lambda: registry.active(model) == 2, services, 240)
    wait_for(
        "the predictor to load v2 (it serves it from its next batch)",
        lambda: "v2 is loaded" in predictor.log(),
        services,
    )
    produce(deployment, _part(stream, AFTER, EVENTS), predictions=False, max_label_delay=300)
    found = wait_for_predictions(deployment, (e.event_id for e in stream.events), timeout_s=240)

    # No event lost, none scored by two versions out of order.
    assert len(found) == EVENTS and versions_never_go_backwards(found)

    # The candidate learnt only from after the change the monitor located.
    flip_ts = stream.events[FLIP].ts
    lineage = registry.get(model, 2).trained_on
    assert abs(lineage["since_ts"] - flip_ts) <= 500 * scenario.step_ms, lineage
    assert lineage["start_ts"] >= lineage["since_ts"] and lineage["examples"] >= 1_000
    assert lineage["request_id"]

    # Live accuracy: the old model on the flipped concept, then the new one.
    label = {e.event_id: e.label for e in stream.events}
    index = {e.event_id: e.index for e in stream.events}
    right: dict[int, list[bool]] = {1: [], 2: []}
    for record in read_all(deployment.bootstrap, deployment.topic("predictions")):
        p = json.loads(record.value)
        if index[p["event_id"]] >= FLIP:
            right[p["version"]].append(p["prediction"] == label[p["event_id"]])
    before, after = float(np.mean(right[1])), float(np.mean(right[2]))
    assert before < 0.25 and after > 0.85, (before, after, len(right[1]), len(right[2]))
    assert len(right[2]) >= EVENTS - AFTER, "events after the swap were not served by v2"

    events = [(m["version"], m["event"]) for m in messages(deployment, "model-events", model)]
    assert events == [(2, "registered"), (2, "promoted")], events
    concept = [
        a
        for a in messages(deployment, "alerts", model)
        if a["kind"] == "concept_drift" and a["state"] == "firing"
    ]
    assert {a["alert_id"] for a in concept} and all(a["version"] == 1 for a in concept)
    for service in services:
        assert service.stop() == 0, service.log()[-3000:]


def _part(stream: Scored, start: int, end: int) -> Scored:
    return Scored(
        stream.events[start:end],
        stream.predictions[start:end],
        stream.scores[start:end],
        stream.version,
    )
