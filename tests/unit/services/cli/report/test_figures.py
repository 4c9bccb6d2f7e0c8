"""The report's figures come out of the records right: error per version, PSI per feature,
versions and markers; the page holds the three plots and escapes what it shows."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from services.cli.report.figures import Curve, ReportData
from services.cli.report.page import render
from tests.harness.report import EVENTS, SHIFT_AT, SWAP_AT, report_data

START = 1_700_000_000_000
STEP = 10


def _at(curve: Curve, begin: int, end: int) -> list[float]:
    """Values whose event time falls between events ``begin`` and ``end``."""
    low, high = START + begin * STEP, START + end * STEP
    return [v for t, v in zip(curve.ts, curve.values, strict=True) if low <= t < high]


def test_rolling_error_is_per_version_and_follows_the_shift_and_the_swap() -> None:
    data = report_data()
    assert sorted(data.errors) == [1, 2]
    v1, v2 = data.errors[1], data.errors[2]
    assert max(_at(v1, 600, SHIFT_AT)) < 0.1  # 5% wrong before the shift
    assert min(_at(v1, SHIFT_AT + 600, SWAP_AT)) > 0.3  # 45% wrong once a window is past it
    assert max(_at(v2, SWAP_AT + 600, EVENTS)) < 0.1
    assert not _at(v2, 0, SWAP_AT)  # v2 has no error before it served


def test_psi_names_the_two_shifted_features_and_stays_low_on_the_others() -> None:
    data = report_data()
    assert sorted(data.drift) == [f"x{i}" for i in range(10)]
    past_shift = {
        name: max(_at(curve, SHIFT_AT + 1_000, EVENTS)) for name, curve in data.drift.items()
    }
    assert {name for name, value in past_shift.items() if value > 0.2} == {"x2", "x7"}
    before = [max(_at(curve, 1_000, SHIFT_AT)) for curve in data.drift.values()]
    assert max(before) < 0.1


def test_spans_markers_and_tables_come_from_the_records() -> None:
    data = report_data()
    assert [(s.version, s.events) for s in data.spans] == [(1, SWAP_AT), (2, EVENTS - SWAP_AT)]
    assert data.examples == EVENTS  # the replayed copy counted once
    kinds = [(m.kind, m.label) for m in data.markers]
    assert kinds == [
        ("injected", "drift injected"),
        ("concept_drift", "concept drift"),
        ("data_drift", "data drift (x2)"),
        ("data_drift", "data drift (x7)"),
        ("swap", "v2 serving"),
    ]
    swap = next(m for m in data.markers if m.kind == "swap")
    assert swap.ts == START + SWAP_AT * STEP
    assert [e.event for e in data.events] == ["promoted", "registered", "promoted"]


def test_the_page_has_three_plots_the_tables_and_escapes_names() -> None:
    data = dataclasses.replace(report_data(), model="<m&>")
    page = render(data)
    assert page.startswith("<!doctype html>")
    assert len(re.findall(r"<svg\b", page)) == 3
    assert "driftline report: &lt;m&amp;&gt;" in page and "<m&>" not in page
    for text in ("Rolling error per model version", "PSI per feature", "Which version served"):
        assert text in page
    assert page.count("<tr>") >= 3 + 3  # alerts and model events
    assert not re.search(r"""(src|href)=["']https?:|<script|<link""", page)  # nothing fetched


def test_a_model_with_nothing_joined_yet_gets_a_page_that_says_so() -> None:
    empty = ReportData(
        model="m",
        task="regression",
        error_metric="MSE",
        errors={},
        drift={},
        spans=[],
        markers=[],
        alerts=[],
        events=[],
        examples=0,
        psi_threshold=0.2,
    )
    page = render(empty)
    assert "<svg" not in page
    assert "No joined events yet" in page and "No alerts." in page


def test_rolling_error_of_a_regression_is_the_mean_squared_error() -> None:
    from services.cli.report.figures import error_curves  # noqa: PLC0415
    from shared.core.messages import Example  # noqa: PLC0415

    examples = [
        Example(
            event_id=str(i),
            ts=i,
            model="m",
            features={},
            label=1.0,
            prediction=1.0 + i % 3,
            version=1,
        )
        for i in range(9)
    ]
    curve = error_curves("regression", examples, window=3)[1]
    assert np.isclose(curve.values[-1], (0 + 1 + 4) / 3)


def _mixed_examples(n: int, shift_at: int) -> list:
    from shared.core.messages import Example  # noqa: PLC0415

    rng = np.random.default_rng(4)
    found = []
    for i in range(n):
        moved = i >= shift_at
        country = "DE" if moved and rng.random() < 0.4 else str(rng.choice(["FR", "IT", "ES"]))
        features = {
            "amount": None if moved and i % 4 == 0 else float(rng.normal()),
            "country": "??" if moved and i % 10 == 0 else country,
            "plan": str(rng.choice(["a", "b"])),
        }
        found.append(
            Example(
                event_id=f"e{i}", ts=START + i * STEP, model="m", features=features,
                label=int(rng.random() < 0.5), prediction=0, version=1,
            )
        )  # fmt: skip
    return found


def test_the_category_that_moved_most_and_a_quality_table_per_feature() -> None:
    from services.cli.report.figures import build  # noqa: PLC0415
    from shared.core.schema import FeatureSpec, Schema  # noqa: PLC0415
    from shared.stats.profile import build_profile  # noqa: PLC0415

    schema = Schema(
        [
            FeatureSpec("amount", "numeric"),
            FeatureSpec("country", "categorical"),
            FeatureSpec("plan", "categorical"),
        ]
    )
    rng = np.random.default_rng(5)
    training = [
        [float(rng.normal()), str(rng.choice(["DE", "FR", "IT", "ES"], p=[0.1, 0.3, 0.3, 0.3])),
         str(rng.choice(["a", "b"]))]
        for _ in range(3_000)
    ]  # fmt: skip
    reference = build_profile(schema.matrix(training), schema, scores=None)
    examples = _mixed_examples(3_000, shift_at=1_500)
    data = build(
        "m", "classification", examples, [], [], {1: reference}, psi_threshold=0.2,
        refused={"amount": 7},
    )  # fmt: skip
    shares = data.categories
    assert shares is not None and shares.feature == "country" and shares.version == 1
    de = shares.levels.index("DE")
    assert abs(shares.reference[de] - 0.1) < 0.03 and abs(shares.current[de] - 0.36) < 0.05
    quality = {q.feature: q for q in data.quality}
    assert abs(quality["amount"].missing - 0.25) < 0.01 and quality["amount"].refused == 7
    assert quality["amount"].out_of_range is not None and quality["amount"].out_of_range < 0.01
    assert abs((quality["country"].unseen or 0) - 0.1) < 0.01 and quality["plan"].unseen == 0
    page = render(data)
    assert "The category that moved most: country" in page
    assert "unseen categories" in page and "25.0% (training 0.0%)" in page


def test_a_categorys_psi_is_drawn_with_the_numbers() -> None:
    from services.cli.report.figures import drift_curves  # noqa: PLC0415
    from shared.stats.profile import CategoryProfile, ReferenceProfile  # noqa: PLC0415

    third = 1 / 3
    profile = CategoryProfile(3_000, ["ES", "FR", "IT"], [third, third, third], 0.0, 0.0)
    reference = ReferenceProfile(n=3_000, features={}, categories={"country": profile})
    curves = drift_curves(_mixed_examples(3_000, shift_at=1_500), {1: reference}, window=500)
    values = curves["country"].values
    assert max(values[:3]) < 0.05 and values[-1] > 0.2
