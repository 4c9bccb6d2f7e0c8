"""The per-partition join: any arrival order, expiry, orphans, late labels, duplicates, the cap."""

from __future__ import annotations

import itertools

from shared.join import JoinBuffer, Joined, Scored
from shared.messages import Label, Prediction


def _prediction(event_id: str, ts: int, version: int = 1) -> Prediction:
    return Prediction(
        event_id=event_id, ts=ts, model="m", version=version, prediction=1, latency_ms=1.0
    )


def _label(event_id: str, ts: int, label: int = 1) -> Label:
    return Label(event_id=event_id, ts=ts, label=label)


def test_every_arrival_order_joins_once() -> None:
    for order in itertools.permutations(["features", "prediction", "label"]):
        buf = JoinBuffer(window_ms=10_000)
        out = []
        for piece in order:
            if piece == "features":
                out += buf.add_features("e", 100, {"x": 1.0})
            elif piece == "prediction":
                out += buf.add_prediction(_prediction("e", 100))
            else:
                out += buf.add_label(_label("e", 500))
        joined = [o for o in out if isinstance(o, Joined)]
        scored = [o for o in out if isinstance(o, Scored)]
        assert len(joined) == 1 and len(scored) == 1, order
        assert joined[0].lag_ms == 400 and joined[0].features == {"x": 1.0}
        assert buf.counts["joined"] == 1 and buf.pending == 0


def test_expired_orphan_late_and_duplicates_are_counted() -> None:
    buf = JoinBuffer(window_ms=1_000)
    buf.add_features("p", 0, {"x": 1.0})
    buf.add_prediction(_prediction("p", 0))  # never labelled
    buf.add_label(_label("o", 10))  # never predicted
    buf.add_features("u", 20, {"x": 1.0})  # never scored
    buf.add_features("j", 30, {"x": 1.0})
    buf.add_prediction(_prediction("j", 30))
    buf.add_label(_label("j", 40))
    buf.add_prediction(_prediction("j", 30))  # a predictor rescored it
    buf.add_label(_label("j", 41))
    buf.add_features("later", 5_000, {"x": 1.0})  # moves the watermark past the window
    buf.expire()
    assert buf.add_label(_label("p", 5_001)) == []  # its prediction expired: late
    assert {k: v for k, v in buf.counts.items() if v} == {
        "joined": 1,
        "expired": 1,
        "orphans": 1,
        "unscored": 1,
        "duplicates": 2,
        "late": 1,
    }
    assert buf.pending == 1  # "later"


def test_memory_is_capped_and_evictions_are_counted() -> None:
    buf = JoinBuffer(window_ms=10**9, max_pending=100)
    for i in range(250):
        buf.add_prediction(_prediction(f"e{i}", i))
    assert buf.pending == 100
    assert buf.counts["evicted"] == 150
    assert buf.add_label(_label("e0", 300)) == []
    assert buf.counts["late"] == 1
