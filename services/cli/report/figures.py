"""What a report shows, computed from the records: plain functions, no I/O, no plotting.

A report is drawn from what driftline already keeps: the ``examples`` topic (every joined event:
features, label, prediction, the version that made it, event time), the ``alerts`` topic and the
``model-events`` topic, with each version's reference profile from the registry. Everything here is
on the event-time axis, the axis the monitor itself works on.

>>> examples = [Example(event_id=f"e{i}", ts=i * 10, model="m", features={"x": 0.0},
...     label=1, prediction=1 if i < 6 else 0, version=1 if i < 8 else 2) for i in range(10)]
>>> curves = error_curves("classification", examples, window=2)
>>> curves[1].values, curves[2].values
([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0], [1.0, 1.0])
>>> [(s.version, s.first_ts, s.last_ts, s.events) for s in version_spans(examples)]
[(1, 0, 70, 8), (2, 80, 90, 2)]
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from shared.core.messages import DriftAlert, Example, ModelEvent
from shared.core.schema import refused_feature
from shared.stats.drift import category_drift, psi
from shared.stats.loss import event_losses
from shared.stats.profile import ReferenceProfile
from shared.stats.quality import as_number, category_quality, numeric_quality

ERROR_WINDOW = 500
"""Examples per version in each point of the rolling error."""
DRIFT_WINDOW = 1_000
"""Examples in each window that PSI compares with the serving version's reference."""
MAX_POINTS = 400
"""Points per curve at most: enough for a page-wide plot, small enough for an inline SVG."""


@dataclass(frozen=True)
class Curve:
    """One line of a plot: event times (epoch ms) and values."""

    ts: list[int]
    values: list[float]


@dataclass(frozen=True)
class Span:
    """The event-time range a version scored (from its first to its last joined event)."""

    version: int
    first_ts: int
    last_ts: int
    events: int


@dataclass(frozen=True)
class Marker:
    """A vertical line on the time plots."""

    ts: int
    kind: str
    """``concept_drift``, ``data_drift``, ``prediction_drift``, ``performance``, ``swap``,
    ``rollback`` or ``injected``."""
    label: str


@dataclass
class ReportData:
    """Everything one report page shows, for one model."""

    model: str
    task: str
    error_metric: str
    errors: dict[int, Curve]
    drift: dict[str, Curve]
    spans: list[Span]
    markers: list[Marker]
    alerts: list[DriftAlert]
    events: list[ModelEvent]
    examples: int
    psi_threshold: float
    summary: dict[str, object] = field(default_factory=dict)
    categories: CategoryShares | None = None
    """The categorical feature that drifted most, its shares against the reference's."""
    quality: list[QualityRow] = field(default_factory=list)


@dataclass(frozen=True)
class CategoryShares:
    """One categorical feature's shares over the last window beside its reference's."""

    feature: str
    version: int
    levels: list[str]
    reference: list[float]
    current: list[float]
    psi: float


@dataclass(frozen=True)
class QualityRow:
    """One feature's data quality over the last window, against training (None: not this kind)."""

    feature: str
    kind: str
    missing: float
    missing_reference: float
    out_of_range: float | None
    unseen: float | None
    refused: int
    """Dead letters naming this feature (a value of the wrong kind, or missing where required)."""


def unique_examples(examples: Iterable[Example], model: str) -> list[Example]:
    """The model's examples, each event once (a replaying monitor may send one twice), by time."""
    seen: dict[str, Example] = {}
    for example in examples:
        if example.model == model and example.version is not None:
            seen.setdefault(example.event_id, example)
    return sorted(seen.values(), key=lambda example: (example.ts, example.event_id))


