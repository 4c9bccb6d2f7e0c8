"""Rolling metrics equal an offline computation (scikit-learn) on the same pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from shared.stats.rolling import RollingMetrics


def _stream(n: int, seed: int) -> tuple[list[int], list[int], list[float], list[int]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size=n).tolist()
    scores = np.clip(np.array(truth) * 0.4 + rng.uniform(0, 0.6, size=n), 0.01, 0.99).tolist()
    predictions = [int(s > 0.5) for s in scores]
    times = (np.cumsum(rng.integers(200, 1_800, size=n)) + 1_700_000_000_000).tolist()
    return truth, predictions, scores, times


def test_empty_windows_have_no_value() -> None:
    rolling = RollingMetrics("classification", positive=1, probabilities=True)
    assert set(rolling.values().values()) == {None}
    assert set(rolling.time_values().values()) == {None}


def test_classification_count_window_matches_scikit_learn() -> None:
    truth, predictions, scores, times = _stream(400, seed=1)
    rolling = RollingMetrics(
        "classification", window=100, period_s=3_600, positive=1, probabilities=True
    )
    for t, p, s, ts in zip(truth, predictions, scores, times, strict=True):
        rolling.update(t, p, s, ts)
    y, yhat, sc = truth[-100:], predictions[-100:], scores[-100:]
    got = rolling.values()
    assert rolling.count == 100
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, yhat))
    assert got["precision"] == pytest.approx(sk.precision_score(y, yhat))
    assert got["recall"] == pytest.approx(sk.recall_score(y, yhat))
    assert got["f1"] == pytest.approx(sk.f1_score(y, yhat))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, sc, labels=[0, 1]))
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y, sc))


def test_regression_time_window_matches_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(size=300).tolist()
    predictions = (np.array(truth) + rng.normal(scale=0.3, size=300)).tolist()
    times = [1_700_000_000_000 + i * 1_000 for i in range(300)]
    rolling = RollingMetrics("regression", window=1_000, period_s=59.5)
    for t, p, ts in zip(truth, predictions, times, strict=True):
        rolling.update(t, p, None, ts)
    y, yhat = truth[-60:], predictions[-60:]  # events less than 59.5 s older than the last one
    got = rolling.time_values()
    assert rolling.time_count == 60
    assert got["mse"] == pytest.approx(sk.mean_squared_error(y, yhat))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, yhat))
    assert got["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(y, yhat)))
    assert got["r2"] == pytest.approx(sk.r2_score(y, yhat))
    assert rolling.values()["mae"] == pytest.approx(sk.mean_absolute_error(truth, predictions))


def test_decision_values_get_no_probability_metrics() -> None:
    rolling = RollingMetrics("classification", positive=True, probabilities=False)
    rolling.update(True, True, 3.2, 0)
    assert set(rolling.values()) == {"accuracy", "precision", "recall", "f1"}


def test_multiclass_uses_macro_averages() -> None:
    rolling = RollingMetrics("classification", window=10)
    for t, p in [("a", "a"), ("b", "a"), ("c", "c"), ("b", "b")]:
        rolling.update(t, p, None, 0)
    assert rolling.values()["accuracy"] == pytest.approx(0.75)
    assert rolling.values()["f1"] == pytest.approx(
        sk.f1_score(["a", "b", "c", "b"], ["a", "a", "c", "b"], average="macro")
    )


def test_windowed_log_loss_is_rivers_over_a_long_slide() -> None:
    """After tens of thousands of entries and exits (and events without a score), the window's
    log-loss is river's ``LogLoss`` fed only the events still in the window, in both windows."""
    from river import metrics as river_metrics  # noqa: PLC0415

    truth, predictions, scores, times = _stream(30_000, seed=3)
    scores = [None if i % 97 == 0 else s for i, s in enumerate(scores)]  # type: ignore[misc]
    scores[-1] = 1.0  # clamped, as river clamps it
    rolling = RollingMetrics(
        "classification", window=700, period_s=900, positive=1, probabilities=True
    )
    for t, p, s, ts in zip(truth, predictions, scores, times, strict=True):
        rolling.update(t, p, s, ts)

    def rivers(count: int) -> float:
        reference = river_metrics.LogLoss()
        for t, s in zip(truth[-count:], scores[-count:], strict=True):
            if s is not None:
                reference.update(t == 1, s)
        return float(reference.get())

    assert rolling.values()["log_loss"] == pytest.approx(rivers(700), rel=1e-12)
    assert 700 < rolling.time_count < 30_000  # the time window slid too
    assert rolling.time_values()["log_loss"] == pytest.approx(rivers(rolling.time_count), rel=1e-12)


