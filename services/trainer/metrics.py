"""The trainer's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.runtime.metrics import ConsumerLag


@dataclass(frozen=True)
class TrainerMetrics:
    registry: CollectorRegistry
    examples: Counter
    duplicates: Counter
    skipped: Counter
    dead: Counter
    window: Gauge
    leader: Gauge
    requests: Counter
    outcomes: Counter
    training_seconds: Histogram
    pending: Gauge
    consumer_lag: ConsumerLag

    @classmethod
    def create(cls, model: str) -> TrainerMetrics:
        r = CollectorRegistry()
        p = "driftline_trainer_"

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{p}{name}", doc, ["model", *labels], registry=r)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"{p}{name}", doc, ["model"], registry=r)

        return cls(
            registry=r,
            examples=counter("examples", "Labelled examples added to the window."),
            duplicates=counter("duplicate_examples", "Examples ignored: event_id already held."),
            skipped=counter(
                "skipped_examples",
                "Examples not kept, by reason: a label that fits no class of the model "
                "(bad_label), or one the online learner could not learn (learn_failed).",
                ("reason",),
            ),
            dead=counter(
                "dead_letters", "Undecodable records sent to the DLQ, by topic.", ("topic",)
            ),
            window=gauge("window_examples", "Examples in the training window."),
            leader=gauge("leader", "1 while this trainer holds the leader lock."),
            requests=counter(
                "retrain_requests", "Retrain requests read, by how they were met.", ("result",)
            ),
            outcomes=counter(
                "outcomes",
                "Training outcomes: bootstrap, promote, reject, failed, rolled_back.",
                ("outcome",),
            ),
            training_seconds=Histogram(
                f"{p}training_seconds",
                "Time to train and judge one candidate.",
                ["model", "algorithm"],
                buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
                registry=r,
            ),
            pending=gauge("pending_requests", "Retrain requests waiting (for data or leadership)."),
            consumer_lag=ConsumerLag(r, "trainer"),
        )
