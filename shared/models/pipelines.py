"""The preprocessing every trained model carries inside its artifact, built from its schema.

scikit-learn: a ``Pipeline`` of a ``ColumnTransformer`` and the estimator. Numbers and booleans are
imputed with the training median, with a 0/1 missing-indicator column for each feature that had
gaps in training, and scaled where the algorithm needs it; categories are imputed with the constant
:data:`MISSING` and one-hot encoded, categories rarer than :data:`MIN_FREQUENCY` of the training
rows (and any category first seen in production) falling into one "infrequent" column, so a new
category is never a crash. River: ``StatImputer`` (running mean; :data:`MISSING` for categories),
then ``StandardScaler`` over the numbers and ``OneHotEncoder`` over the categories, then the model
(a Hoeffding tree takes categories as they are).

The artifact is then self-contained: the predictor hands it rows as :meth:`Schema.matrix` lays them
out (sklearn) or dicts (River), and the version's preprocessing travels with its signature.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from shared.core.schema import Schema

MISSING = "(missing)"
"""The category a missing categorical value is imputed as."""
MIN_FREQUENCY = 0.01
"""A category in fewer than this share of the training rows is grouped as infrequent."""
MAX_CATEGORIES = 50
"""At most this many one-hot columns per categorical feature (the rest are infrequent)."""


class _Absent:
    """A meta-path finder that says at once that a module is not installed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        """Stop an ``import`` of the module at once; to anyone else who asks (such as River's
        ``importlib.util.find_spec("pandas")``, whose answer must be None), say nothing here
        and let the other finders answer."""
        if name == self.name and _importing():
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _importing() -> bool:
    """Whether the finder is asked by an import statement (CPython's ``_find_and_load``), not
    by ``importlib.util.find_spec``; on an interpreter whose import machinery is laid out
    otherwise, False: the import is then merely slow."""
    frame = sys._getframe(2)  # 0: here, 1: find_spec, 2: importlib's _find_spec
    caller = frame.f_back
    return caller is not None and caller.f_code.co_name == "_find_and_load_unlocked"


def remember_pandas_is_absent() -> None:
    """Make ``import pandas`` fail at once when pandas is not installed.

    scikit-learn asks for pandas on every transform (``is_pandas_na``, ``_get_dense_mask``: an
    ``import pandas`` inside ``suppress(ImportError)``), and Python does not remember a failed
    import: each one searched every ``sys.path`` entry again, 15% of the predictor's CPU on mixed
    events. A finder first in ``sys.meta_path`` answers "not installed" at once instead (only when
    pandas cannot be found, and ``sys.modules`` is left alone: scikit-learn also looks there).
    """
    if any(isinstance(finder, _Absent) for finder in sys.meta_path):
        return
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.meta_path.insert(0, _Absent("pandas"))


def sklearn_pipeline(schema: Schema, estimator: Any, *, scale: bool) -> Any:
    """``estimator`` behind the ``ColumnTransformer`` that prepares rows of ``schema``."""
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415 - heavy imports stay lazy
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: PLC0415

    numbers = [i for i, spec in enumerate(schema.features) if spec.kind != "categorical"]
    categories = [i for i, spec in enumerate(schema.features) if spec.kind == "categorical"]
    steps: list[tuple[str, Any, list[int]]] = []
    if numbers:
        impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        number_steps: list[tuple[str, Any]] = [("impute", impute)]
        if scale:
            number_steps.append(("scale", StandardScaler()))
        steps.append(("numbers", Pipeline(number_steps), numbers))
    if categories:
        encode = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=MIN_FREQUENCY,
            max_categories=MAX_CATEGORIES,
            sparse_output=False,
            dtype=float,
        )
        fill = SimpleImputer(strategy="constant", fill_value=MISSING, missing_values=None)
        steps.append(("categories", Pipeline([("impute", fill), ("encode", encode)]), categories))
    prepare = ColumnTransformer(steps, sparse_threshold=0.0)
    return Pipeline([("prepare", prepare), ("model", estimator)])


def river_pipeline(schema: Schema, estimator: Any, *, encode: bool) -> Any:
    """``estimator`` behind River's imputer and, with ``encode``, scaler and one-hot encoder."""
    from river import compose, preprocessing, stats  # noqa: PLC0415

    numbers = [spec.name for spec in schema.features if spec.kind != "categorical"]
    categories = [spec.name for spec in schema.features if spec.kind == "categorical"]
    imputers: list[tuple[str, Any]] = [(name, stats.Mean()) for name in numbers]
    imputers += [(name, MISSING) for name in categories]
    pipeline = compose.Pipeline(preprocessing.StatImputer(*imputers))  # type: ignore[no-untyped-call]
    if encode:
        parts = []
        if numbers:
            parts.append(compose.Select(*numbers) | preprocessing.StandardScaler())
        if categories:
            parts.append(compose.Select(*categories) | preprocessing.OneHotEncoder())
        pipeline |= parts[0] if len(parts) == 1 else compose.TransformerUnion(*parts)
    return pipeline | estimator
