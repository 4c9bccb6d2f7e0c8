"""Model algorithms and one scoring interface over scikit-learn and River models.

``ALGORITHMS`` names what `driftline train` and the trainer can fit. :func:`build` makes an unfitted
estimator; :class:`Scorer` turns a fitted one into ``(predictions, scores)`` for a batch of rows in the
model's feature order. scikit-learn models are scored a batch at a time (about 3000x cheaper per event
than one row at a time); River models one row at a time, which is what they are made for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from shared.core.errors import ConfigError
from shared.core.kinds import Task
from shared.core.schema import Schema, numeric_schema
from shared.models.compiled import CompiledPipeline, compile_pipeline
from shared.models.pipelines import remember_pandas_is_absent, river_pipeline, sklearn_pipeline

Family = Literal["sklearn", "river"]


@dataclass(frozen=True)
class Algorithm:
    """One trainable algorithm: its family, the tasks it serves and how to build it."""

    name: str
    family: Family
    tasks: tuple[Task, ...]
    summary: str
    make: Callable[[Task, dict[str, Any]], Any]
    """The bare estimator; :func:`build` puts it behind the schema's preprocessing."""
    encode: bool = True
    """Whether numbers are scaled and (River) categories one-hot encoded before the estimator:
    linear models and SVMs need it, a tree does not."""

    @property
    def format(self) -> str:
        """How its artifact is serialized: skops for scikit-learn, pickle for River."""
        return "skops" if self.family == "sklearn" else "pickle"


def _linear(task: Task, params: dict[str, Any]) -> Any:
    from sklearn.linear_model import LinearRegression  # noqa: PLC0415 - heavy imports stay lazy

    return LinearRegression(**params)


def _ridge(task: Task, params: dict[str, Any]) -> Any:
    from sklearn.linear_model import Ridge  # noqa: PLC0415

    return Ridge(**params)


def _logistic(task: Task, params: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    return LogisticRegression(**{"max_iter": 1000, **params})


def _svm(task: Task, params: dict[str, Any]) -> Any:
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    return LinearSVC(**params)


def _svm_rbf(task: Task, params: dict[str, Any]) -> Any:
    from sklearn.svm import SVC  # noqa: PLC0415

    return SVC(**{"kernel": "rbf", **params})


def _sgd(task: Task, params: dict[str, Any]) -> Any:
    from sklearn.linear_model import SGDClassifier, SGDRegressor  # noqa: PLC0415

    if task == "classification":
        return SGDClassifier(**{"loss": "log_loss", "random_state": 0, **params})
    return SGDRegressor(**{"random_state": 0, **params})


def _river_logistic(task: Task, params: dict[str, Any]) -> Any:
    from river import linear_model  # noqa: PLC0415

    return linear_model.LogisticRegression(**params)


def _river_linear(task: Task, params: dict[str, Any]) -> Any:
    from river import linear_model  # noqa: PLC0415

    return linear_model.LinearRegression(**params)


def _river_tree(task: Task, params: dict[str, Any]) -> Any:
    from river import tree  # noqa: PLC0415

    if task == "classification":
        return tree.HoeffdingTreeClassifier(**params)
    return tree.HoeffdingTreeRegressor(**params)


_BOTH: tuple[Task, ...] = ("regression", "classification")
ALGORITHMS: dict[str, Algorithm] = {
    algo.name: algo
    for algo in (
        Algorithm("linear", "sklearn", ("regression",), "least squares (scaled)", _linear),
        Algorithm("ridge", "sklearn", ("regression",), "L2-regularised least squares", _ridge),
        Algorithm("logistic", "sklearn", ("classification",), "logistic regression", _logistic),
        Algorithm("svm", "sklearn", ("classification",), "linear SVM (decision score)", _svm),
        Algorithm("svm-rbf", "sklearn", ("classification",), "kernel SVM, RBF kernel", _svm_rbf),
        Algorithm("sgd", "sklearn", _BOTH, "linear model fit by SGD", _sgd),
        Algorithm(
            "river-logistic", "river", ("classification",), "online logistic", _river_logistic
        ),
        Algorithm("river-linear", "river", ("regression",), "online linear", _river_linear),
        Algorithm("river-tree", "river", _BOTH, "Hoeffding tree", _river_tree, encode=False),
    )
}


def algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``, or a ValueError listing the ones there are."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}"
        ) from None


def infer_task(algo: Algorithm, labels: Sequence[Any]) -> Task:
    """The task for ``algo`` on ``labels``: the algorithm's only task, else judged from the labels
    (strings, booleans or few distinct integers mean classification).
    """
    if len(algo.tasks) == 1:
        return algo.tasks[0]
    if all(isinstance(label, str | bool) for label in labels):
        return "classification"
    integral = all(isinstance(label, int) or float(label).is_integer() for label in labels)
    if integral and len(set(labels)) <= 10:
        return "classification"
    return "regression"


def build(algo: Algorithm, task: Task, params: dict[str, Any], schema: Schema) -> Any:
    """An unfitted model of ``algo``: its estimator behind the preprocessing of ``schema``."""
    if task not in algo.tasks:
        raise ValueError(f"{algo.name} does {' and '.join(algo.tasks)}, not {task}")
    estimator = algo.make(task, params)
    if algo.family == "sklearn":
        remember_pandas_is_absent()
        return sklearn_pipeline(schema, estimator, scale=algo.encode)
    return river_pipeline(schema, estimator, encode=algo.encode)


