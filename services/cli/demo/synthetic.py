"""Seeded synthetic streams with scheduled drift, for tests, benchmarks and the demo.

Features are independent standard normals ``x0..x{n-1}``; the concept is a fixed linear function of
them: a class ``1`` when ``x @ w + noise > 0`` (classification), or ``x @ w + noise`` (regression).
Drift kinds, from event ``at``:

- ``sudden``: the concept flips (``-w``) at once;
- ``gradual``: each event follows the flipped concept with a probability rising linearly over
  ``width`` events;
- ``recurring``: the concept flips and flips back every ``width`` events;
- ``covariate``: the features listed in ``shifted`` move by ``shift`` standard deviations (the
  concept stays; data drift only);
- ``categorical`` (a ``mixed`` scenario): the ``channel`` category ``phone`` goes from 10% of the
  events to ``phone_share`` (40%; the concept stays: data drift of a category);
- ``none``: stationary.

A ``mixed`` scenario adds what real event streams carry: a category ``channel`` (web, app, store,
phone) and a boolean ``is_new``, both in the concept, and gaps: the last number is null in about 3%
of the events.

>>> stream = SyntheticStream(Scenario(task="classification", drift="sudden", at=3), seed=0)
>>> [event.label for event in stream.events(6)]
[0, 0, 1, 1, 1, 0]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shared.core.kinds import Task
from shared.core.schema import FeatureSpec, Schema
from shared.models.training import Dataset

DriftKind = Literal["none", "sudden", "gradual", "recurring", "covariate", "categorical"]
CHANNELS = ("web", "app", "store", "phone")
CHANNEL_SHARES = (0.45, 0.3, 0.15, 0.1)
CHANNEL_EFFECT = {"web": 0.0, "app": 0.8, "store": -0.5, "phone": 0.3}
NEW_EFFECT = -0.6
MISSING_SHARE = 0.03


START_TS = time.time_ns() // 60_000_000_000 * 60_000
"""The minute this process started, in epoch milliseconds: where every scenario's clock starts
by default, so that all the streams one process makes agree."""


@dataclass(frozen=True)
class Scenario:
    task: Task = "classification"
    n_features: int = 10
    drift: DriftKind = "none"
    at: int = 0
    """First event of the drift."""
    width: int = 2_000
    """Length of a gradual drift's transition, or of each recurring phase."""
    shifted: tuple[int, ...] = (2, 7)
    shift: float = 1.0
    noise: float = 0.5
    step_ms: int = 10
    """Event time between consecutive events."""
    start_ts: int = field(default_factory=lambda: START_TS)
    """Event time of the first event: by default the minute the process started, since the
    services refuse an event time more than a day from its record's timestamp."""
    mixed: bool = False
    """Add a category, a boolean and gaps (module docstring)."""
    phone_share: float = 0.4
    """The share of ``channel=phone`` after a ``categorical`` drift (10% before); the other
    channels keep their proportions."""

    def __post_init__(self) -> None:
        if self.drift == "categorical" and not self.mixed:
            raise ValueError("categorical drift needs a mixed scenario (mixed=True)")

    @property
    def features(self) -> list[str]:
        numbers = [f"x{i}" for i in range(self.n_features)]
        return [*numbers, "channel", "is_new"] if self.mixed else numbers

    @property
    def schema(self) -> Schema:
        """Each feature's kind."""
        specs = [FeatureSpec(f"x{i}", "numeric") for i in range(self.n_features)]
        if self.mixed:
            specs += [FeatureSpec("channel", "categorical"), FeatureSpec("is_new", "boolean")]
        return Schema(specs)


@dataclass(frozen=True)
class SyntheticEvent:
    index: int
    event_id: str
    ts: int
    features: dict[str, Any]
    label: Any
    drifted: bool
    """Whether this event follows the drifted concept or distribution."""


@dataclass
class SyntheticStream:
    scenario: Scenario
    seed: int = 0
    prefix: str = "e"
    _rng: np.random.Generator = field(init=False)
    _weights: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        weights_rng = np.random.default_rng(12345)  # the same concept for every seed
        self._weights = weights_rng.normal(size=self.scenario.n_features)

    def _drifted(self, index: int) -> bool:
        s = self.scenario
        if s.drift == "none" or index < s.at:
            return False
        if s.drift in ("sudden", "covariate", "categorical"):
            return True
        if s.drift == "gradual":
            return bool(self._rng.random() < min(1.0, (index - s.at + 1) / s.width))
        return ((index - s.at) // s.width) % 2 == 0  # recurring

    def _row(self, index: int) -> tuple[list[Any], Any, bool]:
        s = self.scenario
        x = self._rng.normal(size=s.n_features)
        drifted = self._drifted(index)
        if drifted and s.drift == "covariate":
            x[list(s.shifted)] += s.shift
        flipped = drifted and s.drift not in ("covariate", "categorical")
        weights = -self._weights if flipped else self._weights
        value = float(x @ weights + self._rng.normal(scale=s.noise))
        row: list[Any] = x.tolist()
        if s.mixed:
            shares: tuple[float, ...] = CHANNEL_SHARES
            if drifted and s.drift == "categorical":
                rest = (1 - s.phone_share) / (1 - CHANNEL_SHARES[-1])
                shares = (*(share * rest for share in CHANNEL_SHARES[:-1]), s.phone_share)
            channel = CHANNELS[int(self._rng.choice(len(CHANNELS), p=shares))]
            is_new = bool(self._rng.random() < 0.3)
            effect = CHANNEL_EFFECT[channel] + (NEW_EFFECT if is_new else 0.0)
            value += -effect if flipped else effect
            if self._rng.random() < MISSING_SHARE:
                row[-1] = None  # a gap: the model imputes it
            row += [channel, is_new]
        label: Any = round(value, 6) if s.task == "regression" else int(value > 0)
        return row, label, drifted

    def events(self, count: int, start: int = 0) -> Iterator[SyntheticEvent]:
        names = self.scenario.features
        for index in range(start, start + count):
            row, label, drifted = self._row(index)
            yield SyntheticEvent(
                index=index,
                event_id=f"{self.prefix}{index}",
                ts=self.scenario.start_ts + index * self.scenario.step_ms,
                features=dict(zip(names, row, strict=True)),
                label=label,
                drifted=drifted,
            )

    def dataset(self, count: int) -> Dataset:
        """``count`` rows of the undrifted concept, in time order, to train a first model on."""
        rows = [self._row(-1 - i) for i in range(count)]  # negative indexes: before any drift
        schema = self.scenario.schema
        X = (
            schema.matrix([row[0] for row in rows])
            if self.scenario.mixed
            else np.array([row[0] for row in rows])
        )
        return Dataset(
            self.scenario.features,
            X,
            [row[1] for row in rows],
            [self.scenario.start_ts - (count - i) * self.scenario.step_ms for i in range(count)],
            schema if self.scenario.mixed else None,
        )
