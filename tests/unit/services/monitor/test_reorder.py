"""Event-time reordering across partitions (:class:`services.monitor.reorder.Reorder`) against a plain model
of what it must do: release, oldest first, what every active partition has passed."""

from __future__ import annotations

import random

import msgspec

from services.monitor.join import Joined, Scored
from services.monitor.reorder import Reorder, ReorderState


def test_releases_what_a_plain_model_releases_in_the_same_order() -> None:
    """Random pushes from three partitions (each mostly in event-time order, with jitter and
    equal times), releases at random moments, a cap on what is held, idle partitions: each release
    must equal the held items at or below the low watermark, sorted by time then arrival."""
    for seed in range(30):
        rng = random.Random(seed)
        reorder = Reorder(idle_ms=50, max_held=rng.choice([10, 1_000]))
        reorder.assign({0, 1, 2}, now_ms=0)
        model: list[tuple[int, int, str]] = []  # (ts, arrival, item)
        clock = {0: 0, 1: 0, 2: 0}
        now = 0
        for arrival in range(600):
            now += rng.randint(0, 3)
            partition = rng.choice([0, 1, 1, 2] if arrival < 400 else [0, 1])  # 2 goes quiet
            clock[partition] += rng.randint(0, 5)
            ts = clock[partition] - rng.choice([0, 0, 0, 7])  # now and then a late one
            item = f"{partition}/{arrival}"
            reorder.push(partition, ts, item, now_ms=now)
            model.append((ts, arrival, item))
            if rng.random() < 0.2:
                limit = reorder.watermark(now)
                model.sort()
                out = [e for e in model if limit is None or e[0] <= limit]
                rest = [e for e in model if not (limit is None or e[0] <= limit)]
                excess = max(0, len(rest) - reorder.max_held)
                out, rest = out + rest[:excess], rest[excess:]
                assert reorder.release(now) == [item for _, _, item in out], seed
                model = rest
                assert len(reorder) == len(model)
        model.sort()
        assert reorder.release(now, everything=True) == [item for _, _, item in model]
        assert len(reorder) == 0


def test_held_events_survive_a_checkpoint_in_order() -> None:
    reorder = Reorder()
    reorder.assign({0, 1}, now_ms=0)
    for ts, name in [(9, "c"), (5, "a"), (5, "b")]:
        reorder.push(0, ts, Scored(name, ts, {}, 0, None, 1), now_ms=0)
    reorder.release(0)  # partition 1 holds everything back: one sorted run, nothing out
    reorder.push(1, 7, Scored("x", 7, {}, 0, None, 1), now_ms=0)
    data = msgspec.msgpack.encode(reorder.state())
    restored = Reorder.from_state(msgspec.msgpack.decode(data, type=ReorderState[Scored | Joined]))
    assert len(restored) == 4
    assert [e.event_id for e in restored.release(0, everything=True)] == ["a", "b", "x", "c"]
