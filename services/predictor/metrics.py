"""The predictor's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.runtime.metrics import ConsumerLag

BATCH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_SIZES = (1, 5, 10, 50, 100, 250, 500, 1000, 5000)


@dataclass(frozen=True)
class PredictorMetrics:
    """Every metric the predictor exports, labelled with its model."""

    registry: CollectorRegistry
    model: str
    events_in: Counter
    predictions: Counter
    dead: Counter
    batch_seconds: Histogram
    batch_size: Histogram
    active_version: Gauge
    swaps: Counter
    load_failures: Counter
    refused_values: Counter
    consumer_lag: ConsumerLag

    @classmethod
    def create(cls, model: str) -> PredictorMetrics:
        r = CollectorRegistry()

        def counter(name: str, doc: str) -> Counter:
            return Counter(f"driftline_predictor_{name}", doc, ["model"], registry=r).labels(model)

        return cls(
            registry=r,
            model=model,
            events_in=counter("events_in", "Feature records consumed."),
            predictions=Counter(
                "driftline_predictor_predictions_out",
                "Predictions produced, by model version.",
                ["model", "version"],
                registry=r,
            ),
            dead=Counter(
                "driftline_predictor_dead_letters",
                "Records sent to the dead-letter topic, by reason.",
                ["model", "reason"],
                registry=r,
            ),
            batch_seconds=Histogram(
                "driftline_predictor_batch_seconds",
                "Time to score and deliver one batch.",
                ["model"],
                buckets=BATCH_SECONDS,
                registry=r,
            ).labels(model),
            batch_size=Histogram(
                "driftline_predictor_batch_size",
                "Records per batch.",
                ["model"],
                buckets=BATCH_SIZES,
                registry=r,
            ).labels(model),
            active_version=Gauge(
                "driftline_predictor_active_version",
                "Model version scoring the current batches.",
                ["model"],
                registry=r,
            ).labels(model),
            swaps=counter("model_swaps", "Hot swaps to a newly loaded version."),
            load_failures=counter(
                "model_load_failures", "Versions that failed to load (the old model kept serving)."
            ),
            refused_values=Counter(
                "driftline_predictor_refused_values",
                "Events dead-lettered for a value of the wrong kind (or missing where the version "
                "cannot impute), by the schema's feature.",
                ["model", "feature"],
                registry=r,
            ),
            consumer_lag=ConsumerLag(r, "predictor"),
        )

    def predicted(self, version: int, count: int) -> None:
        self.predictions.labels(self.model, str(version)).inc(count)

    def dead_lettered(self, reason: str) -> None:
        self.dead.labels(self.model, reason).inc()
