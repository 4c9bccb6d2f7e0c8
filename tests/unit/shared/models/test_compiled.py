"""The compiled form of a scikit-learn pipeline: the same scores as scikit-learn, or not used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from shared.core.schema import FeatureSpec, Schema, numeric_schema
from shared.models.algorithms import ALGORITHMS, Scorer, algorithm, fit
from shared.models.compiled import compile_pipeline
from shared.models.serving import odd_rows

SKLEARN = sorted(name for name, algo in ALGORITHMS.items() if algo.family == "sklearn")
MIXED = Schema(
    [
        FeatureSpec("amount", "numeric"),
        FeatureSpec("country", "categorical"),
        FeatureSpec("is_new", "boolean"),
        FeatureSpec("code", "categorical"),
    ]
)


def _mixed_rows(rng: np.random.Generator, count: int) -> list[list[Any]]:
    """Numbers with gaps, a category with a rare value and gaps, a boolean, and an integer code
    with more values than the encoder keeps (the rest fall into its infrequent column)."""
    rows = []
    for _ in range(count):
        rows.append(
            [
                float(rng.normal()) if rng.random() > 0.1 else None,
                str(rng.choice(["x", "y", "z", "rare"], p=[0.5, 0.3, 0.195, 0.005]))
                if rng.random() > 0.1
                else None,
                bool(rng.random() > 0.5),
                str(rng.integers(0, 80)),
            ]
        )
    return rows


def _task(name: str) -> str:
    return "regression" if "regression" in ALGORITHMS[name].tasks else "classification"


@pytest.mark.parametrize("name", SKLEARN)
def test_each_algorithm_compiles_and_scores_what_scikit_learn_scores_on_mixed_data(
    name: str,
) -> None:
    rng = np.random.default_rng(0)
    X = MIXED.matrix(_mixed_rows(rng, 1_500))
    task = _task(name)
    y = (
        rng.normal(size=len(X)).tolist()
        if task == "regression"
        else (rng.random(len(X)) > 0.5).astype(int).tolist()
    )
    model = fit(algorithm(name), task, {}, X, y, MIXED)  # type: ignore[arg-type]
    classes = None if task == "regression" else [0, 1]
    plain = Scorer(model, "sklearn", task, MIXED.names, classes)  # type: ignore[arg-type]
    fast = Scorer(model, "sklearn", task, MIXED.names, classes)  # type: ignore[arg-type]
    probe = np.vstack([MIXED.matrix(_mixed_rows(rng, 300)), odd_rows(MIXED)])
    assert fast.compile(probe[:40]) and fast.compiled and not plain.compiled
    expected, got = plain.score(probe), fast.score(probe)
    assert got[0] == expected[0]
    assert [type(p) for p in got[0]] == [type(p) for p in expected[0]]
    if expected[1] is None:
        assert got[1] is None
    else:
        assert got[1] is not None and np.allclose(got[1], expected[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["logistic", "svm", "sgd"])
def test_a_bundled_dataset_scores_the_same_compiled(name: str) -> None:
    data = load_breast_cancer()
    names = [f"f{i}" for i in range(data.data.shape[1])]
    model = fit(algorithm(name), "classification", {}, data.data, data.target.tolist(), names)
    plain = Scorer(model, "sklearn", "classification", names, [0, 1])
    fast = Scorer(model, "sklearn", "classification", names, [0, 1])
    assert fast.compile(data.data[:50])
    assert fast.score(data.data)[0] == plain.score(data.data)[0]
    assert np.allclose(fast.score(data.data)[1], plain.score(data.data)[1], rtol=1e-9)  # type: ignore[arg-type]


def test_a_regression_on_a_bundled_dataset_scores_the_same_compiled() -> None:
    data = load_diabetes()
    names = [f"f{i}" for i in range(data.data.shape[1])]
    schema = numeric_schema(names, missing=True)
    model = fit(algorithm("ridge"), "regression", {}, data.data, data.target.tolist(), schema)
    plain = Scorer(model, "sklearn", "regression", names, None)
    fast = Scorer(model, "sklearn", "regression", names, None)
    assert fast.compile(data.data[:50])
    assert np.allclose(fast.score(data.data)[0], plain.score(data.data)[0], rtol=1e-9)


def test_a_compiled_form_that_disagrees_with_scikit_learn_is_not_used() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int).tolist()
    model = fit(algorithm("logistic"), "classification", {}, X, y, ["a", "b", "c"])
    compiled = compile_pipeline(model, proba=True, decision=True)
    assert compiled is not None and compiled.agrees(model, X)
    compiled._coef = compiled._coef * 1.001  # a compiled form gone wrong
    assert not compiled.agrees(model, X)


def test_a_pipeline_of_another_shape_is_not_compiled() -> None:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import MinMaxScaler  # noqa: PLC0415

    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 2))
    y = (X[:, 0] > 0).astype(int)
    bare = LogisticRegression().fit(X, y)
    other = Pipeline([("scale", MinMaxScaler()), ("model", LogisticRegression())]).fit(X, y)
    assert compile_pipeline(bare, proba=True, decision=True) is None
    assert compile_pipeline(other, proba=True, decision=True) is None
    scorer = Scorer(other, "sklearn", "classification", ["a", "b"], [0, 1])
    assert not scorer.compile(X) and scorer.score(X)[0] == other.predict(X).tolist()


def test_a_pipeline_that_fails_to_compile_in_any_way_is_scored_as_it_is() -> None:
    class Odd:
        @property
        def steps(self) -> list[Any]:
            raise RuntimeError("a transformer of a library driftline does not know")

    assert compile_pipeline(Odd(), proba=True, decision=True) is None
