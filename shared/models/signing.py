"""Signing and verifying model artifacts: Ed25519 key pairs, or HMAC-SHA256 with one shared secret.

The trainer (and `driftline train`) signs with the private key; predictors hold only the public key.
Keys never live in Redis. A signature reads ``"ed25519:<base64>"`` or ``"hmac-sha256:<base64>"`` and
covers a version's whole record (``ModelVersion.header`` in ``shared.models.version``: every
field, the artifact's sha256 among them), so neither the bytes nor anything that decides what
they predict can change unnoticed.

>>> secret = b"sixteen-byte-key"
>>> signer, verifier = Signer.hmac(secret), Verifier.hmac(secret)
>>> header = b'{"model":"churn","sha256":"00"}'
>>> verifier.verify(header, signer.sign(header))
>>> verifier.verify(header + b"x", signer.sign(header))
Traceback (most recent call last):
...
shared.core.errors.ArtifactRejected: signature does not verify: the artifact or its metadata was altered
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.core.errors import ArtifactRejected, ConfigError

ED25519 = "ed25519"
HMAC_SHA256 = "hmac-sha256"
MIN_SECRET_BYTES = 16


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Signer:
    """Signs artifact headers with an Ed25519 private key or an HMAC secret."""

    scheme: str
    _private: Ed25519PrivateKey | None = None
    _secret: bytes | None = None

    @classmethod
    def ed25519(cls, key: Ed25519PrivateKey) -> Signer:
        return cls(ED25519, _private=key)

    @classmethod
    def hmac(cls, secret: bytes) -> Signer:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError("DRIFTLINE_HMAC_SECRET must be at least 16 bytes long")
        return cls(HMAC_SHA256, _secret=secret)

    def sign(self, header: bytes) -> str:
        if self._private is not None:
            raw = self._private.sign(header)
        else:
            assert self._secret is not None  # noqa: S101 - one of the two is set by construction
            raw = hmac.digest(self._secret, header, hashlib.sha256)
        return f"{self.scheme}:{base64.b64encode(raw).decode('ascii')}"


@dataclass(frozen=True)
class Verifier:
    """Checks signatures with an Ed25519 public key or an HMAC secret; refuses anything else."""

    scheme: str
    _public: Ed25519PublicKey | None = None
    _secret: bytes | None = None

    @classmethod
    def ed25519(cls, key: Ed25519PublicKey) -> Verifier:
        return cls(ED25519, _public=key)

    @classmethod
    def hmac(cls, secret: bytes) -> Verifier:
        return cls(HMAC_SHA256, _secret=secret)

    def verify(self, header: bytes, signature: str | None) -> None:
        """Return if ``signature`` is ours over ``header``; raise :class:`ArtifactRejected` if not."""
        if not signature:
            raise ArtifactRejected("artifact is unsigned; driftline loads only signed artifacts")
        scheme, _, encoded = signature.partition(":")
        if scheme != self.scheme:
            raise ArtifactRejected(
                f"artifact is signed with {scheme or 'an unknown scheme'}, but this process "
                f"verifies {self.scheme} signatures"
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ArtifactRejected("signature is not valid base64") from None
        if self._public is not None:
            try:
                self._public.verify(raw, header)
            except InvalidSignature:
                raise ArtifactRejected(_ALTERED) from None
        else:
            assert self._secret is not None  # noqa: S101
            if not hmac.compare_digest(raw, hmac.digest(self._secret, header, hashlib.sha256)):
                raise ArtifactRejected(_ALTERED)


_ALTERED = "signature does not verify: the artifact or its metadata was altered"


def create_key_pair(private_path: Path, public_path: Path, *, force: bool = False) -> None:
    """Write a new Ed25519 key pair: the private key readable by its owner only."""
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise ConfigError(f"{path} exists; pass --force to replace the key pair")
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_signer(private_path: Path, hmac_secret: str | None) -> Signer:
    """The signer configured by settings: the HMAC secret when set, else the private key file."""
    if hmac_secret:
        return Signer.hmac(hmac_secret.encode())
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(
            f"no signing key at {private_path}: run `driftline keys init` to create a development "
            "key pair, or set DRIFTLINE_SIGNING_KEY (or DRIFTLINE_HMAC_SECRET)."
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{private_path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{private_path} is not an Ed25519 private key")
    return Signer.ed25519(key)


def load_verifier(public_path: Path, hmac_secret: str | None) -> Verifier:
    """The verifier configured by settings: the HMAC secret when set, else the public key file."""
    if hmac_secret:
        return Verifier.hmac(hmac_secret.encode())
    try:
        key = serialization.load_pem_public_key(public_path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"no verification key at {public_path}: copy the trainer's public key there, or set "
            "DRIFTLINE_VERIFY_KEY (or DRIFTLINE_HMAC_SECRET)."
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{public_path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{public_path} is not an Ed25519 public key")
    return Verifier.ed25519(key)
