"""Offline training: read a data set, hold out its most recent slice, fit, evaluate, profile, package.

The result is a :class:`Candidate`: an artifact plus everything the registry records about it, and
the signer that signs its record once the registry has given it a version number.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from shared.core.errors import BadMessage, ConfigError
from shared.core.kinds import Task
from shared.core.schema import Schema, Value, infer_schema, is_missing, numeric_schema
from shared.models.algorithms import Algorithm, Scorer, fit, infer_task
from shared.models.artifacts import dump
from shared.models.signing import Signer, sha256_hex
from shared.stats.profile import ReferenceProfile, build_profile

TIME_COLUMNS = ("ts", "timestamp", "event_time")
IGNORED_COLUMNS = ("event_id", *TIME_COLUMNS)


@dataclass(frozen=True)
class Dataset:
    """Rows in time order: feature matrix, labels, and event times where the data had them.

    ``X`` is laid out as :meth:`Schema.matrix` lays rows out (floats, or objects when a feature
    is categorical); without ``schema``, every feature is numeric.
    """

    features: list[str]
    X: NDArray[Any]
    y: list[Any]
    ts: list[int] | None
    schema: Schema | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def feature_schema(self) -> Schema:
        if self.schema is not None:
            return self.schema
        return numeric_schema(self.features, missing=True)


@dataclass(frozen=True)
class Candidate:
    """A fitted and evaluated model, ready to register (and be signed as it is)."""

    model: str
    algorithm: str
    task: Task
    features: list[str]
    params: dict[str, Any]
    format: str
    artifact: bytes
    sha256: str
    signer: Signer = field(repr=False, compare=False)
    """Signs the version's whole record, number included, when the registry stores it."""
    schema: Schema
    metrics: dict[str, float]
    reference: ReferenceProfile
    classes: list[Any] | None
    trained_on: dict[str, Any]
    libraries: dict[str, str]
    scorer: Scorer | None = field(default=None, repr=False, compare=False)
    """The fitted model, to score the hold-out slice again (the trainer's gate); not stored."""


def split_point(rows: int, holdout: float) -> int:
    """How many of ``rows`` (oldest first) are trained on; the rest are held out.

    >>> split_point(100, 0.2), split_point(3, 0.2)
    (80, 2)
    """
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"holdout must be between 0 and 1, got {holdout}")
    return rows - max(1, round(rows * holdout))


