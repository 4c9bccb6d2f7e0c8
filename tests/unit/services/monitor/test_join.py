"""The per-partition join: any arrival order, expiry, orphans, late labels, duplicates, the cap."""

from __future__ import annotations

import itertools

from services.monitor.join import WATERMARK_RANK, JoinBuffer, Joined, Scored
from shared.core.messages import Label, Prediction


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
    for i in range(WATERMARK_RANK):  # move the watermark past the window: it takes this many
        buf.add_features(f"later{i}", 5_000, {"x": 1.0})
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
    assert buf.pending == WATERMARK_RANK  # "later..."


def test_memory_is_capped_and_evictions_are_counted() -> None:
    buf = JoinBuffer(window_ms=10**9, max_pending=100)
    for i in range(250):
        buf.add_prediction(_prediction(f"e{i}", i))
    assert buf.pending == 100
    assert buf.counts["evicted"] == 150
    assert buf.add_label(_label("e0", 300)) == []
    assert buf.counts["late"] == 1


def test_a_checkpointed_buffer_finishes_every_event_as_the_original_does() -> None:
    """Each kind of pending piece survives the checkpoint (msgpack and back); the
    restored buffer then joins, counts duplicates and late labels exactly as the original."""
    from services.monitor.state import PartitionState, decode_partition, encode_partition  # noqa: PLC0415

    def prediction(event_id: str, ts: int) -> Prediction:
        return Prediction(
            event_id=event_id,
            ts=ts,
            model="m",
            version=2,
            prediction=0.5,
            score=None,
            latency_ms=1.0,
            features={"x": ts / 7},
        )

    original = JoinBuffer(window_ms=1_000, max_pending=50, memory=10)
    original.add_prediction(prediction("expired", 0))
    original.add_prediction(prediction("done", 5))
    original.add_label(_label("done", 6))
    original.add_prediction(prediction("scored", 900))  # waits for its label
    original.add_label(_label("orphan", 901))  # waits for its prediction
    original.add_features("three-way", 902, {"x": 2.0})  # a feature event, no prediction yet
    for i in range(WATERMARK_RANK):  # move the watermark past "expired"
        original.add_prediction(prediction(f"later{i}", 1_500))
    original.expire()
    restored = decode_partition(encode_partition(PartitionState(original, {}))).join
    assert isinstance(restored, JoinBuffer)
    assert restored.pending == original.pending == 3 + WATERMARK_RANK

    def finish(buf: JoinBuffer) -> list[Scored | Joined]:
        return [
            *buf.add_label(_label("scored", 1_600, 0)),
            *buf.add_prediction(prediction("orphan", 901)),
            *buf.add_prediction(prediction("three-way", 902)),  # carries {"x": 902 / 7} too
            *buf.add_label(_label("three-way", 1_601)),
            *buf.add_label(_label("done", 1_602)),  # a duplicate
            *buf.add_label(_label("expired", 1_603)),  # late
        ]

    finished = finish(restored)
    assert finished == finish(original)
    assert restored.counts == original.counts
    assert restored.counts["late"] == 1 and restored.counts["duplicates"] == 1
    joined = {o.event_id: o for o in finished if isinstance(o, Joined)}
    assert sorted(joined) == ["orphan", "scored", "three-way"]
    assert joined["scored"].features == {"x": 900 / 7} and joined["scored"].label == 0
    assert joined["three-way"].features == {"x": 2.0}  # the feature event's, not the prediction's


def _with_features(event_id: str, ts: int) -> Prediction:
    return Prediction(
        event_id=event_id,
        ts=ts,
        model="m",
        version=1,
        prediction=1,
        latency_ms=1.0,
        features={"x": 1.0},
    )


def test_one_record_far_ahead_moves_the_watermark_nowhere() -> None:
    """A label stamped in the year 3000 once jumped the watermark: most valid events after it
    expired unjoined, and expiry stopped scanning behind it for good."""
    buf = JoinBuffer(window_ms=1_000)
    buf.add_label(_label("poison", 32_503_680_000_000))  # year 3000
    for i in range(100):
        buf.add_prediction(_with_features(f"e{i}", 10 * i))
        buf.expire()
    for i in range(100):
        buf.add_label(_label(f"e{i}", 10 * i + 5))
    assert buf.counts["joined"] == 100 and buf.counts["expired"] == 0
    assert buf.watermark < 2_000


def test_expiry_goes_by_event_time_not_arrival_order() -> None:
    """An event that arrived first but is stamped later does not shield older ones behind it."""
    buf = JoinBuffer(window_ms=1_000)
    buf.add_prediction(_with_features("young", 5_000))  # arrives first, expires last
    buf.add_prediction(_with_features("old", 100))
    for i in range(WATERMARK_RANK):
        buf.add_features(f"w{i}", 2_000, {"x": 1.0})
    buf.expire()
    assert buf.counts["expired"] == 1  # "old", although "young" is ahead of it in arrival
    assert buf.add_label(_label("old", 2_001)) == [] and buf.counts["late"] == 1
    assert [type(o).__name__ for o in buf.add_label(_label("young", 5_001))] == ["Joined"]


def test_the_expiry_heap_stays_near_the_pending_count() -> None:
    buf = JoinBuffer(window_ms=10**9)
    for i in range(20_000):
        buf.add_prediction(_with_features(f"e{i}", i))
        buf.add_label(_label(f"e{i}", i))
        if i % 1_000 == 0:
            buf.expire()
    buf.expire()
    assert buf.pending == 0 and len(buf._due) <= 1_000
