"""A scikit-learn pipeline of driftline's shape, compiled to a few numpy operations per batch.

scikit-learn's per-call machinery (fitted checks, tags, input validation, ``joblib`` dispatch in
the ``ColumnTransformer``, output wrapping) costs a few milliseconds per ``predict`` whatever the
batch, and the predictor calls two of them per batch (``predict`` and ``predict_proba``): more than
half of its CPU at 500 events a batch. :func:`compile_pipeline` reads the fitted parameters of the
pipeline :func:`shared.models.pipelines.sklearn_pipeline` builds and returns a
:class:`CompiledPipeline` that computes the same rows with plain array arithmetic:

- numbers: NaN replaced by the training median, the 0/1 missing indicators appended, then scaled;
- categories: each value looked up in a table of the one-hot column it sets, built by asking the
  fitted encoder about every category it knows and about one it cannot know (where an unseen
  category goes: the infrequent column, or nowhere);
- linear estimators (``coef_`` and ``intercept_``: logistic, linear SVM, SGD, least squares,
  ridge) scored as ``X @ coef.T + intercept``; any other estimator is called on the prepared rows.

Anything else (another transformer, another option) is not compiled (``None``), and a compiled
pipeline is only used once :meth:`CompiledPipeline.agrees` has checked it against scikit-learn on
sample rows (the serving model's warm-up batch): scikit-learn stays the definition of a score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

_LINEAR_CLASSIFIERS = frozenset({"LogisticRegression", "LinearSVC", "SGDClassifier"})
_LINEAR_REGRESSORS = frozenset({"LinearRegression", "Ridge", "SGDRegressor"})
_PROBABILISTIC = frozenset({"LogisticRegression", "SGDClassifier"})
_UNSEEN = "\x00driftline: a category no encoder has seen\x00"

Prepare = Callable[[NDArray[Any]], NDArray[Any]]


class CompiledPipeline:
    """``prepare`` (the ``ColumnTransformer``'s rows) and the estimator's decision, in numpy."""

    def __init__(self, prepare: Prepare, estimator: Any, proba: bool, decision: bool) -> None:
        self._prepare = prepare
        self._estimator = estimator
        name = type(estimator).__name__
        self._classes = getattr(estimator, "classes_", None)
        linear = name in _LINEAR_CLASSIFIERS | _LINEAR_REGRESSORS and hasattr(estimator, "coef_")
        if name == "SGDClassifier" and getattr(estimator, "loss", None) != "log_loss":
            proba = False  # only its log loss has the logistic link computed here
        self._linear = linear
        self._proba = proba
        self._decision = decision
        if linear:
            self._coef = np.asarray(estimator.coef_, dtype=float)
            self._intercept = np.asarray(estimator.intercept_, dtype=float)

    def prepare(self, X: NDArray[Any]) -> NDArray[Any]:
        return self._prepare(X)

    def predict(self, X: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any] | None]:
        """``(predictions, score)``: the classes (or values), and for a two-class classifier the
        positive class's probability where the estimator has one, else its decision value."""
        prepared = self._prepare(X)
        if not self._linear:
            return self._call_estimator(prepared)
        decision = prepared @ self._coef.T + self._intercept
        if self._classes is None:  # a regressor
            return decision.reshape(len(X), -1)[:, 0] if decision.ndim > 1 else decision, None
        if decision.ndim == 1 or decision.shape[1] == 1:
            decision = decision.reshape(-1)
            predictions = self._classes[(decision > 0).astype(int)]
            if self._proba:
                return predictions, 1.0 / (1.0 + np.exp(-decision))
            return predictions, decision if self._decision else None
        return self._classes[decision.argmax(axis=1)], None

    def _call_estimator(self, prepared: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any] | None]:
        estimator = self._estimator
        predictions = estimator.predict(prepared)
        if self._classes is None or len(self._classes) != 2:
            return predictions, None
        if self._proba:
            return predictions, estimator.predict_proba(prepared)[:, 1]
        if self._decision:
            return predictions, estimator.decision_function(prepared)
        return predictions, None

    def agrees(self, pipeline: Any, X: NDArray[Any]) -> bool:
        """Whether this computes what ``pipeline`` computes on the rows of ``X``: the same
        prepared rows, predictions and scores (to 1e-9 relative)."""
        if len(X) == 0:
            return False
        try:
            expected = np.asarray(pipeline[:-1].transform(X), dtype=float)
            prepared = self._prepare(X)
            if prepared.shape != expected.shape or not np.allclose(
                prepared, expected, rtol=1e-9, atol=1e-12, equal_nan=True
            ):
                return False
            predictions, score = self.predict(X)
            if predictions.tolist() != pipeline.predict(X).tolist():
                return False
            if score is None:
                return not (self._classes is not None and len(self._classes) == 2 and self._proba)
            proba = self._proba
            reference = pipeline.predict_proba(X)[:, 1] if proba else pipeline.decision_function(X)
            return bool(np.allclose(score, reference, rtol=1e-9, atol=1e-12))
        except Exception:
            return False


