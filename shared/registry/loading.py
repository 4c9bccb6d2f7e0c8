"""A registered version, loaded ready to serve: the registry's record and artifact, verified."""

from __future__ import annotations

from shared.models.serving import ServingModel, load_serving_model
from shared.models.signing import Verifier
from shared.registry.store import Registry


def load_version(registry: Registry, model: str, version: int, verifier: Verifier) -> ServingModel:
    """Fetch ``model`` ``version`` and its artifact, then verify, deserialize, check and warm it up.

    Raises :class:`~shared.core.errors.ArtifactRejected` when it does not verify or does not
    behave, and :class:`~shared.core.errors.ModelNotFound` / :class:`~shared.core.errors.RedisError`
    as the registry does.
    """
    record = registry.get(model, version)
    return load_serving_model(record, registry.artifact(model, version), verifier)
