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

The prefix names the deployment, and everything else a deployment owns on a shared Kafka or Redis
carries it too: consumer groups (so transactional ids, which start with the group), and the
default Redis prefix. The default deployment keeps the names it always had.

>>> t.deployment, t.group("predictor", "churn"), deployment_redis_prefix("driftline.")
('driftline', 'driftline-predictor-churn', 'driftline:')
>>> Topics("staging.").group("monitor", "churn"), deployment_redis_prefix("staging.")
('staging-monitor-churn', 'staging:')
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
SEPARATORS = "._-"
"""Characters a topic prefix usually ends with; the deployment's name is the prefix without one."""


def deployment_name(topic_prefix: str) -> str:
    """The deployment a topic prefix names: the prefix without its trailing separator
    (``"driftline."`` -> ``"driftline"``); an empty prefix names ``"driftline"``."""
    if topic_prefix and topic_prefix[-1] in SEPARATORS:
        topic_prefix = topic_prefix[:-1]
    return topic_prefix or "driftline"


def deployment_redis_prefix(topic_prefix: str) -> str:
    """The Redis prefix a deployment uses unless ``DRIFTLINE_REDIS_PREFIX`` says otherwise."""
    return f"{deployment_name(topic_prefix)}:"


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

    @property
    def deployment(self) -> str:
        """The deployment's name: see :func:`deployment_name`."""
        return deployment_name(self.prefix)

    def group(self, service: str, model: str) -> str:
        """The consumer group of every instance of ``service`` for ``model`` in this deployment.

        Two deployments on one Kafka never share a group, so they never rebalance each other, and
        an exactly-once producer's transactional id (the group and the instance) never fences the
        other deployment's."""
        return f"{self.deployment}-{service}-{model}"

    def specs(self, partitions: int) -> list[TopicSpec]:
        """Every topic with the partition count it should have."""
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        return [
            TopicSpec(self.name(noun), 1 if noun in SINGLE_PARTITION else partitions)
            for noun in NOUNS
        ]
