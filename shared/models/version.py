"""The record of one model version: everything known about it except its artifact bytes.

The registry stores it (``shared.registry.store``); serving, training and the services read it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from shared.core.kinds import Task
from shared.stats.profile import ReferenceProfile

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

    def summary(self) -> dict[str, Any]:
        """The short form `models list` prints."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "metrics": self.metrics,
            "status": self.status,
        }
