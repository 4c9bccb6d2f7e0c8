"""Signatures and artifact loading: nothing unverified ever reaches a deserializer."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

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
    signed_header,
)

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
    signer: Signer, artifact: bytes, fmt: str = "skops", model: str = "m"
) -> dict[str, object]:
    digest = sha256_hex(artifact)
    return {
        "model": model,
        "fmt": fmt,
        "task": "classification",
        "features": FEATURES,
        "sha256": digest,
        "signature": signer.sign(signed_header(model, fmt, "classification", FEATURES, digest)),
    }


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
    model = load_verified(artifact, verifier=verifier, **_signed(signer, artifact))  # type: ignore[arg-type]
    assert model.predict(np.array([[3.0, 0.0], [-3.0, 0.0]])).tolist() == [1, 0]


def test_one_flipped_byte_is_refused(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(signer, artifact)
    tampered = bytearray(artifact)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(ArtifactRejected, match="sha256 mismatch"):
        load_verified(bytes(tampered), verifier=verifier, **meta)  # type: ignore[arg-type]


def test_bytes_and_digest_replaced_together_fail_the_signature(
    keys: tuple[Signer, Verifier],
) -> None:
    signer, verifier = keys
    meta = _signed(signer, dump(_fitted(), "skops"))
    other = dump(_fitted(), "skops") + b"\0"
    meta["sha256"] = sha256_hex(other)
    with pytest.raises(ArtifactRejected, match="signature does not verify"):
        load_verified(other, verifier=verifier, **meta)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["model", "fmt", "task", "features"])
def test_altered_metadata_fails_the_signature(keys: tuple[Signer, Verifier], field: str) -> None:
    signer, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(signer, artifact)
    meta[field] = {"model": "other", "fmt": "pickle", "task": "regression", "features": ["b", "a"]}[
        field
    ]
    with pytest.raises(ArtifactRejected, match="signature does not verify"):
        load_verified(artifact, verifier=verifier, **meta)  # type: ignore[arg-type]


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
    meta = {"model": "m", "fmt": "pickle", "task": "classification", "features": FEATURES}
    with pytest.raises(ArtifactRejected, match="unsigned"):
        load_verified(
            payload, verifier=verifier, sha256=sha256_hex(payload), signature=None, **meta
        )  # type: ignore[arg-type]
    with pytest.raises(ArtifactRejected, match="does not verify"):
        load_verified(
            payload,
            verifier=verifier,
            sha256=sha256_hex(payload),
            signature="ed25519:" + "A" * 88,
            **meta,
        )  # type: ignore[arg-type]
    assert not marker.exists()


def test_signature_of_another_scheme_is_refused(keys: tuple[Signer, Verifier]) -> None:
    _, verifier = keys
    artifact = dump(_fitted(), "skops")
    meta = _signed(Signer.hmac(b"sixteen-byte-key"), artifact)
    with pytest.raises(
        ArtifactRejected, match="signed with hmac-sha256, but this process verifies ed25519"
    ):
        load_verified(artifact, verifier=verifier, **meta)  # type: ignore[arg-type]


def test_hmac_round_trip_and_short_secret() -> None:
    secret = b"a-shared-secret-of-some-length"
    artifact = dump(_fitted(), "skops")
    meta = _signed(Signer.hmac(secret), artifact)
    assert load_verified(artifact, verifier=Verifier.hmac(secret), **meta) is not None  # type: ignore[arg-type]
    with pytest.raises(ArtifactRejected):
        load_verified(artifact, verifier=Verifier.hmac(b"another-secret-xyz"), **meta)  # type: ignore[arg-type]
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
    loaded = load_verified(artifact, verifier=verifier, **_signed(signer, artifact, fmt="pickle"))  # type: ignore[arg-type]
    assert loaded.predict_one({"a": 3.0, "b": 0.0}) is True
