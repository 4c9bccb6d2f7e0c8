"""Checkpoints: what the monitor wrote before its modules moved restores, and carries on the same."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.monitor.analytics.config import VersionInfo
from services.monitor.analytics.version import VersionWatch
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import Joined, Scored
from services.monitor.reorder import Reorder
from services.monitor.retrain import LocalClaim
from services.monitor.state import loads
from shared.stats.profile import build_profile

DATA = Path(__file__).parent / "data"
FEATURES = [f"x{i}" for i in range(4)]
OLD_START_TS = 1_700_000_000_000
"""Where the scenarios of make_old_checkpoint.py started their clocks."""


def _info() -> VersionInfo:
    """The version ``make_old_checkpoint.py`` described (its reference is in the checkpoint too)."""
    weights = np.random.default_rng(12345).normal(size=4)
    data = SyntheticStream(Scenario(n_features=4, start_ts=OLD_START_TS), seed=50).dataset(2_000)
    scores = 1 / (1 + np.exp(-(data.X @ weights)))
    profile = build_profile(data.X, FEATURES, scores, sample_size=200)
    return VersionInfo(1, "classification", FEATURES, profile, [0, 1])


def _stream() -> list[Scored | Joined]:
    weights = np.random.default_rng(12345).normal(size=4)
    out: list[Scored | Joined] = []
    scenario = Scenario(n_features=4, drift="sudden", at=1_500, start_ts=OLD_START_TS)
    for event in SyntheticStream(scenario, seed=1).events(4_000):
        x = np.array([event.features[f] for f in FEATURES])
        score = float(1 / (1 + np.exp(-(x @ weights))))
        p = int(score > 0.5)
        out.append(Scored(event.event_id, event.ts, event.features, p, score, 1))
        out.append(
            Joined(
                event.event_id, event.ts, event.features, p, score, 1, "m", event.label, event.ts, 0
            )
        )
    return out


def _said(signals: list[Any]) -> list[list[Any]]:
    return [[a.alert_id, a.kind, a.state, a.ts] for s in signals for a in s.alerts] + [
        [r.request_id, r.since_ts] for s in signals for r in s.retrain
    ]


def test_a_checkpoint_of_the_code_before_the_move_restores_and_carries_on() -> None:
    expected = json.loads((DATA / "old_checkpoint.json").read_text())
    watch, held = loads((DATA / "old_checkpoint.pickle").read_bytes())
    assert type(watch) is ModelWatch and type(held) is Reorder
    assert type(watch.versions[1]) is VersionWatch
    assert isinstance(watch.claim, LocalClaim)
    watch.attach(lambda _v: _info(), watch.claim)
    assert msgspec.to_builtins(watch.summary()) == expected["summary"]
    assert watch.outstanding == expected["before"][-1][0]  # the request it had sent
    assert _said(watch.feed(_stream()[5_000:])) == expected["after"]  # the concept alert resolves
    released = held.release(0, everything=True)
    assert len(released) == 10
    assert [item.ts for item in released] == sorted(item.ts for item in released)


def test_a_checkpoint_naming_a_module_outside_the_allow_list_is_refused() -> None:
    class Planted:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("planted",))

    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        loads(pickle.dumps(Planted()))