def fit(
    algo: Algorithm,
    task: Task,
    params: dict[str, Any],
    X: NDArray[Any],
    y: list[Any],
    schema: Schema | Sequence[str],
) -> Any:
    """A fitted model of ``algo`` on rows ``X`` (laid out by :meth:`Schema.matrix`) and labels
    ``y``; feature names alone mean every feature numeric."""
    if not isinstance(schema, Schema):
        schema = numeric_schema(schema, missing=True)
    model = build(algo, task, params, schema)
    if algo.family == "sklearn":
        model.fit(X, np.asarray(y))
        return model
    for x, label in zip(river_rows(schema.names, X), y, strict=True):
        model.learn_one(x, label)
    return model


def river_rows(names: Sequence[str], X: NDArray[Any]) -> list[dict[str, Any]]:
    """The rows of ``X`` as the dicts a River model reads: NaN (a missing number) as None."""
    return [
        {
            name: None if type(value) is float and math.isnan(value) else value
            for name, value in zip(names, row, strict=True)
        }
        for row in X.tolist()
    ]


class Scorer:
    """Scores batches of rows with a fitted model: ``score(X) -> (predictions, scores | None)``.

    For a classifier the score is the positive-class probability when the model has one, else its
    decision value; the positive class is the larger of two classes (1 over 0, True over False).
    """

    def __init__(
        self,
        model: Any,
        family: Family,
        task: Task,
        features: Sequence[str],
        classes: Sequence[Any] | None,
    ) -> None:
        self._model = model
        self._family = family
        self._task = task
        self._features = list(features)
        self._positive = sorted(classes)[-1] if classes and len(classes) == 2 else None
        self._proba = self._decision = False
        if family == "sklearn" and task == "classification":
            self._proba = hasattr(model, "predict_proba") and _has_proba(model)
            self._decision = hasattr(model, "decision_function")
        self._compiled: CompiledPipeline | None = None

    @property
    def task(self) -> Task:
        return self._task

    @property
    def model(self) -> Any:
        """The fitted model itself."""
        return self._model

    @property
    def family(self) -> Family:
        return self._family

    @property
    def compiled(self) -> bool:
        """Whether batches are scored by the compiled form of the pipeline."""
        return self._compiled is not None

    def compile(self, X: NDArray[Any]) -> bool:
        """Score with the pipeline's compiled form from now on, if it has one and it computes
        what scikit-learn computes on the rows of ``X`` (:mod:`shared.models.compiled`)."""
        if self._family != "sklearn":
            return False
        classes = getattr(self._model, "classes_", None)
        if self._positive is not None and (classes is None or classes[-1] != self._positive):
            return False  # the compiled form scores the last of the model's classes
        compiled = compile_pipeline(self._model, proba=self._proba, decision=self._decision)
        if compiled is not None and compiled.agrees(self._model, X):
            self._compiled = compiled
        return self._compiled is not None

    def score(self, X: NDArray[Any]) -> tuple[list[Any], list[float] | None]:
        """Predictions and scores of the rows of ``X`` (as :meth:`Schema.matrix` lays them out)."""
        if self._compiled is not None:
            predictions, scores = self._compiled.predict(X)
            if self._task == "regression":
                return predictions.astype(float).tolist(), None
            if self._positive is None:
                return predictions.tolist(), None
            return predictions.tolist(), None if scores is None else scores.tolist()
        if self._family == "sklearn":
            return self._score_sklearn(X)
        return self._score_river(X)

    def _score_sklearn(self, X: NDArray[Any]) -> tuple[list[Any], list[float] | None]:
        predictions = self._model.predict(X).tolist()
        if self._task == "regression":
            return [float(value) for value in predictions], None
        if self._positive is None:
            return predictions, None
        if self._proba:
            proba = self._model.predict_proba(X)
            column = list(self._model.classes_).index(self._positive)
            return predictions, proba[:, column].tolist()
        if self._decision:
            return predictions, self._model.decision_function(X).tolist()
        return predictions, None

    def _score_river(self, X: NDArray[Any]) -> tuple[list[Any], list[float] | None]:
        predictions: list[Any] = []
        scores: list[float] = []
        for x in river_rows(self._features, X):
            if self._task == "regression":
                predictions.append(float(self._model.predict_one(x)))
                continue
            proba = self._model.predict_proba_one(x)
            predictions.append(max(proba, key=proba.get) if proba else None)
            scores.append(float(proba.get(self._positive, 0.0)))
        if self._task == "regression" or self._positive is None:
            return predictions, None
        return predictions, scores


def _has_proba(model: Any) -> bool:
    """``predict_proba`` exists on SVC only with probability=True; asking is the reliable test."""
    try:
        getattr(model, "predict_proba")  # noqa: B009 - the property raises when unavailable
    except AttributeError:
        return False
    return True


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["C=0.5", "fit_intercept=false"]`` as ``{"C": 0.5, "fit_intercept": False}``."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params
