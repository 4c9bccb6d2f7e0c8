"""The trainer through real `driftline trainer` processes on the real broker and Redis: a first
model from labelled history, a retrain on post-change examples that is promoted, a replayed request
that trains nothing, a worse candidate that is rejected, and a standby that takes over."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

from services.cli.demo.synthetic import Scenario, SyntheticStream
from shared.models.signing import load_verifier
from shared.registry.loading import load_version
from tests.harness.monitor import messages, register_model
from tests.harness.predictor import Deployment
from tests.harness.trainer import (
    produce_examples,
    request_retrain,
    start_trainer,
    trainer_status,
    wait_for,
)


def _events(deployment: Deployment, noun: str) -> list[tuple[int, str]]:
    return [(m["version"], m["event"]) for m in messages(deployment, noun, deployment.model)]


def test_regression_first_model_retrain_replay_and_reject(deployment: Deployment) -> None:
    registry, model = deployment.registry, deployment.model
    scenario = Scenario(task="regression", drift="sudden", at=1_000)
    events = list(SyntheticStream(scenario, seed=5).events(2_200))
    trainer = start_trainer(deployment, "linear", env={"DRIFTLINE_TRAINER_TASK": "regression"})

    # No model yet: labelled history that no model scored is enough for a first version.
    produce_examples(deployment, events[:1_000])
    wait_for("a first version", lambda: registry.active(model) == 1, [trainer])
    first = registry.get(model, 1)
    assert first.parent is None and first.algorithm == "linear" and first.task == "regression"
    assert first.trained_on["examples"] >= 400 and first.trained_on["offsets"]
    assert first.trained_on["topic"] == deployment.topic("examples")

    # The concept flips; v1 serves the post-change events, and a request names the change.
    verifier = load_verifier(deployment.home / "keys" / "signing.pub", None)
    served = load_version(registry, model, 1, verifier)
    produce_examples(deployment, events[1_000:], served)
    change_ts = events[1_000].ts
    request_retrain(deployment, "r1", change_ts)
    wait_for("v2 promoted", lambda: registry.active(model) == 2, [trainer])
    second = registry.get(model, 2)
    assert second.parent == 1 and second.trained_on["request_id"] == "r1"
    assert second.trained_on["since_ts"] == change_ts
    assert second.trained_on["start_ts"] >= change_ts, "trained on pre-change examples"
    gate = second.trained_on["gate"]
    assert gate["metric"] == "mse" and gate["candidate"] < 0.1 * gate["champion"], gate

    # A replayed request trains nothing new.
    request_retrain(deployment, "r1", change_ts)
    wait_for(
        "the replay to be read",
        lambda: trainer.metric("driftline_trainer_retrain_requests_total", 'result="replayed"'),
        [trainer],
    )
    assert [v.version for v in registry.versions(model)] == [1, 2]

    # A candidate from the same data as the champion is no better: registered as rejected, and
    # the claim the monitor took for the request is released at once (the next change may ask).
    claim_key = registry.keys.retrain_outstanding(model)
    registry.client.set(claim_key, "r2", px=3_600_000)
    request_retrain(deployment, "r2", change_ts)
    wait_for("v3 rejected", lambda: len(registry.versions(model)) == 3, [trainer])
    wait_for("the claim released", lambda: registry.client.get(claim_key) is None, [trainer])
    third = registry.get(model, 3)
    assert third.status == "rejected" and registry.active(model) == 2
    assert "does not beat" in third.trained_on["gate"]["reason"]
    rejected = [m for m in messages(deployment, "model-events", model) if m["event"] == "rejected"]
    assert [m["version"] for m in rejected] == [3] and rejected[0]["reason"]
    assert _events(deployment, "model-events") == [
        (1, "registered"),
        (1, "promoted"),
        (2, "registered"),
        (2, "promoted"),
        (3, "rejected"),
    ]

    # What `driftline status` shows of it.
    wait_for(
        "the status to show the rejection",
        lambda: (
            ((trainer_status(deployment, trainer) or {}).get("last_outcome") or {}).get("outcome")
            == "reject"
        ),
        [trainer],
    )
    shown = subprocess.run(
        [shutil.which("driftline") or "driftline", "status", "--model", model],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "(leader, linear): " in shown and "last: reject v3" in shown, shown
    assert trainer.stop() == 0


def test_a_trainer_started_late_fills_its_window_from_the_monitors_batches(
    deployment: Deployment,
) -> None:
    """The monitor writes a poll's examples in one record: a trainer that starts after them reads
    back far enough for a full window (600 here), not one record per example."""
    events = list(SyntheticStream(Scenario(), seed=4).events(3_000))
    produce_examples(deployment, events, batch=100)
    trainer = start_trainer(deployment, "linear", env={"DRIFTLINE_TRAINER_WINDOW_COUNT": "600"})
    status = wait_for(
        "a full window",
        lambda: (s := trainer_status(deployment, trainer)) and s["examples"] >= 600 and s,
        [trainer],
    )
    assert status["examples"] == 600  # bounded, and full
    assert trainer.stop() == 0


def test_standby_takes_over_when_the_leader_is_killed(deployment: Deployment) -> None:
    registry, model = deployment.registry, deployment.model
    _, served = register_model(deployment, Scenario(), algo="svm")
    leader = start_trainer(deployment, "svm", env={"DRIFTLINE_INSTANCE_ID": "first"})
    wait_for("a leader", lambda: (trainer_status(deployment, leader) or {}).get("leader"), [leader])
    standby = start_trainer(deployment, "svm", env={"DRIFTLINE_INSTANCE_ID": "second"})
    wait_for("the standby", lambda: trainer_status(deployment, standby), [leader, standby])
    assert not trainer_status(deployment, standby)["leader"]  # type: ignore[index]

    flipped = list(SyntheticStream(Scenario(drift="sudden", at=0), seed=8).events(1_200))
    produce_examples(deployment, flipped, served)
    wait_for(
        "the standby's window to fill",
        lambda: (trainer_status(deployment, standby) or {}).get("examples", 0) >= 1_200,
        [leader, standby],
    )
    leader.kill()
    request_retrain(deployment, "after-the-crash", None)
    wait_for("v2 promoted by the standby", lambda: registry.active(model) == 2, [standby])
    holder = registry.client.get(registry.keys.lock(f"trainer:{model}"))
    assert holder is not None and holder.decode().startswith(f"second-{standby.proc.pid}:")
    second = registry.get(model, 2)
    assert second.algorithm == "svm" and second.trained_on["request_id"] == "after-the-crash"
    assert second.trained_on["gate"]["candidate"] > 0.9, second.trained_on["gate"]
    assert standby.stop() == 0


def test_a_river_model_learns_continuously_and_a_better_snapshot_is_promoted(
    deployment: Deployment,
) -> None:
    registry, model = deployment.registry, deployment.model
    _, served = register_model(deployment, Scenario(), algo="river-logistic")
    trainer = start_trainer(
        deployment, "river-logistic", env={"DRIFTLINE_TRAINER_ONLINE_SNAPSHOT_S": "1"}
    )
    wait_for(
        "a leader", lambda: (trainer_status(deployment, trainer) or {}).get("leader"), [trainer]
    )
    flipped = list(SyntheticStream(Scenario(drift="sudden", at=0), seed=9).events(2_000))
    # Examples whose labels fit no class of the 0/1 model (written by hand to `examples`): each
    # once crash-looped the trainer in River's learn_one. They are skipped and counted.
    bad = [
        replace(e, label=label) for e, label in zip(flipped, ["yes", True, 2.5, 7], strict=False)
    ]
    produce_examples(deployment, bad + flipped[len(bad) :], served)
    # No retrain request: the snapshot on the schedule wins the gate by itself.
    wait_for("a snapshot promoted", lambda: registry.active(model) == 2, [trainer])
    assert trainer.metric("driftline_trainer_skipped_examples_total", 'reason="bad_label"') == 4
    assert "is not a class of the model: expected one of [0, 1]" in trainer.log()
    second = registry.get(model, 2)
    assert second.trained_on["mode"] == "online" and second.algorithm == "river-logistic"
    assert second.parent == 1 and second.format == "pickle"
    gain = second.metrics["gate_candidate_accuracy"] - second.metrics["gate_champion_accuracy"]
    assert gain > 0.3, second.metrics
    assert messages(deployment, "retrain") == []
    assert trainer.stop() == 0


def test_a_version_bad_from_its_first_label_is_rolled_back_whoever_promoted_it(
    deployment: Deployment,
) -> None:
    """A version trained on the wrong concept, promoted by hand (as `driftline models promote`
    does): wrong from its first label, with no change inside it for a detector to find. The
    rollback guard watched only versions this trainer promoted; now it judges every new version
    it sees on the stream against the one served before it, and rolls this one back."""
    import numpy as np  # noqa: PLC0415

    from shared.models.algorithms import algorithm  # noqa: PLC0415
    from shared.models.signing import load_signer  # noqa: PLC0415
    from shared.models.training import Dataset, train  # noqa: PLC0415

    registry, model = deployment.registry, deployment.model
    _, good = register_model(deployment, Scenario())
    trainer = start_trainer(deployment, "logistic", env={"DRIFTLINE_TRAINER_GUARD_LABELS": "200"})
    wait_for(
        "a leader", lambda: (trainer_status(deployment, trainer) or {}).get("leader"), [trainer]
    )
    events = list(SyntheticStream(Scenario(), seed=21).events(1_000))
    produce_examples(deployment, events[:400], good)  # v1's live level
    flipped = list(SyntheticStream(Scenario(drift="sudden", at=0), seed=22).events(2_000))
    X = np.array([[e.features[f] for f in Scenario().features] for e in flipped])
    bad_data = Dataset(Scenario().features, X, [e.label for e in flipped], None)
    signer = load_signer(deployment.home / "keys" / "signing.key", None)
    bad = registry.register(train(bad_data, model=model, algo=algorithm("logistic"), signer=signer))
    registry.promote(model, bad.version)  # by hand, not by the trainer
    verifier = load_verifier(deployment.home / "keys" / "signing.pub", None)
    served = load_version(registry, model, bad.version, verifier)
    produce_examples(deployment, events[400:], served)
    wait_for("the rollback", lambda: registry.active(model) == 1, [trainer])
    assert registry.get(model, bad.version).status == "rolled_back"
    assert "worse than v1's" in trainer.log()
    assert trainer.stop() == 0
