"""Real mixed-type data through the real CLI and predictor: a CSV with text columns and blanks is
trained on, and a stream of numbers, integers, booleans, categories, nulls, absent and extra
features, written by another client, is scored with nothing valid dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.core.messages import DeadLetter, DriftAlert, Prediction
from shared.models.training import load_dataset
from tests.harness.mixed import TEXT, solar_flare_csv, solar_flare_rows, users_pipeline
from tests.harness.monitor import messages, start_monitor, wait_joined
from tests.harness.predictor import (
    Deployment,
    read_all,
    run_cli,
    send_raw,
    wait_for_predictions,
)

pytestmark = pytest.mark.integration


def test_a_mixed_stream_is_scored_and_every_refusal_names_its_feature(
    deployment: Deployment, tmp_path: Path
) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415

    data = solar_flare_csv(tmp_path / "flares.csv")
    trained = run_cli(
        deployment, "train", "--model", deployment.model, "--data", str(data), "--target",
        "flare", "--algo", "logistic", "--categorical", "activity", "--promote", "--json",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "categorical: zurich-class, largest-spot-size, spot-distribution, activity" in (
        trained.stderr
    )
    shown = run_cli(deployment, "models", "show", "--model", deployment.model)
    assert "boolean: complex" in shown.stdout, shown.stdout

    predictor = deployment.start_predictor()
    predictor.wait_ready()
    good: dict[str, dict[str, object]] = {}
    rows = solar_flare_rows()
    for i in range(1_100):  # over one window of the predictor's feature watch (1,000 events)
        event = dict(rows[i % len(rows)][0])
        if i % 5 == 0:
            event["area"] = None  # null: missing
        if i % 7 == 0:
            del event["zurich-class"]  # absent: missing
        if i % 11 == 0:
            event["zurich-class"] = "Z-never-seen"  # a category first seen in production
        if i % 13 == 0:
            event["complex"] = "TRUE" if event["complex"] else "false"  # another writer's booleans
        if i % 3 == 0:  # extra fields of every type, which the model does not read
            event.update(note={"free": ["text", {"deep": None}]}, tags=[1, 2], source="app-7")
        good[f"ok-{i}"] = event
    bad = {
        "bad-number": ({"area": "forty"}, "features.area: expected a number"),
        "bad-array": ({"zurich-class": ["H"]}, "features.zurich-class: expected a category"),
        "bad-long": ({"spot-distribution": "x" * 300}, "features.spot-distribution: a category"),
        "bad-boolean": ({"complex": "maybe"}, "features.complex: expected true or false"),
        "bad-object": ({"evolution": {"v": 2}}, "features.evolution: expected a number"),
    }
    base = solar_flare_rows()[0][0]
    events = [(key, features) for key, features in good.items()]
    events += [(key, {**base, **change}) for key, (change, _) in bad.items()]
    other = Producer({"bootstrap.servers": str(deployment.bootstrap)})  # its defaults
    for key, features in events:
        other.produce(
            deployment.features_topic,
            key=key,
            value=json.dumps({"event_id": key, "features": features}),
        )
    assert other.flush(30) == 0

    found = wait_for_predictions(deployment, good)
    assert set(found) == set(good)  # nothing valid is dead-lettered
    predictions = {
        p.event_id: p
        for p in (
            Prediction.decode(r.value)
            for r in read_all(deployment.bootstrap, deployment.topic("predictions"))
        )
    }
    first = predictions["ok-0"]
    assert set(first.features or {}) == set(base)  # the model's features, no extra field
    assert first.features["area"] is None and first.features["zurich-class"] == "Z-never-seen"
    assert type(first.features["activity"]) is str and first.features["complex"] in (True, False)
    assert type(first.features["evolution"]) is int
    assert predictions["ok-13"].features["complex"] is (good["ok-13"]["complex"] == "TRUE")
    letters = {
        r.key.decode(): DeadLetter.decode(r.value)
        for r in read_all(deployment.bootstrap, deployment.topic("dlq"), settle_s=1)
    }
    assert set(letters) == set(bad)
    for key, (_, reason) in bad.items():
        assert reason in letters[key].error, (key, letters[key].error)
    # Fields the schema does not know, in a third of the events: said once each (the monitor
    # never sees them: predictions carry the model's features). Five refusals stay under 10%.
    said = [
        (a.feature, a.detector, a.severity)
        for a in (
            DriftAlert.decode(r.value)
            for r in read_all(deployment.bootstrap, deployment.topic("alerts"))
        )
    ]
    assert sorted(said) == [
        (name, "predictor:unknown", "info") for name in ("note", "source", "tags")
    ], said
    assert predictor.metric("driftline_predictor_refused_values_total") == len(bad)
    assert predictor.stop() == 0
    assert {name for name in base if name in TEXT} == set(TEXT)


def test_a_pipeline_trained_elsewhere_is_registered_serves_and_is_monitored(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A user's own scikit-learn pipeline, saved with skops, registered from the file with a
    sample; the predictor serves it, and the monitor names the category whose share moved."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    sample = solar_flare_csv(tmp_path / "flares.csv")
    model_file = tmp_path / "flares.skops"
    model_file.write_bytes(users_pipeline(load_dataset(sample, "flare"), LogisticRegression()))
    registered = run_cli(
        deployment, "models", "register", "--model", deployment.model, "--file", str(model_file),
        "--sample", str(sample), "--target", "flare", "--promote",
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert f"{deployment.model} v1 active: Pipeline(ColumnTransformer" in registered.stdout

    window = {"DRIFTLINE_MONITOR_DRIFT_WINDOW": "400", "DRIFTLINE_MONITOR_DRIFT_EVERY": "100"}
    predictor = deployment.start_predictor()
    monitor = start_monitor(deployment, env=window)
    predictor.wait_ready()
    monitor.wait_ready()
    rows = solar_flare_rows()
    rng = np.random.default_rng(3)
    items: list[tuple[bytes | None, bytes | None]] = []
    labels: list[tuple[bytes | None, bytes | None]] = []
    for i in range(1_600):
        features, label = rows[int(rng.integers(len(rows)))]
        if i >= 800 and rng.random() < 0.5:
            features = {**features, "zurich-class": "F"}  # F: 4% of the regions in training
        key = f"e{i}".encode()
        items.append((key, json.dumps({"event_id": f"e{i}", "features": features}).encode()))
        labels.append((key, json.dumps({"event_id": f"e{i}", "label": label}).encode()))
    send_raw(deployment.bootstrap, deployment.features_topic, items)
    send_raw(deployment.bootstrap, deployment.topic("labels"), labels)
    wait_joined(deployment, monitor, len(items))
    alerts = [
        a
        for a in messages(deployment, "alerts", deployment.model)
        if a["state"] == "firing" and a["kind"] in ("data_drift", "data_quality")
    ]
    assert [(a["kind"], a["feature"], a["version"]) for a in alerts] == [
        ("data_drift", "zurich-class", 1)
    ], alerts
    assert "shares moved most: F 4% → " in alerts[0]["message"], alerts[0]["message"]
    assert read_all(deployment.bootstrap, deployment.topic("dlq")) == []
    assert predictor.stop() == 0 and monitor.stop() == 0
