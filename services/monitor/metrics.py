"""The monitor's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.monitor.join import COUNTS
from services.monitor.status import MonitorStatus
from shared.runtime.metrics import ConsumerLag

JOIN_LAG_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1_800, 3_600, 4 * 3_600, 24 * 3_600)
"""Seconds from an event to its label: sub-second for a live feedback loop, up to the default
one-hour label window, and a day for labels that a batch job writes."""


@dataclass(frozen=True)
class MonitorMetrics:
    """Every metric the monitor exports, labelled with its model (and version where it applies)."""

    registry: CollectorRegistry
    model: str
    records: Counter
    dead: Counter
    labels_coerced: Counter
    labels_misrouted: Counter
    join: Gauge
    pending: Gauge
    coverage: Gauge
    join_lag: Histogram
    metric: Gauge
    drift: Gauge
    quality: Gauge
    alerts: Counter
    retrain: Counter
    checkpoint_seconds: Histogram
    checkpoint_bytes: Gauge
    consumer_lag: ConsumerLag

    @classmethod
    def create(cls, model: str) -> MonitorMetrics:
        r = CollectorRegistry()
        prefix = "driftline_monitor_"
        return cls(
            registry=r,
            model=model,
            records=Counter(
                f"{prefix}records", "Records consumed, by topic.", ["model", "topic"], registry=r
            ),
            dead=Counter(
                f"{prefix}dead_letters",
                "Records sent to the dlq, by topic.",
                ["model", "topic"],
                registry=r,
            ),
            labels_coerced=Counter(
                f"{prefix}labels_coerced",
                'Labels taken as a class in another spelling ("1" for 1, "true" for True).',
                ["model"],
                registry=r,
            ),
            labels_misrouted=Counter(
                f"{prefix}labels_misrouted",
                "Labels found on another partition than their key's (another client's partitioner), "
                "forwarded to their own.",
                ["model"],
                registry=r,
            ),
            join=Gauge(
                f"{prefix}join_events",
                "Join outcomes so far over this monitor's partitions: " + ", ".join(COUNTS) + ".",
                ["model", "outcome"],
                registry=r,
            ),
            pending=Gauge(
                f"{prefix}pending", "Events waiting for their other pieces.", ["model"], registry=r
            ),
            coverage=Gauge(
                f"{prefix}label_coverage",
                "Share of closed predictions that got their label (joined / (joined + expired)).",
                ["model"],
                registry=r,
            ),
            join_lag=Histogram(
                f"{prefix}join_lag_seconds",
                "Event time from an event to its label's arrival, per joined event.",
                ["model"],
                buckets=JOIN_LAG_BUCKETS,
                registry=r,
            ),
            metric=Gauge(
                f"{prefix}metric",
                "Rolling error metric of a model version, over the count or the time window.",
                ["model", "version", "metric", "window"],
                registry=r,
            ),
            drift=Gauge(
                f"{prefix}drift",
                "Latest drift statistic of a feature (or __score__, the predictions) of a version.",
                ["model", "version", "feature", "statistic"],
                registry=r,
            ),
            quality=Gauge(
                f"{prefix}data_quality",
                "A feature's share of missing values, of numbers outside the training range and "
                "of categories outside the training ones, over the version's recent window.",
                ["model", "version", "feature", "check"],
                registry=r,
            ),
            alerts=Counter(
                f"{prefix}alerts",
                "Alerts published, by kind and state.",
                ["model", "kind", "state"],
                registry=r,
            ),
            retrain=Counter(
                f"{prefix}retrain_requests", "Retrain requests published.", ["model"], registry=r
            ),
            checkpoint_seconds=Histogram(
                f"{prefix}checkpoint_seconds",
                "Time to write a checkpoint to Redis.",
                ["model"],
                registry=r,
            ),
            checkpoint_bytes=Gauge(
                f"{prefix}checkpoint_bytes", "Size of the last checkpoint.", ["model"], registry=r
            ),
            consumer_lag=ConsumerLag(r, "monitor"),
        )

    def observe_lags(self, lags_ms: list[int]) -> None:
        """Count the join lags of events joined since the last call (once per checkpoint: a
        histogram's observe per event would cost the join loop about a microsecond each)."""
        histogram = self.join_lag.labels(self.model)
        for lag in lags_ms:
            histogram.observe(lag / 1000.0)

    def publish(self, status: MonitorStatus) -> None:
        """Set the gauges from a status snapshot (:meth:`Monitor.status`)."""
        m = self.model
        for outcome, value in status.join.items():
            self.join.labels(m, outcome).set(value)
        self.pending.labels(m).set(status.pending)
        if status.label_coverage is not None:
            self.coverage.labels(m).set(status.label_coverage)
        for version in status.versions:
            v = str(version.version)
            for window, values in (
                ("count", version.metrics),
                ("time", version.metrics_time_window),
            ):
                for name, figure in values.items():
                    if figure is not None:
                        self.metric.labels(m, v, name, window).set(figure)
            for drift in version.drift:
                for statistic in ("psi", "ks", "p_value", "mean_shift"):
                    self.drift.labels(m, v, drift.feature, statistic).set(getattr(drift, statistic))
            for quality in version.quality:
                for check in ("missing", "out_of_range", "unseen"):
                    share = getattr(quality, check)
                    if share is not None:
                        self.quality.labels(m, v, quality.feature, check).set(share)
            score = version.prediction_drift
            if score is not None:
                self.drift.labels(m, v, "__score__", "psi").set(score.psi)
                self.drift.labels(m, v, "__score__", "ks").set(score.ks)
