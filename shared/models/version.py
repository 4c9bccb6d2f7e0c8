"""The record of one model version: everything known about it except its artifact bytes.

The registry stores it (``shared.registry.store``); serving, training and the services read it.
Its signature covers :meth:`ModelVersion.header`: every field but the signature itself and the
status (which promotion and rollback move), including the model name and version number, so a
record cannot be edited, nor copied under another number or name, without failing the check
(:func:`verify_record`).

>>> from shared.models.signing import Signer, Verifier
>>> key = b"sixteen-byte-key"
>>> record = ModelVersion(model="churn", version=3, task="classification", algorithm="logistic",
...     params={}, features=["a"], format="skops", sha256="00" * 32, signature=None, metrics={},
...     reference=None, classes=[0, 1], trained_on={}, libraries={}, created_at=1, parent=2,
...     status="registered")
>>> signed = msgspec.structs.replace(record, signature=Signer.hmac(key).sign(record.header()))
>>> verify_record(signed, Verifier.hmac(key), model="churn", version=3)
>>> verify_record(msgspec.structs.replace(signed, classes=[0, -1]), Verifier.hmac(key),
...     model="churn", version=3)
Traceback (most recent call last):
...
shared.core.errors.ArtifactRejected: signature does not verify: the artifact or its metadata was altered
>>> verify_record(signed, Verifier.hmac(key), model="churn", version=7)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
shared.core.errors.ArtifactRejected: the record stored as churn v7 is signed as churn v3: a copy ...
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import msgspec

from shared.core.errors import ArtifactRejected
from shared.core.kinds import Task
from shared.core.schema import Schema, numeric_schema
from shared.models.signing import Verifier
from shared.stats.profile import ReferenceProfile

HEADER_FORMAT = 2
"""Of :meth:`ModelVersion.header`; 1 (earlier driftline) covered the name, format, task,
features and sha256 only, and is not accepted."""
UNSIGNED = frozenset({"signature", "status"})

Status = Literal["registered", "active", "retired", "rejected", "rolled_back"]
"""Where a version stands: the registry's promotion and rollback scripts move it between these."""


class ModelVersion(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the registry holds about one version, except the artifact bytes."""

    model: str
    version: int
    task: Task
    algorithm: str
    params: dict[str, Any]
    features: list[str]
    format: str
    sha256: str
    signature: str | None
    metrics: dict[str, float]
    reference: ReferenceProfile | None
    classes: list[Any] | None
    trained_on: dict[str, Any]
    libraries: dict[str, str]
    created_at: int
    parent: int | None
    status: Status
    schema: Schema | None = None
    """Each feature's kind; None on versions made before schemas were stored (all numeric, no
    missing values: :attr:`feature_schema`)."""

    @property
    def feature_schema(self) -> Schema:
        """The schema events are checked against: the stored one, else every feature numeric
        and required (what versions without one were trained on)."""
        return self.schema if self.schema is not None else numeric_schema(self.features)

    def header(self) -> bytes:
        """The canonical bytes the signature covers: every field but ``signature`` and
        ``status``, the reference profile by its sha256, as sorted compact JSON."""
        fields = msgspec.to_builtins(self)
        for name in UNSIGNED:
            del fields[name]
        if fields["schema"] is None:
            del fields["schema"]  # as versions signed before schemas were stored have it
        reference = fields.pop("reference")
        for name in ("categories", "missing"):  # absent from references made before them
            if reference is not None and not reference.get(name):
                reference.pop(name, None)
        fields["reference_sha256"] = (
            None
            if reference is None
            else hashlib.sha256(json.dumps(reference, sort_keys=True).encode()).hexdigest()
        )
        fields["header"] = HEADER_FORMAT
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def summary(self) -> dict[str, Any]:
        """The short form `models list` prints."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "metrics": self.metrics,
            "status": self.status,
        }


def verify_record(record: ModelVersion, verifier: Verifier, *, model: str, version: int) -> None:
    """Return if ``record``, stored as ``model`` v``version``, is what the trainer's key signed
    for that place; raise :class:`ArtifactRejected` saying why not."""
    if record.model != model or record.version != version:
        raise ArtifactRejected(
            f"the record stored as {model} v{version} is signed as {record.model} "
            f"v{record.version}: a copy of another version (a replay), refused"
        )
    try:
        verifier.verify(record.header(), record.signature)
    except ArtifactRejected as exc:
        if _signed_by_earlier_driftline(record, verifier):
            raise ArtifactRejected(
                f"{model} v{version} was signed by an earlier driftline, whose signature does not "
                "cover its classes, reference, parameters or place; register it again with this "
                "version (`driftline train`), or let the trainer retrain"
            ) from None
        raise exc from None


def _signed_by_earlier_driftline(record: ModelVersion, verifier: Verifier) -> bool:
    """Whether the signature is over the header of earlier driftline (name, format, task,
    features and sha256 only): only to say so, never to accept it."""
    old = json.dumps(
        {
            "model": record.model,
            "format": record.format,
            "task": record.task,
            "features": record.features,
            "sha256": record.sha256,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    try:
        verifier.verify(old, record.signature)
    except ArtifactRejected:
        return False
    return True
