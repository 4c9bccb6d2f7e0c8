"""Bring your own model: a pipeline trained elsewhere is taken when it is made of trusted types and
scores the sample, refused with the reason when not, and then serves like a version driftline made."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
import skops.io
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from services.cli.external import external_candidate
from shared.core.errors import ArtifactRejected, BadMessage
from shared.core.messages import FeatureEvent
from shared.models.serving import load_serving_model
from shared.models.signing import Signer, Verifier
from shared.models.training import Dataset, load_dataset
from shared.models.version import ModelVersion
from tests.harness.mixed import solar_flare_csv, users_pipeline

KEY = b"sixteen-byte-key"
SIGNER = Signer.hmac(KEY)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = solar_flare_csv(tmp_path_factory.mktemp("flares") / "flares.csv")
    return load_dataset(path, "flare")


def _serve(candidate: Any) -> Any:
    record = ModelVersion(
        model="flares", version=1, task=candidate.task, algorithm=candidate.algorithm,
        params=candidate.params, features=candidate.features, format="skops",
        sha256=candidate.sha256, signature=None, metrics=candidate.metrics,
        reference=candidate.reference, classes=candidate.classes, trained_on={}, libraries={},
        created_at=1, parent=None, status="registered", schema=candidate.schema,
    )  # fmt: skip
    record = msgspec.structs.replace(record, signature=SIGNER.sign(record.header()))
    return load_serving_model(record, candidate.artifact, Verifier.hmac(KEY))


def test_a_users_pipeline_is_registered_and_serves_new_categories_and_gaps(sample: Dataset) -> None:
    artifact = users_pipeline(sample, LogisticRegression(max_iter=500))
    candidate = external_candidate(artifact, sample, model="flares", signer=SIGNER)
    assert candidate.algorithm == "external" and candidate.task == "classification"
    assert candidate.params == {"estimator": "Pipeline(ColumnTransformer, LogisticRegression)"}
    assert candidate.classes == [0, 1] and candidate.schema.missing
    assert "accuracy" in candidate.metrics and set(candidate.reference.categories) == {
        "zurich-class",
        "largest-spot-size",
        "spot-distribution",
    }
    serving = _serve(candidate)
    event = FeatureEvent(event_id="e", features={"zurich-class": "new!", "area": None})
    X = serving.schema.matrix([serving.schema.row(event.features)])
    assert serving.score(X)[0][0] in (0, 1)


def test_a_type_outside_the_trusted_list_is_refused_by_name(sample: Dataset) -> None:
    artifact = users_pipeline(sample, RandomForestClassifier(n_estimators=3, random_state=0))
    with pytest.raises(ArtifactRejected, match=r"outside driftline's trusted list: .*RandomForest"):
        external_candidate(artifact, sample, model="flares", signer=SIGNER)


def test_a_model_that_cannot_take_gaps_gets_a_schema_that_refuses_them() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    data = Dataset(["a", "b"], X, (X[:, 0] > 0).astype(int).tolist(), None)
    artifact = bytes(skops.io.dumps(LogisticRegression().fit(X, data.y)))
    candidate = external_candidate(artifact, data, model="plain", signer=SIGNER)
    assert not candidate.schema.missing and candidate.params == {"estimator": "LogisticRegression"}
    serving = _serve(candidate)
    with pytest.raises(BadMessage, match=r"features\.b: missing"):
        serving.schema.row({"a": 1})


def test_a_model_that_cannot_score_the_sample_is_refused_with_the_fix(sample: Dataset) -> None:
    """Fitted on one column elsewhere, shown the sample's twelve: refused, saying what it takes."""
    area = np.array(sample.X[:, [sample.features.index("area")]], dtype=float)
    fitted = make_pipeline(SimpleImputer(), LogisticRegression()).fit(area, sample.y)
    with pytest.raises(ArtifactRejected, match=r"(?s)cannot score the sample's rows .*by position"):
        external_candidate(bytes(skops.io.dumps(fitted)), sample, model="f", signer=SIGNER)
