"""A report's inputs as a run of the demo would leave them, without servers: a synthetic stream
with a covariate shift on two features and a concept flip, v1 scoring until a swap to v2."""

from __future__ import annotations

import numpy as np

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.cli.report.figures import ReportData, build
from shared.core.messages import DriftAlert, Example, ModelEvent
from shared.stats.profile import ReferenceProfile, build_profile

EVENTS = 6_000
SHIFT_AT = 2_000
"""Features x2 and x7 shift by one standard deviation, and the concept flips, from here."""
SWAP_AT = 3_500
"""v2 scores from here on."""


def reference(scenario: Scenario) -> ReferenceProfile:
    data = SyntheticStream(scenario, seed=3).dataset(4_000)
    return build_profile(data.X, data.features, scores=None)


def report_data() -> ReportData:
    scenario = Scenario(drift="covariate", at=SHIFT_AT, start_ts=1_700_000_000_000)
    stream = SyntheticStream(scenario, seed=5)
    rng = np.random.default_rng(7)
    examples = []
    for event in stream.events(EVENTS):
        version = 1 if event.index < SWAP_AT else 2
        wrong = 0.45 if version == 1 and event.index >= SHIFT_AT else 0.05
        prediction = 1 - event.label if rng.random() < wrong else event.label
        examples.append(
            Example(
                event_id=event.event_id,
                ts=event.ts,
                model="m",
                features=event.features,
                label=event.label,
                prediction=prediction,
                version=version,
            )
        )
    examples.append(examples[10])  # a replayed copy: counted once
    at_ts = scenario.start_ts + SHIFT_AT * scenario.step_ms
    alerts = [
        DriftAlert(
            alert_id=f"a-{feature}",
            ts=at_ts + 4_000,
            model="m",
            version=1,
            kind="data_drift",
            detector="psi+ks",
            feature=feature,
            statistic=0.31,
            threshold=0.2,
            window=1_000,
            severity="warning",
            message=f"{feature} shifted",
        )
        for feature in ("x2", "x7")
    ]
    alerts.append(
        DriftAlert(
            alert_id="c",
            ts=at_ts + 1_500,
            model="m",
            version=1,
            kind="concept_drift",
            detector="adwin",
            statistic=0.4,
            threshold=0.002,
            window=600,
            severity="critical",
            message="error rose",
        )
    )
    events = [
        ModelEvent(ts=1_800_000_000_000, model="m", version=1, event="promoted"),
        ModelEvent(ts=1_800_000_100_000, model="m", version=2, event="registered"),
        ModelEvent(ts=1_800_000_100_050, model="m", version=2, event="promoted", reason="better"),
    ]
    profile = reference(scenario)
    return build(
        "m",
        "classification",
        examples,
        alerts,
        events,
        {1: profile, 2: profile},
        psi_threshold=0.2,
        injected_ts=at_ts,
        summary={"drift_injected_at": SHIFT_AT, "promoted_version": 2},
    )
