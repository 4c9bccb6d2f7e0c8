"""The registry on real Redis, and `driftline train` / `driftline models` as users run them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from shared.core.errors import ModelNotFound
from shared.core.messages import ModelEvent
from tests.harness.predictor import (
    Deployment,
    read_all,
    run_cli,
    send_raw,
    wait_for_predictions,
)

pytestmark = pytest.mark.integration

_driftline = run_cli


def test_promote_and_rollback_are_atomic_with_history_and_announcements(
    deployment: Deployment,
) -> None:
    registry, model = deployment.registry, deployment.model
    v1, v2, v3 = (deployment.register(seed=seed) for seed in (1, 2, 3))
    assert (v1, v2, v3) == (1, 2, 3)
    assert registry.active(model) is None
    listener = registry._redis.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(registry.keys.changed(model))

    assert registry.promote(model, v1).previous is None
    assert registry.promote(model, v2).previous == v1
    assert registry.promote(model, v3).previous == v2
    assert (registry.active(model), registry.history(model)) == (v3, [v2, v1])
    assert [registry.get(model, v).status for v in (v1, v2, v3)] == ["retired", "retired", "active"]

    change = registry.rollback(model)
    assert (change.previous, change.current) == (v3, v2)
    assert (registry.active(model), registry.history(model)) == (v2, [v1])
    assert registry.get(model, v3).status == "rolled_back"
    assert registry.get(model, v2).status == "active"

    announced = []
    deadline = time.monotonic() + 10
    while len(announced) < 4 and time.monotonic() < deadline:
        message = listener.get_message(timeout=1.0)
        if message:
            announced.append(int(message["data"]))
    assert announced == [v1, v2, v3, v2]

    registry.rollback(model)
    with pytest.raises(ModelNotFound, match="no earlier active version"):
        registry.rollback(model)
    with pytest.raises(ModelNotFound, match="has no version 99"):
        registry.promote(model, 99)
    assert registry.active(model) == v1  # a refused promotion changed nothing


def test_registry_keeps_metadata_and_lineage(deployment: Deployment) -> None:
    first = deployment.registry.register(deployment.candidate(seed=1))
    deployment.registry.promote(deployment.model, first.version)
    second = deployment.registry.register(deployment.candidate(seed=2), parent=first.version)
    assert second.parent == first.version
    assert second.features == ["a", "b", "c"] and second.task == "classification"
    assert second.algorithm == "logistic" and second.format == "skops"
    assert set(second.metrics) >= {"accuracy", "f1", "roc_auc", "log_loss"}
    assert second.reference is not None and second.reference.n == 480
    assert {"scikit-learn", "numpy", "skops"} <= set(second.libraries)
    assert second.trained_on["rows"] == 480
    assert second.signature and second.signature.startswith("ed25519:")
    assert deployment.registry.models() == [deployment.model]


def test_train_list_show_promote_rollback_from_the_command_line(
    deployment: Deployment, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    rows = ["ts,x1,x2,target"] + [
        f"{1_000 + i},{X[i, 0]:.4f},{X[i, 1]:.4f},{3 * X[i, 0] - X[i, 1] + 0.5:.4f}"
        for i in range(400)
    ]
    data = tmp_path / "train.csv"
    data.write_text("\n".join(rows) + "\n")
    model = deployment.model

    trained = _driftline(
        deployment,
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--target",
        "target",
        "--algo",
        "linear",
        "--promote",
        "--json",
    )
    assert trained.returncode == 0, trained.stderr
    first = json.loads(trained.stdout)
    assert set(first) == {"model", "version", "metrics"}
    assert (first["model"], first["version"]) == (model, 1)
    assert first["metrics"]["r2"] > 0.99 and set(first["metrics"]) == {"mse", "mae", "rmse", "r2"}

    second = _driftline(
        deployment,
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--target",
        "target",
        "--algo",
        "ridge",
        "--param",
        "alpha=10",
        "--json",
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["version"] == 2

    listed = json.loads(_driftline(deployment, "models", "list", "--model", model, "--json").stdout)
    assert listed["model"] == model and listed["active"] == 1
    assert [(v["version"], v["status"]) for v in listed["versions"]] == [
        (1, "active"),
        (2, "registered"),
    ]
    assert all(set(v) == {"version", "created_at", "metrics", "status"} for v in listed["versions"])

    shown = json.loads(
        _driftline(
            deployment, "models", "show", "--model", model, "--version", "2", "--json"
        ).stdout
    )
    assert (
        shown["params"] == {"alpha": 10} and shown["algorithm"] == "ridge" and shown["parent"] == 1
    )
    # For a person, the times are UTC with the epoch milliseconds beside them; --json keeps them
    # as numbers.
    human = _driftline(deployment, "models", "show", "--model", model, "--version", "2").stdout
    created = shown["created_at"]
    assert re.search(rf"created_at: \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ \({created}\)", human), human

    promoted = _driftline(
        deployment, "models", "promote", "--model", model, "--version", "2", "--json"
    )
    assert json.loads(promoted.stdout) == {"model": model, "previous": 1, "active": 2}
    rolled = _driftline(deployment, "models", "rollback", "--model", model, "--json")
    assert json.loads(rolled.stdout) == {"model": model, "previous": 2, "active": 1}

    events = [
        ModelEvent.decode(r.value)
        for r in read_all(deployment.bootstrap, deployment.topic("model-events"))
    ]
    assert [(e.version, e.event) for e in events] == [
        (1, "registered"),
        (1, "promoted"),
        (2, "registered"),
        (2, "promoted"),
        (1, "rolled_back"),
    ]

    missing = _driftline(deployment, "models", "promote", "--model", model, "--version", "9")
    assert (
        missing.returncode == 1
        and "has no version 9" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    typo = model[:-1] + "X"  # one letter off the registered name
    for command in (("status", "--model", typo), ("models", "list", "--model", typo)):
        unknown = _driftline(deployment, *command)
        assert unknown.returncode == 1, (command, unknown.stdout)
        assert f"model {typo!r} is not registered; did you mean {model!r}?" in unknown.stderr
        assert "Traceback" not in unknown.stderr
    bad = _driftline(
        deployment,
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--target",
        "nope",
        "--algo",
        "linear",
    )
    assert bad.returncode == 1 and "has no column 'nope'" in bad.stderr
    # A deployment prefix whose topics were never created: said at once, and nothing registered.
    elsewhere = f"nowhere-{model}."
    for command in (
        (
            "train",
            "--model",
            f"{model}-new",
            "--data",
            str(data),
            "--target",
            "target",
            "--algo",
            "linear",
        ),
        ("predictor", "--model", model),
    ):
        started = time.monotonic()
        lost = _driftline(deployment, *command, "--topic-prefix", elsewhere)
        assert lost.returncode == 1, (command, lost.stderr[-2000:])
        assert f"has no topic {elsewhere}" in lost.stderr and "driftline infra up" in lost.stderr
        assert "Traceback" not in lost.stderr
        assert time.monotonic() - started < 30  # not a client's 60 s wait for metadata
    assert f"{model}-new" not in deployment.registry.models()


def test_predictor_without_an_active_model_waits_not_ready_and_says_why(
    deployment: Deployment,
) -> None:
    version = deployment.register(seed=1)
    predictor = deployment.start_predictor()
    deadline = time.monotonic() + 60
    status, body = predictor.get("/readyz")
    while "no active version" not in body and time.monotonic() < deadline:
        time.sleep(0.3)
        status, body = predictor.get("/readyz")
    assert status == 503
    assert f"no active version of {deployment.model}" in json.loads(body)["reason"]
    assert predictor.get("/healthz")[0] == 200  # alive, just not ready

    deployment.registry.promote(deployment.model, version)
    predictor.wait_ready()
    send_raw(
        deployment.bootstrap,
        deployment.features_topic,
        [(b"w1", b'{"event_id": "w1", "features": {"a": 1, "b": 0, "c": 0}}')],
    )
    assert wait_for_predictions(deployment, ["w1"])["w1"][0][0] == version
    assert predictor.stop() == 0
