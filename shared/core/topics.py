"""Topic names and shapes: ``DRIFTLINE_TOPIC_PREFIX`` + noun, one place for all of them.

``features``, ``labels`` and ``predictions`` are keyed by ``event_id`` and must have the same
partition count, so that a monitor joins a prediction with its label locally. ``examples`` and
``dlq`` share that count; topics keyed by model name (``alerts``, ``retrain``, ``model-events``) get
one partition, which orders all of a model's records.

>>> t = Topics("driftline.")
>>> t.features, t.model_events, t.dlq
('driftline.features', 'driftline.model-events', 'driftline.dlq')
>>> [(spec.name, spec.partitions) for spec in t.specs(partitions=3)][:2]
[('driftline.features', 3), ('driftline.labels', 3)]
"""

from __future__ import annotations

from dataclasses import dataclass

NOUNS = (
    "features",
    "labels",
    "predictions",
    "examples",
    "alerts",
    "retrain",
    "model-events",
    "dlq",
)
CO_PARTITIONED = ("features", "labels", "predictions")
"""Topics that must share one partition count for the monitor's local join."""
SINGLE_PARTITION = ("alerts", "retrain", "model-events")


@dataclass(frozen=True)
class TopicSpec:
    """What a driftline topic should look like on the broker."""

    name: str
    partitions: int


@dataclass(frozen=True)
class Topics:
    """The full topic names of one driftline deployment."""

    prefix: str

    def name(self, noun: str) -> str:
        """Full name of the topic for ``noun`` (one of :data:`NOUNS`)."""
        if noun not in NOUNS:
            raise ValueError(f"unknown topic noun {noun!r}; expected one of {', '.join(NOUNS)}")
        return self.prefix + noun

    @property
    def features(self) -> str:
        return self.name("features")

    @property
    def labels(self) -> str:
        return self.name("labels")

    @property
    def predictions(self) -> str:
        return self.name("predictions")

    @property
    def examples(self) -> str:
        return self.name("examples")

    @property
    def alerts(self) -> str:
        return self.name("alerts")

    @property
    def retrain(self) -> str:
        return self.name("retrain")

    @property
    def model_events(self) -> str:
        return self.name("model-events")

    @property
    def dlq(self) -> str:
        return self.name("dlq")

    def specs(self, partitions: int) -> list[TopicSpec]:
        """Every topic with the partition count it should have."""
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        return [
            TopicSpec(self.name(noun), 1 if noun in SINGLE_PARTITION else partitions)
            for noun in NOUNS
        ]
