"""The monitor's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.monitor.join import COUNTS
from services.monitor.status import MonitorStatus


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
    join_lag: Gauge
    metric: Gauge
    drift: Gauge
    quality: Gauge
    alerts: Counter
    retrain: Counter
    checkpoint_seconds: Histogram
    checkpoint_bytes: Gauge

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
            join_lag=Gauge(
                f"{prefix}join_lag_seconds",
                "Event time from an event to its label, over the last 10,000 joins.",
                ["model", "quantile"],
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
        )

    def publish(self, status: MonitorStatus) -> None:
        """Set the gauges from a status snapshot (:meth:`Monitor.status`)."""
        m = self.model
        for outcome, value in status.join.items():
            self.join.labels(m, outcome).set(value)
        self.pending.labels(m).set(status.pending)
        if status.label_coverage is not None:
            self.coverage.labels(m).set(status.label_coverage)
        for quantile, lag in (("0.5", status.join_lag_s.p50), ("0.99", status.join_lag_s.p99)):
            if lag is not None:
                self.join_lag.labels(m, quantile).set(lag)
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