def compile_pipeline(pipeline: Any, *, proba: bool, decision: bool) -> CompiledPipeline | None:
    """The compiled form of a fitted ``Pipeline([("prepare", ColumnTransformer), ("model", est)])``
    of the shape driftline builds, or None for anything else."""
    try:
        steps = pipeline.steps
        if len(steps) != 2 or type(steps[0][1]).__name__ != "ColumnTransformer":
            return None
        prepare = _compile_columns(steps[0][1])
    except Exception:  # a pipeline that cannot be compiled is scored as it is
        return None
    if prepare is None:
        return None
    return CompiledPipeline(prepare, steps[1][1], proba, decision)


def _compile_columns(transformer: Any) -> Prepare | None:
    if getattr(transformer, "sparse_output_", False):
        return None
    parts: list[tuple[list[int], Prepare]] = []
    for name, part, columns in transformer.transformers_:
        if part == "drop" or (name == "remainder" and not len(columns)):
            continue
        if type(part).__name__ != "Pipeline":
            return None
        step_names = [step[0] for step in part.steps]
        if step_names in (["impute"], ["impute", "scale"]):
            compiled = _compile_numbers(part)
        elif step_names == ["impute", "encode"]:
            compiled = _compile_categories(part)
        else:
            return None
        if compiled is None:
            return None
        parts.append((list(columns), compiled))

    def prepare(X: NDArray[Any]) -> NDArray[Any]:
        blocks = [compiled(X[:, columns]) for columns, compiled in parts]
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    return prepare


def _compile_numbers(part: Any) -> Prepare | None:
    impute = part.named_steps["impute"]
    if type(impute).__name__ != "SimpleImputer" or impute.strategy not in ("median", "mean"):
        return None
    if not (isinstance(impute.missing_values, float) and np.isnan(impute.missing_values)):
        return None
    statistics = np.asarray(impute.statistics_, dtype=float)
    if np.isnan(statistics).any():  # keep_empty_features=False would drop such columns
        return None
    indicator = getattr(impute, "indicator_", None)
    flagged = None if indicator is None else np.asarray(indicator.features_, dtype=int)
    if indicator is not None and indicator.features != "missing-only":
        return None
    scaler = part.named_steps.get("scale")
    mean = scale = None
    if scaler is not None:
        if type(scaler).__name__ != "StandardScaler":
            return None
        mean = None if scaler.mean_ is None or not scaler.with_mean else scaler.mean_
        scale = None if scaler.scale_ is None or not scaler.with_std else scaler.scale_

    def numbers(X: NDArray[Any]) -> NDArray[Any]:
        values = np.asarray(X, dtype=float)
        gaps = np.isnan(values)
        out = np.where(gaps, statistics, values)
        if flagged is not None:
            out = np.hstack([out, gaps[:, flagged].astype(float)])
        if mean is not None:
            out = out - mean
        if scale is not None:
            out = out / scale
        return out

    return numbers


def _compile_categories(part: Any) -> Prepare | None:
    impute, encode = part.named_steps["impute"], part.named_steps["encode"]
    if type(impute).__name__ != "SimpleImputer" or impute.strategy != "constant":
        return None
    if impute.missing_values is not None or getattr(impute, "indicator_", None) is not None:
        return None
    if type(encode).__name__ != "OneHotEncoder" or getattr(encode, "drop_idx_", None) is not None:
        return None
    fill = impute.fill_value
    widths = [len(names) for names in _per_feature_names(encode)]
    tables: list[dict[Any, int]] = []
    unseen: list[int] = []
    for column, known in enumerate(encode.categories_):
        values = [*known.tolist(), _UNSEEN]
        probe = np.full((len(values), len(encode.categories_)), known[0], dtype=object)
        probe[:, column] = values
        block = _block(encode.transform(probe), widths, column)
        table: dict[Any, int] = {}
        for value, row in zip(values, block, strict=True):
            hot = np.flatnonzero(row)
            if len(hot) > 1 or not np.isin(row, (0.0, 1.0)).all():
                return None
            table[value] = int(hot[0]) if len(hot) else -1
        unseen.append(table.pop(_UNSEEN))
        tables.append(table)
    offsets = np.cumsum([0, *widths[:-1]]).tolist()
    total = sum(widths)

    def categories(X: NDArray[Any]) -> NDArray[Any]:
        out = np.zeros((len(X), total))
        for column, (table, miss, offset) in enumerate(zip(tables, unseen, offsets, strict=True)):
            get = table.get
            hot = [get(fill if value is None else value, miss) for value in X[:, column].tolist()]
            indices = np.asarray(hot, dtype=int)
            rows = np.flatnonzero(indices >= 0)
            out[rows, offset + indices[rows]] = 1.0
        return out

    return categories


def _per_feature_names(encode: Any) -> list[list[str]]:
    """The output columns of each input feature of a fitted one-hot encoder, in order."""
    names = encode.get_feature_names_out([f"f{i}" for i in range(len(encode.categories_))])
    grouped: list[list[str]] = [[] for _ in encode.categories_]
    for name in names.tolist():
        grouped[int(name[1 : name.index("_")])].append(name)
    return grouped


def _block(encoded: Any, widths: list[int], column: int) -> NDArray[Any]:
    start = sum(widths[:column])
    return np.asarray(encoded, dtype=float)[:, start : start + widths[column]]
