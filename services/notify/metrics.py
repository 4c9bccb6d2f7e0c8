"""The notifier's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.runtime.metrics import ConsumerLag

DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0)


@dataclass(frozen=True)
class NotifyMetrics:
    registry: CollectorRegistry
    alerts: Counter
    notifications: Counter
    attempts: Counter
    delivery_seconds: Histogram
    outbox: Gauge
    incidents: Gauge
    dead: Counter
    consumer_lag: ConsumerLag

    @classmethod
    def create(cls) -> NotifyMetrics:
        r = CollectorRegistry()
        p = "driftline_notify_"
        return cls(
            registry=r,
            alerts=Counter(
                f"{p}alerts",
                "Alert records read, by what they did: changed an incident (applied), changed "
                "nothing (duplicate: a replay), or were undecodable (dead).",
                ["outcome"],
                registry=r,
            ),
            notifications=Counter(
                f"{p}notifications",
                "Notifications by route and outcome: delivered, or failed (their alerts "
                "dead-lettered).",
                ["route", "outcome"],
                registry=r,
            ),
            attempts=Counter(
                f"{p}attempts",
                "POST attempts by route, beyond the first of each notification (retries).",
                ["route"],
                registry=r,
            ),
            delivery_seconds=Histogram(
                f"{p}delivery_seconds",
                "From a notification's first attempt to its delivery, by route.",
                ["route"],
                buckets=DELIVERY_BUCKETS,
                registry=r,
            ),
            outbox=Gauge(
                f"{p}outbox", "Notifications waiting for delivery, by route.", ["route"], registry=r
            ),
            incidents=Gauge(
                f"{p}incidents", "Incidents held (firing, or not yet told in full).", registry=r
            ),
            dead=Counter(
                f"{p}dead_letters",
                "Records sent to the dead-letter topic, by reason: undecodable alert records "
                "(bad_record) or alerts whose notification failed (undelivered).",
                ["reason"],
                registry=r,
            ),
            consumer_lag=ConsumerLag(r, "notify"),
        )
