"""Signatures and artifact loading: nothing unverified ever reaches a deserializer."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from shared.core.errors import ArtifactRejected, ConfigError
from shared.models.algorithms import algorithm, fit
from shared.models.artifacts import dump, load_verified
from shared.models.signing import (
    Signer,
    Verifier,
    create_key_pair,
    load_signer,
    load_verifier,
    sha256_hex,
)
from shared.models.version import ModelVersion
from shared.stats.profile import build_profile

FEATURES = ["a", "b"]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Signer, Verifier]:
    create_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    return load_signer(tmp_path / "k.key", None), load_verifier(tmp_path / "k.pub", None)


def _fitted() -> object:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    return fit(
        algorithm("logistic"), "classification", {}, X, (X[:, 0] > 0).astype(int).tolist(), FEATURES
    )


def _signed(
    signer: Signer, artifact: bytes, fmt: str = "skops", model: str = "m", **changes: Any
) -> ModelVersion:
    """A version record of ``artifact`` as the registry stores it, signed by ``signer``."""
    X = np.random.default_rng(0).normal(size=(50, 2))
    record = ModelVersion(
        model=model,
        version=4,
        task="classification",
        algorithm="logistic",
        params={"C": 1.0},
        features=FEATURES,
        format=fmt,
        sha256=sha256_hex(artifact),
        signature=None,
        metrics={"accuracy": 0.9},
        reference=build_profile(X, FEATURES, None, sample_size=20),
        classes=[0, 1],
        trained_on={"rows": 50},
        libraries={"numpy": "2"},
        created_at=1_700_000_000_000,
        parent=3,
        status="registered",
        **changes,
    )
    return msgspec.structs.replace(record, signature=signer.sign(record.header()))


def test_private_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    create_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="--force"):
        create_key_pair(tmp_path / "k.key", tmp_path / "k.pub")


def test_missing_keys_say_how_to_create_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="driftline keys init"):
        load_signer(tmp_path / "none.key", None)
    with pytest.raises(ConfigError, match="DRIFTLINE_VERIFY_KEY"):
        load_verifier(tmp_path / "none.pub", None)


def test_signed_artifact_loads_and_predicts(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    artifact = dump(_fitted(), "skops")
    model = load_verified(artifact, _signed(signer, artifact), verifier)
    assert model.predict(np.array([[3.0, 0.0], [-3.0, 0.0]])).tolist() == [1, 0]


def test_one_flipped_byte_is_refused(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(signer, artifact)
    tampered = bytearray(artifact)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(ArtifactRejected, match="sha256 mismatch"):
        load_verified(bytes(tampered), meta, verifier)


def test_bytes_and_digest_replaced_together_fail_the_signature(
    keys: tuple[Signer, Verifier],
) -> None:
    signer, verifier = keys
    meta = _signed(signer, dump(_fitted(), "skops"))
    other = dump(_fitted(), "skops") + b"\0"
    meta = msgspec.structs.replace(meta, sha256=sha256_hex(other))
    with pytest.raises(ArtifactRejected, match="signature does not verify"):
        load_verified(other, meta, verifier)


ALTERED: dict[str, Any] = {
    "model": "other",
    "version": 5,
    "task": "regression",
    "algorithm": "svm",
    "params": {"C": 100.0},
    "features": ["b", "a"],
    "format": "pickle",
    "metrics": {"accuracy": 0.99},
    "classes": [0, -1],
    "trained_on": {"rows": 5},
    "libraries": {"numpy": "1"},
    "created_at": 1_800_000_000_000,
    "parent": 1,
}


@pytest.mark.parametrize("field", [*ALTERED, "reference"])
def test_altering_any_field_that_decides_a_prediction_fails_the_signature(
    keys: tuple[Signer, Verifier], field: str
) -> None:
    """Every field but the status is signed: the classes (which inverted every score when
    they were not), the reference the monitor measures drift against, the place (name and
    number), the parameters and the lineage."""
    signer, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(signer, artifact)
    if field == "reference":
        assert meta.reference is not None
        features = dict(meta.reference.features)
        features["a"] = msgspec.structs.replace(features["a"], mean=features["a"].mean + 1)
        changed = msgspec.structs.replace(meta.reference, features=features)
    else:
        changed = ALTERED[field]
    altered = msgspec.structs.replace(meta, **{field: changed})
    with pytest.raises(ArtifactRejected, match=r"signature does not verify|a replay"):
        load_verified(artifact, altered, verifier)
    load_verified(artifact, msgspec.structs.replace(meta, status="active"), verifier)


def test_a_record_signed_by_earlier_driftline_says_so(keys: tuple[Signer, Verifier]) -> None:
    import json  # noqa: PLC0415

    signer, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(signer, artifact)
    old = {"model": "m", "format": "skops", "task": "classification", "features": FEATURES}
    header = json.dumps({**old, "sha256": meta.sha256}, sort_keys=True, separators=(",", ":"))
    older = msgspec.structs.replace(meta, signature=signer.sign(header.encode()))
    with pytest.raises(ArtifactRejected, match="signed by an earlier driftline"):
        load_verified(artifact, older, verifier)


class _Marker:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.path), "pwned"))  # type: ignore[return-value]


def test_unsigned_pickle_never_runs(keys: tuple[Signer, Verifier], tmp_path: Path) -> None:
    _, verifier = keys
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Marker(str(marker)))
    meta = msgspec.structs.replace(
        _signed(Signer.hmac(b"sixteen-byte-key"), payload, fmt="pickle"), signature=None
    )
    with pytest.raises(ArtifactRejected, match="unsigned"):
        load_verified(payload, meta, verifier)
    forged = msgspec.structs.replace(meta, signature="ed25519:" + "A" * 88)
    with pytest.raises(ArtifactRejected, match="does not verify"):
        load_verified(payload, forged, verifier)
    assert not marker.exists()


def test_signature_of_another_scheme_is_refused(keys: tuple[Signer, Verifier]) -> None:
    _, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(Signer.hmac(b"sixteen-byte-key"), artifact)
    with pytest.raises(
        ArtifactRejected, match="signed with hmac-sha256, but this process verifies ed25519"
    ):
        load_verified(artifact, meta, verifier)


def test_hmac_round_trip_and_short_secret() -> None:
    secret = b"a-shared-secret-of-some-length"
    artifact = dump(_fitted(), "skops")
    meta = _signed(Signer.hmac(secret), artifact)
    assert load_verified(artifact, meta, Verifier.hmac(secret)) is not None
    with pytest.raises(ArtifactRejected):
        load_verified(artifact, meta, Verifier.hmac(b"another-secret-xyz"))
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        Signer.hmac(b"short")


def test_signed_river_pickle_loads(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    river_model = fit(
        algorithm("river-logistic"), "classification", {}, X, (X[:, 0] > 0).tolist(), FEATURES
    )
    artifact = dump(river_model, "pickle")
    loaded = load_verified(artifact, _signed(signer, artifact, fmt="pickle"), verifier)
    assert loaded.predict_one({"a": 3.0, "b": 0.0}) is True
