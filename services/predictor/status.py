"""What a predictor publishes about itself in Redis, for `driftline status` and `models list`."""

from __future__ import annotations

import msgspec


class PredictorStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The version one predictor process serves, and what it is doing."""

    member: str
    serving: int | None
    """The version scoring its batches (None until one has loaded)."""
    status: str
    """The model watcher's status line (serving, loading, refused and why)."""
    refused: list[int]
    """Versions that failed to load here."""
    kafka_client: str = ""
    """The Kafka client the predictor runs (DRIFTLINE_KAFKA_CLIENT)."""
