"""`driftline dlq` and `driftline dlq replay` against a real predictor, broker and Redis: a
refused event is read back with its reason and, once its cause is fixed, replayed into its
prediction; what is not this deployment's, or not a dead letter at all, is never sent anywhere."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest

from shared.core.clock import now_ms
from shared.core.messages import DeadLetter
from tests.harness.predictor import (
    Deployment,
    event,
    read_all,
    run_cli,
    send_raw,
    wait_for_predictions,
)

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def _listed(deployment: Deployment, *args: str) -> list[dict]:
    shown = run_cli(deployment, "dlq", "list", "--json", *args)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def test_a_dead_letter_is_read_and_once_fixed_replayed_into_its_prediction(
    deployment: Deployment,
) -> None:
    deployment.registry.promote(deployment.model, deployment.register())
    predictor = deployment.start_predictor()
    predictor.wait_ready()
    rng = np.random.default_rng(5)
    old = json.loads(event("old-1", rng))
    old["ts"] = now_ms() - 3 * DAY_MS  # three days from its record's timestamp: refused
    send_raw(
        deployment.bootstrap,
        deployment.topic("features"),
        [(b"old-1", json.dumps(old).encode()), (b"ok-1", event("ok-1", rng))],
    )
    wait_for_predictions(deployment, ["ok-1"])
    deadline = time.monotonic() + 60
    while not (letters := _listed(deployment, "--source", "features")):
        assert time.monotonic() < deadline, predictor.log()[-3000:]
        time.sleep(0.5)
    [letter] = letters
    assert letter["service"] == "predictor"
    assert letter["source_topic"] == deployment.topic("features")
    assert "DRIFTLINE_MAX_EVENT_SKEW_S" in letter["error"]
    assert json.loads(letter["payload"])["event_id"] == "old-1"
    assert letter["time"].endswith(" UTC")  # a time a person reads, beside ts
    human = run_cli(deployment, "dlq")  # no action: list, for people
    assert (
        human.returncode == 0 and "predictor" in human.stdout and "1 dead letter(s)" in human.stdout
    )

    # Planted on the dlq: a dead letter of another deployment's topic, and bytes that are none.
    foreign = DeadLetter(
        ts=now_ms(),
        service="predictor",
        source_topic="elsewhere.features",
        partition=0,
        offset=0,
        error="planted",
        payload=base64.b64encode(event("foreign-1", rng)).decode(),
    )
    send_raw(
        deployment.bootstrap,
        deployment.topic("dlq"),
        [(None, foreign.encode()), (None, b"\xff not a dead letter")],
    )
    everything = _listed(deployment)
    assert len(everything) == 3
    assert any(found.get("problem", "").startswith("not a dead letter") for found in everything)

    # Not yet fixed: a dry run says what it would send, and sends nothing.
    dry = run_cli(deployment, "dlq", "replay", "--source", "features", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would send to" in dry.stdout and "(original record)" in dry.stdout

    # The fix: this deployment takes old events (no skew limit); then the replay.
    assert predictor.stop() == 0
    fixed = deployment.start_predictor(env={"DRIFTLINE_MAX_EVENT_SKEW_S": "0"})
    fixed.wait_ready()
    replay = run_cli(deployment, "dlq", "replay", "--json")
    assert replay.returncode == 0, replay.stderr
    outcomes = [json.loads(line) for line in replay.stdout.splitlines()]
    sent = [o for o in outcomes if o["replayed"]]
    assert [(o["topic"], o["key"], o["from"]) for o in sent] == [
        (deployment.topic("features"), "old-1", "original record")
    ]
    refused = sorted(o["reason"] for o in outcomes if not o["replayed"])
    assert refused[0].startswith("elsewhere.features is not a topic of this deployment")
    assert refused[1].startswith("not a dead letter")
    found = wait_for_predictions(deployment, ["old-1"])
    assert len(found["old-1"]) == 1
    # Nothing reached the other deployment's topic.
    topics = {r.topic for r in read_all(deployment.bootstrap, deployment.topic("features"))}
    assert topics == {deployment.topic("features")}

    # Choosing only what cannot be replayed exits 4, saying why.
    ref = next(f["dlq"] for f in everything if f.get("source_topic") == "elsewhere.features")
    nothing = run_cli(deployment, "dlq", "replay", "--id", ref)
    assert nothing.returncode == 4, nothing.stdout + nothing.stderr
    assert "not a topic of this deployment" in nothing.stdout
    assert fixed.stop() == 0