def parse_label(text: str) -> Any:
    """A CSV label as the type it reads as: int, then float, then the string itself.

    >>> parse_label("1"), parse_label("0.5"), parse_label("spam"), parse_label("true")
    (1, 0.5, 'spam', True)
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def load_dataset(
    path: Path,
    target: str,
    features: Sequence[str] | None = None,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    schema: Schema | None = None,
) -> Dataset:
    """Read a ``.csv`` (header row) or ``.jsonl`` file; rows sorted by ``ts`` when it has one.

    Each feature's kind is inferred from its values (text columns of a CSV are categorical; an
    empty cell or JSON null is missing) unless named in ``categorical`` or ``numeric``, or given
    whole as ``schema``. Raises :class:`ConfigError` naming the file, line and column of any bad
    value.
    """
    rows, from_text = _read_rows(path)
    if not rows:
        raise ConfigError(f"{path} has no rows")
    columns = list(rows[0])
    if target not in columns:
        raise ConfigError(f"{path} has no column {target!r}; its columns are {', '.join(columns)}")
    if schema is not None:
        names = schema.names
    elif features:
        names = list(features)
    else:
        names = [c for c in columns if c != target and c not in IGNORED_COLUMNS]
    if not names:
        raise ConfigError(f"{path} has no feature columns besides {target!r}")
    absent = [name for name in names if name not in columns]
    if absent:
        raise ConfigError(f"{path} has no column {', '.join(map(repr, absent))}")
    if schema is None:
        raw = {name: [row.get(name) for row in rows] for name in names}
        schema = infer_schema(raw, categorical=categorical, numeric=numeric)
    time_column = next((c for c in TIME_COLUMNS if c in columns), None)
    table: list[list[Value]] = []
    labels: list[Any] = []
    times: list[int] = []
    for index, row in enumerate(rows):
        where = f"{path}:{index + 2 if from_text else index + 1}"
        values = {name: None if is_missing(row.get(name)) else row.get(name) for name in names}
        try:
            table.append(schema.row(values))
        except BadMessage as exc:
            raise ConfigError(f"{where}: {exc}") from None
        raw_label = row.get(target)
        if raw_label is None or raw_label == "":
            raise ConfigError(f"{where}: {target} is empty")
        labels.append(parse_label(raw_label) if from_text else raw_label)
        if time_column:
            times.append(int(_number(row.get(time_column), where, time_column)))
    matrix = schema.matrix(table)
    if time_column:
        order = np.argsort(np.asarray(times), kind="stable")
        matrix = matrix[order]
        labels = [labels[i] for i in order]
        times = [times[i] for i in order]
    return Dataset(names, matrix, labels, times if time_column else None, schema)


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The rows of a ``.csv`` or ``.jsonl`` file, and whether they are text (CSV)."""
    if not path.exists():
        raise ConfigError(f"no data file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="") as handle:
            rows: list[dict[str, Any]] = list(csv.DictReader(handle))
        from_text = True
    elif suffix in (".jsonl", ".ndjson"):
        rows = []
        with path.open() as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError as exc:
                        raise ConfigError(f"{path}:{number}: not JSON: {exc}") from None
                    if not isinstance(row, dict):
                        raise ConfigError(f"{path}:{number}: expected a JSON object per line")
                    rows.append(row)
        from_text = False
    else:
        raise ConfigError(f"{path}: expected a .csv or .jsonl file")
    return rows, from_text


def _number(value: Any, where: str, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {column} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {column} is {value!r}; NaN and Infinity are not allowed")
    return number


def evaluate(
    task: Task, y_true: list[Any], predictions: list[Any], scores: list[float] | None
) -> dict[str, float]:
    """Hold-out metrics: MSE/MAE/RMSE/R² for regression; accuracy/precision/recall/F1 and, with
    scores, ROC AUC (and log-loss when scores are probabilities) for binary classification.
    """
    from sklearn import metrics  # noqa: PLC0415

    if task == "regression":
        truth = np.asarray(y_true, dtype=float)
        guess = np.asarray(predictions, dtype=float)
        mse = float(metrics.mean_squared_error(truth, guess))
        result = {
            "mse": mse,
            "mae": float(metrics.mean_absolute_error(truth, guess)),
            "rmse": math.sqrt(mse),
        }
        if len(truth) > 1:
            result["r2"] = float(metrics.r2_score(truth, guess))
        return result
    classes = sorted(set(y_true) | set(predictions), key=str)
    binary = len(classes) == 2
    average = "binary" if binary else "macro"
    positive = classes[-1] if binary else 1
    result = {
        "accuracy": float(metrics.accuracy_score(y_true, predictions)),
        "precision": float(
            metrics.precision_score(
                y_true, predictions, average=average, pos_label=positive, zero_division=0
            )
        ),
        "recall": float(
            metrics.recall_score(
                y_true, predictions, average=average, pos_label=positive, zero_division=0
            )
        ),
        "f1": float(
            metrics.f1_score(
                y_true, predictions, average=average, pos_label=positive, zero_division=0
            )
        ),
    }
    if scores is not None and binary and len(set(y_true)) == 2:
        truth01 = [1 if label == positive else 0 for label in y_true]
        result["roc_auc"] = float(metrics.roc_auc_score(truth01, scores))
        if all(0.0 <= s <= 1.0 for s in scores):
            result["log_loss"] = float(metrics.log_loss(truth01, scores, labels=[0, 1]))
    return result


def train(
    data: Dataset,
    *,
    model: str,
    algo: Algorithm,
    signer: Signer,
    task: Task | None = None,
    params: dict[str, Any] | None = None,
    holdout: float = 0.2,
    source: str = "",
) -> Candidate:
    """Fit ``algo`` on the older part of ``data``, evaluate on the most recent ``holdout`` share,
    profile the training part, and sign the artifact for ``model``.
    """
    n_train = split_point(len(data), holdout)
    n_test = len(data) - n_train
    if n_train < 2:
        raise ConfigError(f"{len(data)} rows are too few to train and hold out {holdout:.0%}")
    chosen = task or infer_task(algo, data.y)
    if chosen not in algo.tasks:
        raise ConfigError(f"{algo.name} does {' and '.join(algo.tasks)}, not {chosen}")
    options = dict(params or {})
    X_train, X_test = data.X[:n_train], data.X[n_train:]
    y_train, y_test = data.y[:n_train], data.y[n_train:]
    if chosen == "classification" and len(set(y_train)) < 2:
        raise ConfigError("the training slice has one class only; a classifier needs two or more")
    try:
        fitted = fit(algo, chosen, options, X_train, y_train, data.feature_schema)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{algo.name} could not be fit: {exc}") from None
    classes = sorted(set(y_train), key=str) if chosen == "classification" else None
    scorer = Scorer(fitted, algo.family, chosen, data.features, classes)
    # The pipeline imputes, whatever the rows it learnt from had (a champion's schema may not).
    schema = msgspec.structs.replace(data.feature_schema, missing=True)
    predictions, scores = scorer.score(X_test)
    metrics = evaluate(chosen, y_test, predictions, scores)
    trained_on: dict[str, Any] = {"source": source, "rows": n_train, "holdout_rows": n_test}
    if data.ts:
        trained_on.update(
            start_ts=data.ts[0], end_ts=data.ts[n_train - 1], holdout_end_ts=data.ts[-1]
        )
    return package(
        fitted,
        model=model,
        algo=algo,
        task=chosen,
        schema=schema,
        params=options,
        X_profile=X_train,
        scorer=scorer,
        metrics=metrics,
        classes=classes,
        trained_on=trained_on,
        signer=signer,
    )


def package(
    fitted: Any,
    *,
    model: str,
    algo: Algorithm,
    task: Task,
    schema: Schema,
    params: dict[str, Any],
    X_profile: NDArray[Any],
    scorer: Scorer,
    metrics: dict[str, float],
    classes: list[Any] | None,
    trained_on: dict[str, Any],
    signer: Signer,
) -> Candidate:
    """A fitted model as a signed candidate: artifact, sha256, signature, and the reference
    profile of ``X_profile`` (its training rows) that drift will be measured against."""
    # Prediction drift watches the scores of a classifier and the predictions of a regressor.
    train_predictions, train_scores = scorer.score(X_profile)
    watched = train_predictions if task == "regression" else train_scores
    reference = build_profile(
        X_profile, schema, None if watched is None else np.asarray(watched, dtype=float)
    )
    artifact = dump(fitted, algo.format)
    digest = sha256_hex(artifact)
    return Candidate(
        model=model,
        algorithm=algo.name,
        task=task,
        features=schema.names,
        schema=schema,
        params=params,
        format=algo.format,
        artifact=artifact,
        sha256=digest,
        signer=signer,
        metrics=metrics,
        reference=reference,
        classes=classes,
        trained_on=trained_on,
        libraries=library_versions(),
        scorer=scorer,
    )


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model's artifact depends on."""
    found = {}
    for name in ("scikit-learn", "river", "numpy", "scipy", "skops"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
