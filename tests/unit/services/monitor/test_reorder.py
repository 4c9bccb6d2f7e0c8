"""Event-time reordering across partitions (:class:`services.monitor.reorder.Reorder`) against a plain model
of what it must do: release, oldest first, what every active partition has passed."""

from __future__ import annotations

import random

import pytest

from services.monitor.reorder import Reorder
from services.monitor.state import dumps, loads, migrate


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


@pytest.mark.parametrize(
    "old",
    [
        # before 2026-12-01: a heap of (ts, arrival, item)
        {"_heap": [(5, 2, "b"), (9, 3, "c"), (5, 1, "a")], "_arrival": 3},
        # then, briefly: a list in arrival order, sorted at each release
        {"_held": [(9, "c"), (5, "a"), (5, "b")]},
    ],
)
def test_an_older_checkpoints_held_events_come_out_in_order(old: dict[str, object]) -> None:
    state = {
        key: value
        for key, value in Reorder().__dict__.items()
        if key not in ("_new", "_runs", "_size")
    }
    restored = migrate(Reorder, {**state, **old})
    restored = loads(dumps((None, restored)))[1]
    assert len(restored) == 3
    restored.push(0, 7, "x", now_ms=0)
    assert restored.release(0, everything=True) == ["a", "b", "x", "c"]
