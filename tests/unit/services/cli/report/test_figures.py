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
