"""Monitor benchmark: prints tables; asserts nothing (figures go in the README).

    python benchmarks/monitor_bench.py detectors            # no servers needed
    python benchmarks/monitor_bench.py data-drift [--events 200000]

The monitor's throughput against the predictor's: ``benchmarks/pipeline_bench.py``.

1. ``detectors``: replayed error streams of four scenarios (sudden, gradual and recurring concept
   drift, and a stationary stream), each run with many seeds, through the monitor's concept-drift
   path (:class:`shared.concept.ConceptDrift`, warm-up as in the monitor) for every detector, next
   to river's ADWIN at its defaults and two baselines: never alert, and alert every N events.
   Reported per detector: mean detection delay (events from the change to the first alarm after
   it), missed drifts (no alarm within the horizon), and false alarms per million events (alarms
   on stationary streams, or before a change).
2. ``data-drift``: a stationary stream of N events through the monitor's data and prediction drift
   path (:class:`shared.monitoring.ModelWatch`), against the budget of
   ``DRIFTLINE_MONITOR_FALSE_ALARMS_PER_MILLION`` (1): alarms per million events; then the same with
   a 1-sd shift on two features, for the detection delay.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from shared.concept import ConceptDrift

WARMUP = 500
"""Labels before the monitor lets concept drift fire (DRIFTLINE_MONITOR_CONCEPT_MIN_LABELS)."""


@dataclass
class Outcome:
    delays: list[int]
    missed: int
    false_alarms: int
    events_watched: int


def error_stream(kind: str, n: int, change: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 errors of a classifier: 10% before the change; the drifted concept errs 45%."""
    p = np.full(n, 0.10)
    if kind == "sudden":
        p[change:] = 0.45
    elif kind == "gradual":
        ramp = np.clip((np.arange(n) - change) / 2_000, 0, 1)
        p = 0.10 + 0.35 * ramp
    elif kind == "recurring":
        phase = ((np.arange(n) - change) // 3_000) % 2 == 0
        p[change:] = np.where(phase[change:], 0.45, 0.10)
    return (rng.random(n) < p).astype(float)


def run_detector(name: str, errors: np.ndarray, change: int | None) -> tuple[list[int], int]:
    """Alarm indexes (after warm-up, rises only, as the monitor raises them)."""
    alarms: list[int] = []
    if name == "never":
        return alarms, 0
    if name.startswith("every-"):
        step = int(name.split("-")[1])
        return list(range(WARMUP + step, errors.size, step)), 0
    watch = ConceptDrift(name)
    for i, e in enumerate(errors):
        found = watch.update(float(e), ts_ms=i)
        if found is not None and i >= WARMUP:
            alarms.append(i)
    return alarms, 0


def evaluate(name: str, kind: str, seeds: int, n: int, change: int) -> Outcome:
    delays: list[int] = []
    missed = false_alarms = watched = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        errors = error_stream(kind, n, change, rng)
        alarms, _ = run_detector(name, errors, None if kind == "stationary" else change)
        if kind == "stationary":
            false_alarms += len(alarms)
            watched += n - WARMUP
            continue
        false_alarms += sum(1 for a in alarms if a < change)
        watched += change - WARMUP
        after = [a for a in alarms if a >= change]
        if after and after[0] - change <= 5_000:
            delays.append(after[0] - change)
        else:
            missed += 1
    return Outcome(delays, missed, false_alarms, watched)


def detectors(seeds: int) -> None:
    names = [
        "adwin",
        "adwin-default",
        "page-hinkley",
        "kswin",
        "ddm",
        "eddm",
        "never",
        "every-1000",
    ]
    scenarios = [
        ("sudden", 12_000, 6_000),
        ("gradual", 14_000, 6_000),
        ("recurring", 14_000, 6_000),
    ]
    print(f"# concept-drift detectors, {seeds} seeds per scenario; error 10% -> 45%")
    print(
        f"{'detector':14} {'sudden delay':>13} {'gradual delay':>14} {'recurring delay':>16} "
        f"{'missed':>7} {'false alarms/M':>15}"
    )
    for name in names:
        cells = []
        missed = false_alarms = watched = 0
        for kind, n, change in scenarios:
            outcome = evaluate(name, kind, seeds, n, change)
            cells.append(f"{np.mean(outcome.delays):.0f}" if outcome.delays else "-")
            missed += outcome.missed
            false_alarms += outcome.false_alarms
            watched += outcome.events_watched
        stationary = evaluate(name, "stationary", seeds, 50_000, 0)
        false_alarms += stationary.false_alarms
        watched += stationary.events_watched
        rate = false_alarms / watched * 1e6
        total = seeds * len(scenarios)
        print(
            f"{name:14} {cells[0]:>13} {cells[1]:>14} {cells[2]:>16} "
            f"{missed:>3}/{total:<3} {rate:>15.1f}"
        )


def data_drift(events: int) -> None:
    from shared.join import Scored  # noqa: PLC0415
    from shared.monitoring import ModelWatch, MonitorConfig, VersionInfo  # noqa: PLC0415
    from shared.profile import build_profile  # noqa: PLC0415
    from shared.synthetic import Scenario, SyntheticStream  # noqa: PLC0415

    weights = np.random.default_rng(12345).normal(size=10)
    train = SyntheticStream(Scenario(), seed=50).dataset(4_000)
    names = Scenario().features
    reference = build_profile(train.X, names, 1 / (1 + np.exp(-(train.X @ weights))))
    info = VersionInfo(1, "classification", names, reference, [0, 1])
    config = MonitorConfig()
    print(
        f"# data and prediction drift, {events:,} events, budget {config.false_alarms_per_million}/M"
    )
    for label, scenario in (
        ("stationary", Scenario(drift="none")),
        ("shift x2, x7 by 1 sd at event 5,000", Scenario(drift="covariate", at=5_000)),
    ):
        watch = ModelWatch("m", config, lambda _v: info)
        fired: list[tuple[int, str]] = []
        count = events if scenario.drift == "none" else 10_000
        for event in SyntheticStream(scenario, seed=3).events(count):
            x = np.array([event.features[n] for n in names])
            s = float(1 / (1 + np.exp(-(x @ weights))))
            scored = Scored(event.event_id, event.ts, event.features, int(s > 0.5), s, 1)
            for alert in watch.observe(scored).alerts:
                if alert.state == "firing":
                    fired.append((event.index, f"{alert.kind}:{alert.feature or '-'}"))
        if scenario.drift == "none":
            print(f"{label}: {len(fired)} alarms -> {len(fired) / count * 1e6:.1f} per million")
        else:
            print(f"{label}: " + ", ".join(f"{k} after {i - 5_000} events" for i, k in fired))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["detectors", "data-drift"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    if args.part == "detectors":
        detectors(args.seeds)
    else:
        data_drift(args.events)


if __name__ == "__main__":
    main()
