"""Drift windows hold what a deque of the last N values per variable would, read at any time."""

from __future__ import annotations

from collections import deque

import msgspec
import numpy as np
import pytest

from services.monitor.analytics.drift_window import DriftWindows


def test_the_windows_equal_a_deque_per_variable_however_often_they_are_read() -> None:
    rng = np.random.default_rng(4)
    names = ["a", "b", "c"]
    size = 50
    windows = DriftWindows(names, size)
    expected = {name: deque[float](maxlen=size) for name in names}
    scores = deque[float](maxlen=size)
    for i in range(2_000):
        features = {name: float(rng.normal()) for name in names if rng.random() > 0.1}
        if i % 97 == 0:
            features["a"] = 3  # an int, as JSON may carry it
        score = float(rng.random()) if rng.random() > 0.2 else None
        windows.add(features, score)
        for name, value in features.items():
            expected[name].append(value)
        if score is not None:
            scores.append(score)
        if rng.random() < 0.03 or i == 1_999:  # read at random moments, as the drift checks do
            for name in names:
                assert windows.values(name).tolist() == list(expected[name]), (i, name)
                assert windows.count(name) == len(expected[name])
            assert windows.scores().tolist() == list(scores)


def test_a_checkpoint_restores_the_windows_and_rows_not_yet_read() -> None:
    windows = DriftWindows(["a", "b"], 4)
    for i in range(6):
        windows.add({"a": float(i), "b": float(-i)}, i / 10)
    restored = DriftWindows.from_state(windows.state())
    restored.add({"a": 9.0}, None)
    assert restored.values("a").tolist() == [3.0, 4.0, 5.0, 9.0]
    assert restored.values("b").tolist() == [-2.0, -3.0, -4.0, -5.0]
    assert restored.scores().tolist() == [0.2, 0.3, 0.4, 0.5]


def test_saved_windows_that_do_not_fit_are_refused() -> None:
    state = DriftWindows(["a"], 2).state()
    with pytest.raises(ValueError, match="at most"):
        DriftWindows.from_state(msgspec.structs.replace(state, scores=b"\x00" * 24))
    with pytest.raises(ValueError, match="do not match"):
        DriftWindows.from_state(msgspec.structs.replace(state, windows={"b": b""}))


def test_a_window_needs_a_size() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        DriftWindows(["a"], 0)
