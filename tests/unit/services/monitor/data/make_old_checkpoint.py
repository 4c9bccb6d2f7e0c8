"""Writes ``old_checkpoint.pickle`` and ``old_checkpoint.json`` with driftline code from before
the monitor's modules moved out of ``shared/`` (commit 9c13d0c), for
``test_checkpoint.py::test_a_checkpoint_of_the_code_before_the_move_restores_and_carries_on``:

    git worktree add /tmp/old 9c13d0c
    cd /tmp/old && python /path/to/this/file.py /path/to/this/folder

The analytics of a classifier that has seen a concept flip (its alert firing, a retrain request
outstanding) and the events they still hold; the JSON has their summary then, and what the same
code raised on the next 3,000 events, which the restored state must raise too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def main(folder: Path) -> None:
    import numpy as np  # noqa: PLC0415
    from shared.join import Joined, Scored  # type: ignore[import-not-found]  # noqa: PLC0415
    from shared.monitor_state import dumps  # type: ignore[import-not-found]  # noqa: PLC0415
    from shared.monitoring import (  # type: ignore[import-not-found]  # noqa: PLC0415
        ModelWatch,
        MonitorConfig,
        VersionInfo,
    )
    from shared.profile import build_profile  # type: ignore[import-not-found]  # noqa: PLC0415
    from shared.reorder import Reorder  # type: ignore[import-not-found]  # noqa: PLC0415
    from shared.synthetic import Scenario, SyntheticStream  # type: ignore[import-not-found]  # noqa: PLC0415

    features = [f"x{i}" for i in range(4)]
    weights = np.random.default_rng(12345).normal(size=4)
    data = SyntheticStream(Scenario(n_features=4, start_ts=1_700_000_000_000), seed=50).dataset(
        2_000
    )
    scores = 1 / (1 + np.exp(-(data.X @ weights)))
    info = VersionInfo(
        1,
        "classification",
        features,
        build_profile(data.X, features, scores, sample_size=200),
        [0, 1],
    )
    config = MonitorConfig(
        metrics_window=200,
        metrics_period_s=5.0,
        drift_window=200,
        drift_every=100,
        cooldown_ms=20_000,
    )

    def items(scenario: Any, n: int, seed: int) -> list[Any]:
        out: list[Any] = []
        for event in SyntheticStream(scenario, seed=seed).events(n):
            x = np.array([event.features[f] for f in features])
            score = float(1 / (1 + np.exp(-(x @ weights))))
            p = int(score > 0.5)
            out.append(Scored(event.event_id, event.ts, event.features, p, score, 1))
            out.append(
                Joined(
                    event.event_id,
                    event.ts,
                    event.features,
                    p,
                    score,
                    1,
                    "m",
                    event.label,
                    event.ts,
                    0,
                )
            )
        return out

    def said(signals: list[Any]) -> list[list[Any]]:
        return [[a.alert_id, a.kind, a.state, a.ts] for s in signals for a in s.alerts] + [
            [r.request_id, r.since_ts] for s in signals for r in s.retrain
        ]

    watch = ModelWatch("m", config, lambda _v: info)
    stream = items(
        Scenario(n_features=4, drift="sudden", at=1_500, start_ts=1_700_000_000_000), 4_000, seed=1
    )
    before = said(watch.feed(stream[:5_000]))
    held = Reorder()
    for i, item in enumerate(stream[5_000:5_010]):
        held.push(i % 2, item.ts, item, now_ms=0)
    (folder / "old_checkpoint.pickle").write_bytes(dumps((watch, held)))
    summary = watch.summary()
    after = said(watch.feed(stream[5_000:]))
    (folder / "old_checkpoint.json").write_text(
        json.dumps({"before": before, "summary": summary, "after": after}, indent=1, default=str)
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