def event_errors(task: str, examples: Sequence[Example]) -> np.ndarray:
    """Per-event loss: squared error for regression, 0/1 (wrong class) for classification."""
    return event_losses(task, [e.label for e in examples], [e.prediction for e in examples])


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start).

    >>> rolling_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist()
    [1.0, 2.0, 4.0, 6.0]
    """
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return np.asarray((sums[ends] - sums[starts]) / (ends - starts), dtype=float)


def _thin(ts: np.ndarray, values: np.ndarray, points: int) -> Curve:
    keep = np.unique(np.linspace(0, ts.size - 1, min(points, ts.size)).astype(int))
    return Curve([int(t) for t in ts[keep]], [float(v) for v in values[keep]])


def error_curves(
    task: str, examples: Sequence[Example], window: int = ERROR_WINDOW, points: int = MAX_POINTS
) -> dict[int, Curve]:
    """Rolling loss per version, over that version's last ``window`` examples (drawn once a tenth
    of a window is in)."""
    by_version: dict[int, list[Example]] = {}
    for example in examples:
        by_version.setdefault(int(example.version or 0), []).append(example)
    curves = {}
    for version, mine in sorted(by_version.items()):
        ts = np.array([e.ts for e in mine])
        rolling = rolling_mean(event_errors(task, mine), window)
        settled = min(window, len(mine)) // 10  # the first few examples say little: not drawn
        curves[version] = _thin(ts[settled:], rolling[settled:], points)
    return curves


def drift_curves(
    examples: Sequence[Example],
    references: Mapping[int, ReferenceProfile],
    window: int = DRIFT_WINDOW,
    points: int = MAX_POINTS // 2,
) -> dict[str, Curve]:
    """PSI per feature over sliding windows of ``window`` examples, each against the reference of
    the version that scored most of the window (the one the monitor compared it with); a
    category's PSI is over its reference's categories, as the monitor computes it."""
    window = min(window, len(examples))
    if window == 0:
        return {}
    step = max(1, (len(examples) - window) // max(points - 1, 1))
    features = sorted({name for e in examples for name in e.features})
    columns = {
        name: np.array([as_number(e.features.get(name)) for e in examples], dtype=float)
        for name in features
    }
    texts = {
        name: [v if isinstance(v := e.features.get(name), str) else None for e in examples]
        for name in features
    }
    versions = [int(e.version or 0) for e in examples]
    ts: dict[str, list[int]] = {name: [] for name in features}
    values: dict[str, list[float]] = {name: [] for name in features}
    for end in range(window, len(examples) + 1, step):
        serving = Counter(versions[end - window : end]).most_common(1)[0][0]
        reference = references.get(serving)
        if reference is None:
            continue
        for name in features:
            categories = reference.categories.get(name)
            if categories is not None:
                recent = [texts[name][i] for i in range(end - window, end)]
                found = category_drift(name, categories, recent)
                if found is not None:
                    ts[name].append(examples[end - 1].ts)
                    values[name].append(found.psi)
                continue
            profile = reference.features.get(name)
            column = columns[name][end - window : end]
            column = column[~np.isnan(column)]
            if profile is None or column.size == 0:
                continue
            ts[name].append(examples[end - 1].ts)
            values[name].append(psi(profile.quantiles, column, profile.shares))
    return {name: Curve(ts[name], values[name]) for name in features if ts[name]}


def category_shares(
    examples: Sequence[Example],
    references: Mapping[int, ReferenceProfile],
    window: int = DRIFT_WINDOW,
) -> CategoryShares | None:
    """The categorical feature whose shares over the last ``window`` examples moved most (by
    PSI) from the reference of the version that scored most of them; None without categories."""
    recent = examples[-window:]
    if not recent:
        return None
    serving = Counter(int(e.version or 0) for e in recent).most_common(1)[0][0]
    reference = references.get(serving)
    if reference is None or not reference.categories:
        return None
    best: CategoryShares | None = None
    for name, profile in sorted(reference.categories.items()):
        values = [v if isinstance(v := e.features.get(name), str) else None for e in recent]
        found = category_drift(name, profile, values)
        if found is None:
            continue
        counts = profile.counts(values)[:-1]
        expected = profile.expected[:-1]
        total = sum(expected) or 1.0
        shares = CategoryShares(
            feature=name,
            version=serving,
            levels=profile.levels[:-1],
            reference=[share / total for share in expected],
            current=[float(c) / max(1, int(counts.sum())) for c in counts],
            psi=found.psi,
        )
        if best is None or shares.psi > best.psi:
            best = shares
    return best


def quality_rows(
    examples: Sequence[Example],
    references: Mapping[int, ReferenceProfile],
    refused: Mapping[str, int],
    window: int = DRIFT_WINDOW,
) -> list[QualityRow]:
    """Per feature of the serving version: missing, out-of-range and unseen shares over the last
    ``window`` examples against training, and the dead letters that name the feature."""
    recent = examples[-window:]
    if not recent:
        return []
    serving = Counter(int(e.version or 0) for e in recent).most_common(1)[0][0]
    reference = references.get(serving)
    if reference is None:
        return []
    rows = []
    for name in sorted({*reference.features, *reference.categories}):
        values = [e.features.get(name) for e in recent]
        if name in reference.categories:
            kind = "categorical"
            texts = [None if v is None else str(v) for v in values]
            found = category_quality(name, texts, reference.categories[name])
        else:
            kind = "boolean" if any(isinstance(v, bool) for v in values) else "numeric"
            missing = np.array([v is None for v in values], dtype=bool)
            numbers = np.array([as_number(v) for v in values], dtype=float)[~missing]
            profile = reference.features[name]
            found = numeric_quality(
                name, numbers, missing, profile, reference.missing.get(name, 0.0)
            )
        if found is None:
            continue
        rows.append(
            QualityRow(
                feature=name,
                kind=kind,
                missing=found.missing,
                missing_reference=found.missing_reference,
                out_of_range=found.out_of_range,
                unseen=found.unseen,
                refused=refused.get(name, 0),
            )
        )
    return rows


def refused_by_feature(errors: Iterable[str]) -> dict[str, int]:
    """How many dead letters name each feature (their error starts ``features.NAME:``).

    >>> refused_by_feature(["features.age: expected a number", "$: invalid JSON", "features.age: x"])
    {'age': 2}
    """
    counts = Counter(name for name in map(refused_feature, errors) if name is not None)
    return dict(counts)


def version_spans(examples: Sequence[Example]) -> list[Span]:
    """Per version, the first and last event time it scored and how many joined events."""
    spans: dict[int, list[int]] = {}
    for example in examples:
        version = int(example.version or 0)
        first, last, count = spans.get(version, [example.ts, example.ts, 0])
        spans[version] = [min(first, example.ts), max(last, example.ts), count + 1]
    return [Span(v, first, last, count) for v, (first, last, count) in sorted(spans.items())]


def markers(
    alerts: Sequence[DriftAlert], spans: Sequence[Span], injected_ts: int | None = None
) -> list[Marker]:
    """Firing alerts, the first event each later version scored (a swap, or a rollback when the
    version goes down), and where drift was injected (the demo knows; a live stream does not)."""
    found = [
        Marker(
            alert.ts,
            alert.kind,
            alert.kind.replace("_", " ") + (f" ({alert.feature})" if alert.feature else ""),
        )
        for alert in alerts
        if alert.state == "firing"
    ]
    by_start = sorted(spans, key=lambda span: span.first_ts)
    for before, after in itertools.pairwise(by_start):
        kind = "swap" if after.version > before.version else "rollback"
        found.append(Marker(after.first_ts, kind, f"v{after.version} serving"))
    if injected_ts is not None:
        found.append(Marker(injected_ts, "injected", "drift injected"))
    return sorted(found, key=lambda marker: marker.ts)


def unique_alerts(alerts: Iterable[DriftAlert], model: str) -> list[DriftAlert]:
    """The model's alerts, a replayed copy (same id and state) once, in event-time order."""
    seen: dict[tuple[str, str], DriftAlert] = {}
    for alert in alerts:
        if alert.model == model:
            seen.setdefault((alert.alert_id, alert.state), alert)
    return sorted(seen.values(), key=lambda alert: alert.ts)


def build(
    model: str,
    task: str,
    examples: Iterable[Example],
    alerts: Iterable[DriftAlert],
    events: Iterable[ModelEvent],
    references: Mapping[int, ReferenceProfile],
    *,
    psi_threshold: float,
    injected_ts: int | None = None,
    summary: Mapping[str, object] | None = None,
    refused: Mapping[str, int] | None = None,
) -> ReportData:
    """Everything a report page shows, from the records of one model; ``refused``: dead letters
    per feature (:func:`refused_by_feature`)."""
    mine = unique_examples(examples, model)
    spans = version_spans(mine)
    found = unique_alerts(alerts, model)
    return ReportData(
        model=model,
        task=task,
        error_metric="MSE" if task == "regression" else "error rate",
        errors=error_curves(task, mine),
        drift=drift_curves(mine, references),
        spans=spans,
        markers=markers(found, spans, injected_ts),
        alerts=found,
        events=sorted((e for e in events if e.model == model), key=lambda e: e.ts),
        examples=len(mine),
        psi_threshold=psi_threshold,
        summary=dict(summary or {}),
        categories=category_shares(mine, references),
        quality=quality_rows(mine, references, refused or {}),
    )
