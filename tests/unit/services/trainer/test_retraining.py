"""The trainer's decisions as plain functions: when it waits, what it trains on, what it promotes."""

from __future__ import annotations

import numpy as np
import pytest

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.trainer.retraining import Outcome, TrainerConfig, retrain
from services.trainer.rollback_guard import RollbackGuard
from services.trainer.window import ExampleWindow, Stored
from shared.core.errors import ConfigError
from shared.models.algorithms import algorithm
from shared.models.serving import ServingModel
from shared.models.signing import Signer
from shared.models.training import train

SIGNER = Signer.hmac(b"unit-test-secret")
CONFIG = TrainerConfig(algorithm="logistic", min_examples=400)


def _window(scenario: Scenario, count: int, seed: int = 1) -> ExampleWindow:
    window = ExampleWindow()
    for i, event in enumerate(SyntheticStream(scenario, seed=seed).events(count)):
        window.add(Stored(event.event_id, event.ts, event.features, event.label, 1, 0, i))
    return window


def _champion(scenario: Scenario) -> ServingModel:
    data = SyntheticStream(scenario, seed=99).dataset(2_000)
    fitted = train(data, model="m", algo=algorithm("logistic"), signer=SIGNER)
    assert fitted.scorer is not None
    return ServingModel("m", 1, fitted.task, tuple(fitted.features), fitted.scorer, fitted.schema)


def _retrain(
    window: ExampleWindow,
    champion: ServingModel | None,
    *,
    request_id: str | None,
    since_ts: int | None,
) -> Outcome:
    return retrain(
        window,
        model="m",
        config=CONFIG,
        signer=SIGNER,
        champion=champion,
        request_id=request_id,
        since_ts=since_ts,
    )


def test_too_few_examples_waits_and_says_how_many() -> None:
    outcome = _retrain(_window(Scenario(), 300), None, request_id=None, since_ts=None)
    assert outcome.kind == "waiting" and outcome.candidate is None
    assert "300 of the 400 examples" in outcome.reason


def test_first_model_from_the_window_names_its_schema_and_lineage() -> None:
    outcome = _retrain(_window(Scenario(), 1_000), None, request_id=None, since_ts=None)
    assert outcome.kind == "bootstrap" and outcome.candidate is not None
    assert outcome.candidate.features == Scenario().features
    assert outcome.candidate.trained_on["examples"] == 1_000
    assert outcome.candidate.trained_on["offsets"] == {"0": {"first": 0, "last": 999}}


def test_after_a_flip_the_candidate_learns_post_change_only_and_wins() -> None:
    scenario = Scenario(drift="sudden", at=1_000)
    window = _window(scenario, 2_500)
    change = Scenario().start_ts + 1_000 * scenario.step_ms
    outcome = _retrain(window, _champion(scenario), request_id="r1", since_ts=change)
    assert outcome.kind == "promote", outcome.reason
    assert outcome.decision is not None and outcome.decision.candidate > 0.9
    lineage = outcome.candidate.trained_on  # type: ignore[union-attr]
    assert lineage["start_ts"] >= change and lineage["examples"] == 1_500
    assert lineage["request_id"] == "r1"

    # The same flip with the whole window (pre-change rows too) makes a worse candidate.
    mixed = _retrain(window, _champion(scenario), request_id="r2", since_ts=None)
    assert mixed.decision is not None and mixed.decision.candidate < outcome.decision.candidate


def test_no_better_than_the_champion_is_rejected_with_the_reason() -> None:
    scenario = Scenario()
    outcome = _retrain(_window(scenario, 1_500), _champion(scenario), request_id="r", since_ts=None)
    assert outcome.kind == "reject"
    assert "does not beat" in outcome.reason or "not significant" in outcome.reason


def test_bad_configuration_is_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="unknown algorithm"):
        TrainerConfig(algorithm="forest")
    with pytest.raises(ConfigError, match="at least 10"):
        TrainerConfig(min_examples=5)


def test_rollback_guard_for_regression_and_without_a_baseline() -> None:
    guard = RollbackGuard("regression", min_labels=3, margin=0.05)
    for truth in (1.0, 2.0, 3.0):
        guard.observe(1, truth, truth + 1.0)  # v1: squared error 1
    guard.promoted(2, 1)
    verdicts = [guard.observe(2, truth, truth + 1.02) for truth in (1.0, 2.0, 3.0)]
    assert verdicts[-1] is not None and not verdicts[-1].rollback  # 4% worse: within the margin
    guard.promoted(3, 2)
    verdicts = [guard.observe(3, truth, truth + 2.0) for truth in (1.0, 2.0, 3.0)]
    assert verdicts[-1] is not None and verdicts[-1].rollback

    fresh = RollbackGuard("classification", min_labels=2)
    fresh.promoted(5, 4)
    verdicts = [fresh.observe(5, 1, 0) for _ in range(2)]
    assert verdicts[-1] is not None and not verdicts[-1].rollback
    assert "nothing to compare" in verdicts[-1].reason


def _shop_window(n_before: int, n_after: int) -> tuple[ExampleWindow, int]:
    """Mixed examples: a number and a shop category; after the change a shop first seen then
    ("new") takes 40% of the events, and its events are always positive."""
    rng = np.random.default_rng(11)
    window = ExampleWindow()
    change_ts = 1_700_000_000_000 + n_before * 100
    for i in range(n_before + n_after):
        x = float(rng.normal())
        after = i >= n_before
        shop = "new" if after and rng.random() < 0.4 else str(rng.choice(["a", "b", "c"]))
        label = 1 if shop == "new" else int(x > 0)
        features = {"x": x, "shop": shop, "flag": bool(rng.random() < 0.3), "gap": None}
        ts = 1_700_000_000_000 + i * 100
        window.add(Stored(f"e{i}", ts, features, label, 1, 0, i))
    return window, change_ts


def test_a_category_first_seen_after_the_change_is_learnt_by_the_retrained_version() -> None:
    window, change = _shop_window(1_500, 1_500)
    first = _retrain(window, None, request_id=None, since_ts=None).candidate
    assert first is not None and first.schema.kinds == {
        "flag": "boolean", "gap": "numeric", "shop": "categorical", "x": "numeric"
    }  # fmt: skip
    pre = ExampleWindow()
    for example in window.examples():
        if example.ts < change:
            pre.add(example)
    champion_candidate = _retrain(pre, None, request_id=None, since_ts=None).candidate
    assert champion_candidate is not None and champion_candidate.scorer is not None
    champion = ServingModel(
        "m", 1, "classification", tuple(champion_candidate.features),
        champion_candidate.scorer, champion_candidate.schema,
    )  # fmt: skip
    outcome = _retrain(window, champion, request_id="r", since_ts=change)
    assert outcome.kind == "promote", outcome.reason
    candidate = outcome.candidate
    assert candidate is not None and candidate.schema == champion.schema  # the schema is kept
    row = candidate.schema.row({"x": -2.0, "shop": "new", "flag": False})
    assert candidate.scorer is not None
    assert candidate.scorer.score(candidate.schema.matrix([row]))[0] == [1]
    assert champion.score(champion.schema.matrix([row]))[0] == [0]  # it never saw "new"
