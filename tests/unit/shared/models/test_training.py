"""Offline training: data loading, temporal hold-out, every algorithm, metrics and profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.core.errors import ConfigError
from shared.models.algorithms import ALGORITHMS, Scorer, algorithm, fit
from shared.models.signing import Signer
from shared.models.training import evaluate, load_dataset, train
from tests.harness.mixed import solar_flare_csv

SIGNER = Signer.hmac(b"sixteen-byte-key")


def _write_csv(path: Path, rows: int, seed: int = 0, classify: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    lines = ["ts,a,b,y"]
    for i in range(rows):
        label = int(X[i, 0] - X[i, 1] > 0) if classify else round(3 * X[i, 0] - 2 * X[i, 1] + 1, 4)
        # Written newest first: loading must restore time order from ts.
        lines.append(f"{1_000 + (rows - i) * 10},{X[i, 0]:.5f},{X[i, 1]:.5f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_rows_come_back_in_time_order(tmp_path: Path) -> None:
    data = load_dataset(_write_csv(tmp_path / "d.csv", 50), "y")
    assert data.features == ["a", "b"]
    assert data.ts == sorted(data.ts or [])
    assert data.X.shape == (50, 2)
    assert set(data.y) == {0, 1}


def test_jsonl_keeps_label_types(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        "\n".join(json.dumps({"x": float(i), "y": "spam" if i % 2 else "ham"}) for i in range(10))
    )
    data = load_dataset(path, "y")
    assert data.y[:2] == ["ham", "spam"]
    assert data.ts is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,y\n1,0\nhigh,1\n", r"d\.csv:3: features\.a: expected a number .*'high'"),
        ("a,y\n1,0\ninf,1\n", r"d\.csv:3: features\.a: must be a finite number, got 'inf'"),
        ("a,y\n1,\n", r"d\.csv:2: y is empty"),
        ("a,b\n1,0\n", r"has no column 'y'"),
    ],
)
def test_bad_data_names_file_line_and_column(tmp_path: Path, content: str, message: str) -> None:
    """A value that does not fit the kind ``--numeric`` forces names its line and column."""
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_dataset(path, "y", numeric=["a"] if "a" in content.split("\n", maxsplit=1)[0] else ())


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_trains_scores_and_profiles(tmp_path: Path, name: str) -> None:
    algo = algorithm(name)
    classify = "classification" in algo.tasks
    data = load_dataset(_write_csv(tmp_path / "d.csv", 300, classify=classify), "y")
    task = "classification" if classify else "regression"
    candidate = train(data, model="m", algo=algo, signer=SIGNER, task=task)
    assert candidate.task == task
    assert candidate.format == ("skops" if algo.family == "sklearn" else "pickle")
    assert candidate.trained_on["rows"] == 240 and candidate.trained_on["holdout_rows"] == 60
    assert (
        candidate.trained_on["end_ts"] < candidate.trained_on["holdout_end_ts"]
    )  # held out the newest
    assert candidate.signer.scheme == "hmac-sha256"
    assert candidate.reference.n == 240
    assert len(candidate.reference.features["a"].quantiles) == 11
    if classify:
        assert candidate.metrics["accuracy"] > 0.8, candidate.metrics
    else:
        assert candidate.metrics["r2"] > 0.8, candidate.metrics


def test_classifier_scores_are_positive_class_probabilities(tmp_path: Path) -> None:
    data = load_dataset(_write_csv(tmp_path / "d.csv", 300), "y")
    candidate = train(data, model="m", algo=algorithm("logistic"), signer=SIGNER)
    assert {"roc_auc", "log_loss", "f1"} <= set(candidate.metrics)
    assert candidate.reference.score is not None
    assert (
        min(candidate.reference.score.sample) >= 0.0
        and max(candidate.reference.score.sample) <= 1.0
    )


def test_linear_svm_scores_are_decision_values(tmp_path: Path) -> None:
    data = load_dataset(_write_csv(tmp_path / "d.csv", 300), "y")
    algo = algorithm("svm")
    candidate = train(data, model="m", algo=algo, signer=SIGNER)
    assert "roc_auc" in candidate.metrics and "log_loss" not in candidate.metrics
    assert candidate.reference.score is not None
    assert min(candidate.reference.score.sample) < 0 < max(candidate.reference.score.sample)


def test_regression_metrics_are_exact() -> None:
    metrics = evaluate("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0], None)
    assert metrics["mse"] == pytest.approx(4 / 3)
    assert metrics["mae"] == pytest.approx(2 / 3)
    assert metrics["rmse"] == pytest.approx((4 / 3) ** 0.5)


def test_one_class_training_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "".join(f"{i},1\n" for i in range(20)))
    with pytest.raises(ConfigError, match="one class only"):
        train(load_dataset(path, "y"), model="m", algo=algorithm("logistic"), signer=SIGNER)


def test_task_the_algorithm_cannot_do_is_refused(tmp_path: Path) -> None:
    data = load_dataset(_write_csv(tmp_path / "d.csv", 50), "y")
    with pytest.raises(ConfigError, match="linear does regression, not classification"):
        train(data, model="m", algo=algorithm("linear"), signer=SIGNER, task="classification")


def test_river_scorer_batches_row_by_row() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).tolist()
    model = fit(algorithm("river-logistic"), "classification", {}, X, y, ["a", "b"])
    predictions, scores = Scorer(model, "river", "classification", ["a", "b"], [False, True]).score(
        np.array([[4.0, 0.0], [-4.0, 0.0]])
    )
    assert predictions == [True, False]
    assert scores is not None
    assert scores[0] > 0.9
    assert scores[1] < 0.1


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_a_csv_with_text_columns_and_blanks_trains_serves_and_meets_new_categories(
    tmp_path: Path, name: str
) -> None:
    import msgspec  # noqa: PLC0415

    from shared.core.messages import FeatureEvent  # noqa: PLC0415
    from shared.models.artifacts import load_verified  # noqa: PLC0415
    from shared.models.serving import load_serving_model  # noqa: PLC0415
    from shared.models.signing import Verifier  # noqa: PLC0415
    from shared.models.version import ModelVersion  # noqa: PLC0415

    data = load_dataset(solar_flare_csv(tmp_path / "flares.csv"), "flare", categorical=["activity"])
    assert data.feature_schema.kinds["zurich-class"] == "categorical"
    assert data.feature_schema.kinds["activity"] == "categorical"  # forced: an integer code
    assert data.feature_schema.kinds["area"] == "numeric"
    assert data.feature_schema.kinds["complex"] == "boolean"
    algo = algorithm(name)
    task = "classification" if "classification" in algo.tasks else "regression"
    candidate = train(data, model="flares", algo=algo, signer=SIGNER, task=task)
    assert candidate.schema.missing and candidate.schema == msgspec.structs.replace(
        data.feature_schema, missing=True
    )
    assert set(candidate.reference.features) == {
        n for n, k in candidate.schema.kinds.items() if k != "categorical"
    }
    record = ModelVersion(
        model="flares",
        version=1,
        task=candidate.task,
        algorithm=name,
        params={},
        features=candidate.features,
        format=candidate.format,
        sha256=candidate.sha256,
        signature=None,
        metrics={},
        reference=candidate.reference,
        classes=candidate.classes,
        trained_on={},
        libraries={},
        created_at=1,
        parent=None,
        status="registered",
        schema=candidate.schema,
    )
    record = msgspec.structs.replace(record, signature=SIGNER.sign(record.header()))
    serving = load_serving_model(record, candidate.artifact, Verifier.hmac(b"sixteen-byte-key"))
    events = [
        FeatureEvent(
            event_id="seen",
            features={
                **dict(zip(data.features, data.X[1].tolist(), strict=True)),
                "zurich-class": "H",
            },
        ),
        FeatureEvent(
            event_id="new",
            features={"zurich-class": "never-seen", "largest-spot-size": "Q", "activity": 9},
        ),
    ]
    X = serving.schema.matrix([serving.schema.row(event.features) for event in events])
    predictions, _ = serving.score(X)
    assert len(predictions) == 2
    if task == "classification":
        assert set(predictions) <= {0, 1}
    # scikit-learn versions serve through their compiled form, which scores what they score
    assert serving.scorer.compiled == (algo.family == "sklearn")
    plain = Scorer(serving.scorer.model, algo.family, task, candidate.features, candidate.classes)
    fast, slow = serving.score(data.X), plain.score(data.X)
    assert fast[0] == slow[0]
    assert (fast[1] is None) == (slow[1] is None)
    if fast[1] is not None and slow[1] is not None:
        assert np.allclose(fast[1], slow[1], rtol=1e-9, atol=1e-12)
    assert load_verified(candidate.artifact, record, Verifier.hmac(b"sixteen-byte-key")) is not None
