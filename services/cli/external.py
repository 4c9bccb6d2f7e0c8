"""Bring your own model: a scikit-learn estimator or ``Pipeline`` trained elsewhere, saved with skops,
made into a candidate version like one driftline trained.

The artifact is refused, before anything is loaded, when it names a type outside
:data:`~shared.models.artifacts.TRUSTED_TYPES`. It must take what driftline's predictor hands
every scikit-learn version: a 2-D array whose columns are the schema's features in order, numbers as
floats (NaN where missing), booleans as 0/1, categories as strings (None where missing) in an
object array. A ``ColumnTransformer`` must so select its columns by position (selecting by name
needs a pandas DataFrame, which driftline does not build); a model fitted on a DataFrame gives its
column order through ``feature_names_in_``.

The sample file gives the schema (inferred, or with ``categorical``/``numeric`` overrides), the
reference profile drift is measured against, and the metrics recorded with the version (the
model scored on the sample). Whether the model scores missing values is tried, not assumed: the
version's schema says so.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from shared.core.errors import ArtifactRejected, ConfigError
from shared.core.kinds import Task
from shared.core.schema import Schema
from shared.models.algorithms import Scorer
from shared.models.artifacts import skops_types, untrusted_types
from shared.models.signing import Signer, sha256_hex
from shared.models.training import Candidate, Dataset, evaluate, library_versions
from shared.stats.profile import build_profile

EXTERNAL = "external"
"""The algorithm name a version brought from elsewhere is recorded under."""


def load_external(artifact: bytes) -> Any:
    """The estimator in a skops ``artifact``; :class:`ArtifactRejected` naming any type outside
    the trusted list (nothing is loaded then)."""
    untrusted = untrusted_types(artifact)
    if untrusted:
        raise ArtifactRejected(
            f"the model uses types outside driftline's trusted list: {', '.join(untrusted)}; "
            "build it from the trusted ones (README, Security) or let driftline train it"
        )
    import skops.io  # noqa: PLC0415 - skops imports all of scikit-learn: seconds

    try:
        return skops.io.loads(artifact, trusted=sorted(skops_types(artifact)))
    except Exception as exc:  # whatever skops raises on bytes it cannot read
        raise ArtifactRejected(f"the skops file cannot be loaded: {exc}") from None


def external_candidate(
    artifact: bytes,
    data: Dataset,
    *,
    model: str,
    signer: Signer,
    task: Task | None = None,
    source: str = "",
) -> Candidate:
    """A signed candidate of the estimator in ``artifact``, profiled and evaluated on ``data``
    (its schema is the version's). Raises :class:`ArtifactRejected` or :class:`ConfigError`
    with the reason and the fix."""
    fitted = load_external(artifact)
    if not hasattr(fitted, "predict"):
        raise ArtifactRejected(f"the file holds a {type(fitted).__name__}, which cannot predict")
    schema = data.feature_schema
    names = getattr(fitted, "feature_names_in_", None)
    if names is not None and [str(n) for n in names] != schema.names:
        raise ConfigError(
            f"the model was fitted on the columns {', '.join(map(str, names))}, but the sample's "
            f"features are {', '.join(schema.names)}: pass --features in the model's order"
        )
    chosen: Task = task or ("classification" if hasattr(fitted, "classes_") else "regression")
    classes = (
        sorted((c.item() if hasattr(c, "item") else c for c in fitted.classes_), key=str)
        if chosen == "classification"
        else None
    )
    scorer = Scorer(fitted, "sklearn", chosen, schema.names, classes)
    try:
        predictions, scores = scorer.score(data.X)
    except Exception as exc:
        raise ArtifactRejected(
            f"the model cannot score the sample's rows ({type(exc).__name__}: {exc}); it must "
            "take the features in the schema's order as an array, selecting columns by position"
        ) from None
    schema = msgspec.structs.replace(schema, missing=_scores_gaps(scorer, schema))
    watched = predictions if chosen == "regression" else scores
    reference = build_profile(
        data.X, schema, None if watched is None else np.asarray(watched, dtype=float)
    )
    return Candidate(
        model=model,
        algorithm=EXTERNAL,
        task=chosen,
        features=schema.names,
        params={"estimator": _describe(fitted)},
        format="skops",
        artifact=artifact,
        sha256=sha256_hex(artifact),
        signer=signer,
        schema=schema,
        metrics=evaluate(chosen, data.y, predictions, scores),
        reference=reference,
        classes=classes,
        trained_on={"source": source, "rows": len(data), "mode": "registered from a file"},
        libraries=library_versions(),
        scorer=scorer,
    )


def _scores_gaps(scorer: Scorer, schema: Schema) -> bool:
    """Whether the model scores a row whose every feature is missing, laid out as the predictor
    lays rows out."""
    try:
        predictions, _ = scorer.score(schema.matrix([[None] * len(schema.features)]))
    except Exception:  # the model cannot: its schema says so, and gaps are refused
        return False
    return len(predictions) == 1


def _describe(fitted: Any) -> str:
    """The estimator's steps by class name, e.g. ``Pipeline(ColumnTransformer, LogisticRegression)``."""
    steps = getattr(fitted, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    return type(fitted).__name__
