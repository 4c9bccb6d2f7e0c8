"""What a monitor says about itself: typed, published to Redis for `driftline status` and read
into its Prometheus gauges.

The JSON form (``msgspec.json.encode``) is what ``model:{name}:monitor:status:{instance}`` holds.

>>> lag = JoinLag(p50=0.5, p99=None)
>>> msgspec.json.encode(lag)
b'{"0.5":0.5,"0.99":null}'
"""

from __future__ import annotations

import msgspec


class FeatureDriftStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A feature's latest drift evidence against the version's reference."""

    feature: str
    psi: float
    ks: float
    p_value: float
    mean_shift: float
    drifting: bool
    """Significant at the false-alarm budget's level and past the PSI floor."""


class FeatureQualityStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A feature's data quality over the window, beside training's (None: not this kind)."""

    feature: str
    missing: float
    missing_reference: float
    out_of_range: float | None
    unseen: float | None
    unseen_reference: float | None
    worst: str
    """The check most above training: missing, out_of_range or unseen."""
    excess: float
    """How far that check is above training (the alert's statistic)."""
    problem: bool
    """Past the data-quality threshold."""
    message: str


class PredictionDriftStatus(msgspec.Struct, frozen=True, kw_only=True):
    psi: float
    ks: float


class VersionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One version's analytics."""

    version: int
    retired: bool
    scored: int
    labelled: int
    metrics: dict[str, float | None]
    """Rolling metrics over the count window (None: no value yet)."""
    metrics_time_window: dict[str, float | None]
    window: int
    """Labelled events in the count window."""
    drift: list[FeatureDriftStatus]
    """The five features that drift most (drifting ones first)."""
    prediction_drift: PredictionDriftStatus | None
    quality: list[FeatureQualityStatus] = []
    """Every watched feature's data quality, worst first."""
    firing: list[str]
    """Open alerts, as ``kind`` or ``kind:feature``."""


class AnalyticsStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A model's analytics: the version served, the retrain request outstanding, each version."""

    model: str
    current_version: int | None
    retrain_outstanding: str | None
    versions: list[VersionStatus]
    """Newest first."""


class JoinLag(msgspec.Struct, frozen=True, kw_only=True):
    """Event time from an event to its label, in seconds, over the last 10,000 joins."""

    p50: float | None = msgspec.field(name="0.5")
    p99: float | None = msgspec.field(name="0.99")


class MonitorStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One monitor process: its partitions, the join's counts, and the analytics."""

    model: str
    partitions: list[int]
    join: dict[str, int]
    """Joined, expired, orphans, late, duplicates and evicted events (services.monitor.join)."""
    pending: int
    """Events waiting for their other half."""
    held: int
    """Completed events the reorder holds until every partition has passed their event time."""
    paused: list[str]
    """Inputs paused while ahead of the other in event time, as ``noun[partition]``."""
    label_coverage: float | None
    labels_misrouted: int = 0
    """Labels read on another partition than their event_id's (another client's partitioner),
    forwarded to their own, where they joined."""
    join_lag_s: JoinLag
    current_version: int | None
    retrain_outstanding: str | None
    versions: list[VersionStatus]
    checkpoint_every_s: float
    updated_at: int
    """Epoch milliseconds."""
    kafka_client: str = ""
    """The Kafka client the monitor runs (DRIFTLINE_KAFKA_CLIENT)."""
