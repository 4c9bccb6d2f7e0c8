"""The monitor's analytics without Kafka: quiet on a stationary stream, one alert per shift,
the change located, the swap silent, and state that survives a checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import Joined, Scored
from services.monitor.reorder import Reorder
from services.monitor.state import decode_analytics, encode_analytics
from shared.stats.concept import ConceptDrift, locate_change
from shared.stats.profile import build_profile

FEATURES = [f"x{i}" for i in range(10)]


def _info(version: int) -> VersionInfo:
    data = SyntheticStream(Scenario(), seed=50).dataset(4_000)
    weights = np.random.default_rng(12345).normal(size=10)
    scores = 1 / (1 + np.exp(-(data.X @ weights)))
    return VersionInfo(
        version, "classification", FEATURES, build_profile(data.X, FEATURES, scores), [0, 1]
    )


def _feed(watch: ModelWatch, scenario: Scenario, n: int, version: int = 1, seed: int = 1) -> list:
    raised = []
    items = _items(scenario, n, version, seed)
    for scored, joined in zip(items[::2], items[1::2], strict=True):
        for signals in (watch.observe(scored), watch.learn(joined)):
            raised += signals.alerts + signals.retrain
    return raised


def _items(scenario: Scenario, n: int, version: int = 1, seed: int = 1) -> list[Scored | Joined]:
    """Each event scored, then joined with its label."""
    weights = np.random.default_rng(12345).normal(size=10)
    items: list[Scored | Joined] = []
    for event in SyntheticStream(scenario, seed=seed).events(n):
        x = np.array([event.features[f] for f in FEATURES])
        score = float(1 / (1 + np.exp(-(x @ weights))))
        prediction = int(score > 0.5)
        scored = Scored(event.event_id, event.ts, event.features, prediction, score, version)
        joined = Joined(
            event.event_id,
            event.ts,
            event.features,
            prediction,
            score,
            version,
            "m",
            event.label,
            event.ts,
            0,
        )
        items += [scored, joined]
    return items


def test_feeding_a_batch_raises_what_one_update_at_a_time_raises() -> None:
    """The monitor feeds whole batches (:meth:`ModelWatch.feed`, with a fast path for known
    versions); it must raise exactly what observe and learn raise event by event, through a
    concept flip (its alert fires, asks for a retrain, and resolves after the cooldown), a swap to
    a new version and a straggler of the old one, and mark the swap."""
    config = MonitorConfig(cooldown_ms=5_000)
    infos = {1: _info(1), 2: _info(2)}
    stream = (
        _items(Scenario(drift="sudden", at=3_000), 5_000)
        + _items(Scenario(drift="none"), 1_000, version=2, seed=2)
        + _items(Scenario(drift="none"), 3, version=1, seed=3)  # late events of the old version
        + _items(Scenario(drift="none"), 2_000, version=2, seed=4)
    )
    one_by_one = ModelWatch("m", config, infos.__getitem__)
    expected = []
    for item in stream:
        signals = one_by_one.observe(item) if isinstance(item, Scored) else one_by_one.learn(item)
        expected += signals.alerts + signals.retrain
    batched = ModelWatch("m", config, infos.__getitem__)
    found, served = [], []
    for start in range(0, len(stream), 777):
        for signals in batched.feed(stream[start : start + 777]):
            assert signals, "feed returns only signals that say something"
            found += signals.alerts + signals.retrain
            served += [] if signals.served is None else [signals.served]
    assert [getattr(a, "state", "request") for a in expected] == ["firing", "request", "resolved"]
    assert found == expected
    assert served == [2]
    assert batched.summary() == one_by_one.summary()


def test_one_concept_flip_gives_one_alert_and_one_request_located_at_the_flip() -> None:
    infos = {1: _info(1)}
    watch = ModelWatch("m", MonitorConfig(), infos.__getitem__)
    raised = _feed(watch, Scenario(drift="sudden", at=6_000), 9_000)
    kinds = [type(r).__name__ + ":" + getattr(r, "kind", "") for r in raised]
    assert kinds == ["DriftAlert:concept_drift", "RetrainRequest:"], raised
    flip_ts = Scenario().start_ts + 6_000 * Scenario().step_ms
    assert abs(raised[1].since_ts - flip_ts) <= 20 * Scenario().step_ms


def test_alerts_and_requests_are_stamped_with_the_latest_event_time_learned() -> None:
    """Labels come late and out of order, so the label that tips the concept detector may be a
    late one from before the change. The alert must not be dated before the change it reports:
    alerts and requests carry the latest event time their version has learned, which never runs
    backwards."""
    infos = {1: _info(1)}
    watch = ModelWatch("m", MonitorConfig(cooldown_ms=5_000), infos.__getitem__)
    items = _items(Scenario(drift="sudden", at=3_000), 6_000)
    delays = np.random.default_rng(7).integers(0, 500, size=len(items) // 2)
    arrival = sorted(
        [(2 * i, item) for i, item in enumerate(items[::2])]
        + [
            (2 * (i + int(d)) + 1, item)
            for i, (item, d) in enumerate(zip(items[1::2], delays, strict=True))
        ],
        key=lambda pair: pair[0],
    )
    learned = 0
    raised = []
    for _, item in arrival:
        if isinstance(item, Joined):
            learned = max(learned, item.ts)
            signals = watch.learn(item)
            raised += [(r, learned) for r in signals.alerts + signals.retrain]
        else:
            watch.observe(item)
    flip_ts = Scenario().start_ts + 3_000 * Scenario().step_ms
    kinds = [getattr(r, "state", "request") for r, _ in raised]
    assert kinds == ["firing", "request", "resolved"], raised
    assert [r.ts for r, _ in raised] == [latest for _, latest in raised]
    assert raised[0][0].ts >= flip_ts


def test_a_promotion_resolves_the_old_versions_alerts_and_raises_nothing_new() -> None:
    infos = {1: _info(1), 2: _info(2)}
    watch = ModelWatch("m", MonitorConfig(), infos.__getitem__)
    _feed(watch, Scenario(drift="sudden", at=3_000), 5_000)
    assert watch.versions[1].firing
    raised = _feed(watch, Scenario(drift="none"), 3_000, version=2, seed=2)
    assert [(a.kind, a.state, a.version) for a in raised] == [("concept_drift", "resolved", 1)]
    assert watch.outstanding is None  # the new version answered the request


def test_state_survives_a_checkpoint_round_trip() -> None:
    infos = {1: _info(1)}
    watch = ModelWatch("m", MonitorConfig(), infos.__getitem__)
    _feed(watch, Scenario(), 3_000)
    restored, _ = decode_analytics(encode_analytics(watch, Reorder()))
    restored.attach(infos.__getitem__, restored.claim)
    assert restored.summary() == watch.summary()
    a = _feed(watch, Scenario(drift="sudden", at=0), 2_000, seed=9)
    b = _feed(restored, Scenario(drift="sudden", at=0), 2_000, seed=9)
    assert a == b and a


def test_locate_change_and_unknown_detector() -> None:
    assert locate_change(np.array([0.0] * 100 + [1.0] * 50)) == 100
    with pytest.raises(ValueError, match="unknown concept-drift detector"):
        ConceptDrift("nope")


def test_a_checkpoint_with_held_events_restores_them() -> None:
    infos = {1: _info(1)}
    watch = ModelWatch("m", MonitorConfig(), infos.__getitem__)
    _feed(watch, Scenario(), 600)
    held = Reorder()
    held.push(0, 5, Scored("e", 5, {"x0": 1.0}, 1, 0.5, 1), now_ms=0)
    held.push(1, 4, Joined("f", 4, {"x0": 2.0}, 0, 0.25, 1, "m", 0, 9, 5), now_ms=0)
    restored_watch, restored_held = decode_analytics(encode_analytics(watch, held))
    assert len(restored_held) == 2 and restored_watch.versions[1].scored == 600
    released = restored_held.release(0, everything=True)
    assert [type(item).__name__ for item in released] == ["Joined", "Scored"]
    assert released == held.release(0, everything=True)


def _segment(drift: str, n: int, start: int, *, version: int = 1, seed: int) -> list:
    """``n`` events from event index ``start`` on (so segments follow each other in time), all
    on the flipped concept when ``drift`` is ``"flipped"``."""
    base = Scenario()
    scenario = Scenario(
        drift="sudden" if drift == "flipped" else "none",
        at=0,
        start_ts=base.start_ts + start * base.step_ms,
    )
    return _items(scenario, n, version, seed)


def _signals(watch: ModelWatch, items: list) -> list:
    raised = []
    for signals in watch.feed(items):
        raised += signals.alerts + signals.retrain
    return raised


def _labels_late(items: list, max_delay: int, seed: int) -> list:
    """``items`` with each label arriving up to ``max_delay`` events after its event, in the order
    the labels arrive (as the monitor releases joins whose event time is already behind it)."""
    scored = [x for x in items if not isinstance(x, Joined)]
    joined = [x for x in items if isinstance(x, Joined)]
    arrives = np.arange(len(joined)) + np.random.default_rng(seed).integers(
        0, max_delay, len(joined)
    )
    order = sorted(range(len(joined)), key=lambda i: (arrives[i], i))
    out: list = []
    due = 0
    for i, event in enumerate(scored):
        out.append(event)
        while due < len(order) and arrives[order[due]] <= i:
            out.append(joined[order[due]])
            due += 1
    return out + [joined[k] for k in order[due:]]


@pytest.mark.parametrize(("max_delay", "seed"), [(500, 7), (2_000, 11)])
def test_late_labels_from_before_a_flip_do_not_make_it_two_changes(
    max_delay: int, seed: int
) -> None:
    """Seen in CI: after a sudden flip, labels of events from before it kept arriving, the error
    level read as back down, and the detector's second firing during the same rise raised a second
    alert and request. Only events later than a detection can say the error recovered."""
    watch = ModelWatch("m", MonitorConfig(), {1: _info(1)}.__getitem__)
    stream = _segment("none", 6_000, 0, seed=seed) + _segment(
        "flipped", 4_000, 6_000, seed=seed + 1_000
    )
    raised = _signals(watch, _labels_late(stream, max_delay, seed))
    said = [getattr(r, "state", "request") for r in raised]
    assert said == ["firing", "request"], raised


def test_a_real_change_after_a_false_blip_raises_its_own_alert_and_request() -> None:
    """A 150-event blip fired the concept alert and took the one retrain claim; a real change
    20 s later was detected and placed but raised nothing: the alert was still firing and the
    claim still held. A later change now supersedes both."""
    watch = ModelWatch("m", MonitorConfig(), {1: _info(1)}.__getitem__)
    stream = (
        _segment("none", 3_000, 0, seed=1)
        + _segment("flipped", 150, 3_000, seed=2)
        + _segment("none", 2_000, 3_150, seed=3)
        + _segment("flipped", 3_000, 5_150, seed=4)
    )
    raised = _signals(watch, stream)
    said = [getattr(r, "state", "request") for r in raised]
    assert said == ["firing", "request", "resolved", "firing", "request"], raised
    change_ts = Scenario().start_ts + 5_150 * Scenario().step_ms
    assert abs(raised[4].since_ts - change_ts) <= 20 * Scenario().step_ms
    assert raised[3].alert_id != raised[0].alert_id
    assert watch.claim.holder == raised[4].request_id


def test_a_change_inside_a_new_versions_first_labels_is_still_found() -> None:
    """A change at v2's 200th label, before the 500 the detector needs: the detection was
    dropped, and by the 500th label the detector had forgotten the level before it."""
    watch = ModelWatch("m", MonitorConfig(), {1: _info(1), 2: _info(2)}.__getitem__)
    _signals(watch, _segment("none", 3_000, 0, seed=1))
    raised = _signals(
        watch,
        _segment("none", 200, 3_000, version=2, seed=2)
        + _segment("flipped", 3_000, 3_200, version=2, seed=3),
    )
    concept = [r for r in raised if getattr(r, "kind", "") == "concept_drift"]
    requests = [r for r in raised if not hasattr(r, "kind")]
    assert [a.state for a in concept][:1] == ["firing"] and concept[0].version == 2, raised
    change_ts = Scenario().start_ts + 3_200 * Scenario().step_ms
    assert requests and abs(requests[0].since_ts - change_ts) <= 50 * Scenario().step_ms


def test_a_version_bad_from_its_first_label_raises_a_performance_alert_against_its_predecessor() -> (
    None
):
    """No threshold configured and no change inside v2 for a detector to find: v2 is simply
    wrong from its first label. Its error against v1's level raises a performance alert."""
    watch = ModelWatch("m", MonitorConfig(), {1: _info(1), 2: _info(2)}.__getitem__)
    assert _signals(watch, _segment("none", 3_000, 0, seed=1)) == []
    raised = _signals(watch, _segment("flipped", 1_000, 3_000, version=2, seed=2))
    worse = [r for r in raised if getattr(r, "feature", None) == "error_vs_predecessor"]
    assert [(a.kind, a.state, a.version) for a in worse] == [("performance", "firing", 2)], raised
    assert "v1's was" in worse[0].message


def test_a_good_successor_raises_nothing_against_its_predecessor() -> None:
    watch = ModelWatch("m", MonitorConfig(), {1: _info(1), 2: _info(2)}.__getitem__)
    _signals(watch, _segment("none", 3_000, 0, seed=1))
    assert _signals(watch, _segment("none", 3_000, 3_000, version=2, seed=2)) == []