def test_roc_auc_leaves_out_events_without_a_score() -> None:
    truth, predictions, scores, times = _stream(300, seed=4)
    kept = [s if i % 3 else None for i, s in enumerate(scores)]  # every third has no score
    rolling = RollingMetrics(
        "classification", window=1_000, period_s=3_600, positive=1, probabilities=True
    )
    for t, p, s, ts in zip(truth, predictions, kept, times, strict=True):
        rolling.update(t, p, s, ts)
    y = [t for t, s in zip(truth, kept, strict=True) if s is not None]
    sc = [s for s in kept if s is not None]
    assert rolling.values()["roc_auc"] == pytest.approx(sk.roc_auc_score(y, sc))
    assert rolling.time_values()["roc_auc"] == pytest.approx(sk.roc_auc_score(y, sc))
    unscored = RollingMetrics(
        "classification", window=10, period_s=3_600, positive=1, probabilities=True
    )
    unscored.update(1, 1, None, 0)
    assert unscored.values()["roc_auc"] is None


def test_sliding_windows_match_scikit_learn_at_every_step() -> None:
    """The confusion counts follow each event in and out of both windows: binary and multiclass
    metrics equal scikit-learn's on exactly the events in each window, read after every event
    (so a stale matrix kept between reads would show), with classes that leave the window."""
    rng = np.random.default_rng(8)
    labels = ["a", "b", "c"]
    truth = [labels[i] for i in rng.integers(0, 3, size=400)]
    truth[200:260] = ["d"] * 60  # a class that comes and goes
    predictions = [t if rng.random() < 0.7 else labels[rng.integers(0, 3)] for t in truth]
    times = [i * 1_000 for i in range(400)]
    for positive in ("a", None):
        rolling = RollingMetrics("classification", window=50, period_s=30.5, positive=positive)
        for i, (t, p, ts) in enumerate(zip(truth, predictions, times, strict=True)):
            rolling.update(t, p, None, ts)
            if i % 5:
                rolling.values()  # read, so a matrix kept past a change would show at the next check
                continue
            for got, start in (
                (rolling.values(), max(0, i - 49)),
                (rolling.time_values(), max(0, i - 30)),
            ):
                y, yhat = truth[start : i + 1], predictions[start : i + 1]
                if positive is None:
                    expected = sk.f1_score(y, yhat, average="macro", labels=sorted({*y, *yhat}))
                else:  # a binary model's metrics are about its positive class
                    y, yhat = [v == positive for v in y], [v == positive for v in yhat]
                    expected = sk.f1_score(y, yhat, zero_division=0.0)
                assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, yhat))
                assert got["f1"] == pytest.approx(expected), (positive, i)


def test_restored_metrics_carry_on_as_the_originals() -> None:
    """A checkpoint holds the windows' events, not river's objects: the metrics rebuilt from
    them read and move on as the originals do."""
    import msgspec  # noqa: PLC0415

    from shared.stats.rolling import RollingState, restore_rolling, rolling_state  # noqa: PLC0415

    truth, predictions, scores, times = _stream(400, seed=9)
    original = RollingMetrics(
        "classification", window=100, period_s=30, positive=True, probabilities=True
    )
    for t, p, s, ts in list(zip(truth, predictions, scores, times, strict=True))[:250]:
        original.update(bool(t), bool(p), s, ts)
    data = msgspec.msgpack.encode(rolling_state(original))
    restored = restore_rolling(msgspec.msgpack.decode(data, type=RollingState))
    for t, p, s, ts in list(zip(truth, predictions, scores, times, strict=True))[250:]:
        original.update(bool(t), bool(p), s, ts)
        restored.update(bool(t), bool(p), s, ts)
    assert restored.values() == original.values()
    assert restored.time_values() == original.time_values()
