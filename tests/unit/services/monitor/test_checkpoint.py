"""Checkpoints: data only. A restored monitor carries on as if it never stopped, and bytes that a
monitor did not write (a pickle of earlier driftline, a planted gadget) are refused, never run."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import Joined, Scored
from services.monitor.reorder import Reorder
from services.monitor.state import (
    AnalyticsCheckpoint,
    MonitorStateStore,
    decode_analytics,
    decode_partition,
    encode_analytics,
)
from shared.core.errors import ConfigError
from shared.io.keys import RedisKeys
from shared.stats.profile import build_profile
from tests.harness.gadgets import GADGETS

DATA = Path(__file__).parent / "data"
FEATURES = [f"x{i}" for i in range(4)]


def _info() -> VersionInfo:
    weights = np.random.default_rng(12345).normal(size=4)
    data = SyntheticStream(Scenario(n_features=4), seed=50).dataset(2_000)
    scores = 1 / (1 + np.exp(-(data.X @ weights)))
    profile = build_profile(data.X, FEATURES, scores, sample_size=200)
    return VersionInfo(1, "classification", FEATURES, profile, [0, 1])


def _stream() -> list[Scored | Joined]:
    weights = np.random.default_rng(12345).normal(size=4)
    out: list[Scored | Joined] = []
    scenario = Scenario(n_features=4, drift="sudden", at=1_500)
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


@pytest.mark.parametrize("detector", ["adwin", "kswin", "page-hinkley", "ddm"])
def test_a_restored_monitor_says_what_one_that_never_stopped_says(detector: str) -> None:
    """Stopped in the middle of a sudden change (the detector part-way to firing), the restored
    analytics raise the same alerts and requests, with the same ids, at the same times."""
    info = _info()
    config = MonitorConfig(detector=detector, concept_min_labels=200)  # type: ignore[arg-type]
    items = _stream()
    cut = 2 * 1_600  # 100 events after the change
    straight = ModelWatch("m", config, lambda _v: info)
    expected = _said(straight.feed(items))
    assert any(said[1] == "concept_drift" for said in expected), detector

    first = ModelWatch("m", config, lambda _v: info)
    before = _said(first.feed(items[:cut]))
    held = Reorder()
    held.push(0, 1, items[0], now_ms=0)
    restored, restored_held = decode_analytics(encode_analytics(first, held))
    restored.attach(lambda _v: info, restored.claim)
    assert msgspec.to_builtins(restored.summary()) == msgspec.to_builtins(first.summary())
    assert before + _said(restored.feed(items[cut:])) == expected
    assert restored_held.release(0, everything=True) == [items[0]]


def _store() -> MonitorStateStore:
    # Only the decoding is under test here: nothing below reaches Redis.
    return MonitorStateStore(None, RedisKeys("t:"), "churn")  # type: ignore[arg-type]


def test_the_pickle_checkpoint_of_earlier_driftline_is_refused_with_the_reset_hint() -> None:
    old = (DATA / "old_checkpoint.pickle").read_bytes()
    assert old.startswith(b"\x80")  # a pickle, with classes of driftline, river and numpy
    with pytest.raises(ConfigError, match="--reset"), _store()._readable("analytics"):
        decode_analytics(old)


@pytest.mark.parametrize("gadget", GADGETS)
def test_a_planted_gadget_runs_nothing_and_is_refused(gadget: type, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    planted = pickle.dumps(gadget(marker))
    for decode, what in ((decode_partition, "partition 0"), (decode_analytics, "analytics")):
        with pytest.raises(ConfigError, match="--reset"), _store()._readable(what):
            decode(planted)
    assert not marker.exists()
    pickle.loads(planted)  # noqa: S301 - the gadget works: unpickled, it leaves the marker
    assert marker.exists()


def test_a_checkpoint_that_fits_the_schema_but_not_the_monitor_is_refused() -> None:
    """Well-formed msgpack with values no monitor writes: ADWIN's state bytes cut short, and a
    detector field it does not have."""
    info = _info()
    watch = ModelWatch("m", MonitorConfig(), lambda _v: info)
    watch.feed(_stream()[:400])
    state = watch.state()
    version = state.versions[0]
    for fields, reason in (
        ({"_helper": {"rust": b"\x00"}}, "ADWIN refused its state"),
        ({"os": 1}, "has no field 'os'"),
    ):
        concept = msgspec.structs.replace(version.concept, detector=fields)
        bad = msgspec.structs.replace(version, concept=concept)
        data = msgspec.msgpack.encode(
            AnalyticsCheckpoint(
                format=2,
                watch=msgspec.structs.replace(state, versions=[bad]),
                reorder=Reorder().state(),
            )
        )
        with pytest.raises(ConfigError, match=reason), _store()._readable("analytics"):
            decode_analytics(data)
