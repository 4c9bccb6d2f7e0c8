"""Model artifacts: serialize, and load only what verifies.

scikit-learn models are stored with skops; River models with pickle, which runs code on load. So
:func:`load_verified` checks the sha256 and the signature first, and no deserializer ever sees bytes
that did not verify. A skops artifact is then read only if every type it names is in
:data:`TRUSTED_TYPES`, the types driftline's own pipelines are made of, named one by one (not skops'
own default list, which trusts every scikit-learn class): :func:`untrusted_types` says which
others an artifact holds, so a model brought from elsewhere is refused with them named.
"""

from __future__ import annotations

import pickle
from typing import Any

from shared.core.errors import ArtifactRejected
from shared.models.signing import Verifier, sha256_hex
from shared.models.version import ModelVersion, verify_record

FORMATS = ("skops", "pickle")

TRUSTED_TYPES = frozenset(
    {
        # Plain data.
        *(f"builtins.{name}" for name in ("bool", "dict", "float", "int", "list", "slice")),
        *(f"builtins.{name}" for name in ("str", "tuple")),
        "numpy.dtype",
        "numpy.ndarray",
        *(f"numpy.{name}" for name in ("bool_", "float32", "float64", "int32", "int64")),
        "sklearn.utils._bunch.Bunch",
        # The pipeline: columns, imputation, encoding, scaling.
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.impute._base.MissingIndicator",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._data.StandardScaler",
        # The estimators driftline trains, and the loss objects they keep.
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.linear_model._stochastic_gradient.SGDRegressor",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.svm._classes.SVC",
        *(
            f"sklearn._loss._loss.{name}"
            for name in (
                "CyHalfBinomialLoss",
                "CyHalfMultinomialLoss",
                "CyHalfSquaredError",
                "CyHingeLoss",
                "CyModifiedHuber",
                "CyHuberLoss",
                "CyEpsilonInsensitive",
                "CySquaredEpsilonInsensitive",
            )
        ),
        *(
            f"sklearn.linear_model._sgd_fast.{name}"
            for name in ("Hinge", "SquaredHinge", "ModifiedHuber", "Log", "SquaredLoss", "Huber")
        ),
        "sklearn.linear_model._sgd_fast.EpsilonInsensitive",
        "sklearn.linear_model._sgd_fast.SquaredEpsilonInsensitive",
    }
)
"""Every type a skops artifact may name to be loaded: what driftline's pipelines hold."""


def skops_types(artifact: bytes) -> set[str]:
    """Every type (``module.Class``) a skops artifact names, read from its schema without
    loading anything; ArtifactRejected when the bytes are not a skops artifact."""
    import io  # noqa: PLC0415
    import json  # noqa: PLC0415
    import zipfile  # noqa: PLC0415

    try:
        with zipfile.ZipFile(io.BytesIO(artifact)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as exc:
        raise ArtifactRejected(f"not a skops artifact: {exc}") from None
    found: set[str] = set()
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add(f"{module}.{name}")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def untrusted_types(artifact: bytes) -> list[str]:
    """The types of a skops artifact outside :data:`TRUSTED_TYPES`, sorted."""
    return sorted(skops_types(artifact) - TRUSTED_TYPES)


def dump(model: Any, fmt: str) -> bytes:
    """The artifact bytes of ``model`` in ``fmt``."""
    if fmt == "skops":
        import skops.io  # noqa: PLC0415 - skops imports all of scikit-learn: seconds, only when needed

        return bytes(skops.io.dumps(model))
    if fmt == "pickle":
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    raise ValueError(f"unknown artifact format {fmt!r}; expected one of {', '.join(FORMATS)}")


def load_verified(artifact: bytes, record: ModelVersion, verifier: Verifier) -> Any:
    """Deserialize ``artifact`` after checking its sha256 against ``record`` and the signature
    over the whole record (which holds the sha256, so covers the bytes too).

    Raises :class:`ArtifactRejected` before any deserializer runs when a check fails.
    """
    sha256, fmt = record.sha256, record.format
    actual = sha256_hex(artifact)
    if actual != sha256:
        raise ArtifactRejected(
            f"sha256 mismatch: registry says {sha256[:12]}…, bytes are {actual[:12]}…"
        )
    verify_record(record, verifier, model=record.model, version=record.version)
    if fmt == "skops":
        import skops.io  # noqa: PLC0415

        untrusted = untrusted_types(artifact)
        if untrusted:
            raise ArtifactRejected(
                f"skops artifact holds types outside driftline's trusted list: "
                f"{', '.join(untrusted)}"
            )
        return skops.io.loads(artifact, trusted=sorted(skops_types(artifact)))
    if fmt == "pickle":
        # Safe only because the signature above verified: these bytes came from the trainer's key.
        return pickle.loads(artifact)  # noqa: S301
    raise ArtifactRejected(f"unknown artifact format {fmt!r}")
