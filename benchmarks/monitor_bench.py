"""Monitor benchmark: prints tables; asserts nothing (figures go in the README).

    python benchmarks/monitor_bench.py detectors            # no servers needed
    python benchmarks/monitor_bench.py data-drift [--events 200000]
    python benchmarks/monitor_bench.py own-work [--events 60000] [--rounds 3] [--records N]

The monitor's throughput against the predictor's: ``benchmarks/pipeline_bench.py``.

1. ``detectors``: replayed error streams of four scenarios (sudden, gradual and recurring concept
   drift, and a stationary stream), each run with many seeds, through the monitor's concept-drift
   path (:class:`shared.stats.concept.ConceptDrift`, warm-up as in the monitor) for every detector, next
   to river's ADWIN at its defaults and two baselines: never alert, and alert every N events.
   Reported per detector: mean detection delay (events from the change to the first alarm after
   it), missed drifts (no alarm within the horizon), and false alarms per million events (alarms
   on stationary streams, or before a change).
2. ``data-drift``: a stationary stream of N events through the monitor's data and prediction drift
   path (:class:`services.monitor.analytics.watch.ModelWatch`), against the budget of
   ``DRIFTLINE_MONITOR_FALSE_ALARMS_PER_MILLION`` (1): alarms per million events; then the same with
   a 1-sd shift on two features, for the detection delay.
3. ``own-work``: the monitor's own work per event, without Kafka: decoding, join, examples,
   event-time reordering and analytics, driven through :class:`services.monitor.service.Monitor`
   with records built in memory (3 partitions, labels late by up to 500 events) and a producer
   that sends nothing. Prints CPU µs per event. Timing on a shared VM varies by 10-20% between
   identical runs; for a figure that does not, count instructions with valgrind over two lengths
   and take the difference (start-up cancels out)::

       for n in 4000 12000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
         "$(python -c 'import sys; print(sys.executable)')" \
         benchmarks/monitor_bench.py own-work --events 6000 --rounds 1 --records $n; done

   (instructions per event = (second total - first total) / 4,000: about two records per event;
   the real interpreter, not a pyenv shim, which is a shell script).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.stats.concept import ConceptDrift

if TYPE_CHECKING:
    from services.monitor.analytics.config import VersionInfo

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


def _model() -> tuple[list[str], np.ndarray, VersionInfo]:
    """The benchmarks' model: feature names, logistic weights, and the ``VersionInfo`` (with a
    reference profile from 4,000 training events) that the monitor watches."""
    from services.cli.demo.synthetic import Scenario, SyntheticStream  # noqa: PLC0415
    from services.monitor.analytics.config import VersionInfo  # noqa: PLC0415
    from shared.stats.profile import build_profile  # noqa: PLC0415

    names = Scenario().features
    weights = np.random.default_rng(12345).normal(size=len(names))
    train = SyntheticStream(Scenario(), seed=50).dataset(4_000)
    reference = build_profile(train.X, names, 1 / (1 + np.exp(-(train.X @ weights))))
    return names, weights, VersionInfo(1, "classification", names, reference, [0, 1])


def data_drift(events: int) -> None:
    from services.cli.demo.synthetic import Scenario, SyntheticStream  # noqa: PLC0415
    from services.monitor.analytics.config import MonitorConfig  # noqa: PLC0415
    from services.monitor.analytics.watch import ModelWatch  # noqa: PLC0415
    from services.monitor.join import Scored  # noqa: PLC0415

    names, weights, info = _model()
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


def own_work(events: int, rounds: int, records: int | None) -> None:
    import time  # noqa: PLC0415

    from kafka import TopicPartition  # noqa: PLC0415
    from kafka.consumer.fetcher import ConsumerRecord  # noqa: PLC0415

    from services.cli.demo.synthetic import Scenario, SyntheticStream  # noqa: PLC0415
    from services.monitor.analytics.config import MonitorConfig  # noqa: PLC0415
    from services.monitor.join import JoinBuffer  # noqa: PLC0415
    from services.monitor.metrics import MonitorMetrics  # noqa: PLC0415
    from services.monitor.retrain import LocalClaim  # noqa: PLC0415
    from services.monitor.service import Monitor  # noqa: PLC0415
    from services.monitor.state import PartitionState  # noqa: PLC0415
    from shared.core.messages import Label, Prediction  # noqa: PLC0415
    from shared.core.topics import Topics  # noqa: PLC0415
    from shared.io.kafka import key_partition  # noqa: PLC0415

    partitions = 3
    names, weights, info = _model()
    stream = list(SyntheticStream(Scenario(), seed=3).events(events))
    scores = 1 / (
        1 + np.exp(-(np.array([[e.features[n] for n in names] for e in stream]) @ weights))
    )
    topics = Topics("bench.")
    offsets: dict[tuple[str, int], int] = {}

    def record(topic: str, partition: int, value: bytes, ts: int) -> tuple[int, ConsumerRecord]:
        offset = offsets[(topic, partition)] = offsets.get((topic, partition), -1) + 1
        return partition, ConsumerRecord(
            topic, partition, -1, offset, ts, 0, b"k", value, [], None, 1, len(value), -1
        )

    def partition_of(event_id: str) -> int:  # as driftline's and Java's producers place keys
        return key_partition(event_id.encode(), partitions)

    def label(index: int) -> tuple[int, ConsumerRecord]:
        event = stream[index]
        value = Label(event_id=event.event_id, ts=event.ts, label=int(event.label)).encode()
        return record(topics.labels, partition_of(event.event_id), value, event.ts)

    delays = np.random.default_rng(7).integers(0, 500, size=events)
    due = sorted((index + int(delays[index]), index) for index in range(events))
    arrivals: list[tuple[int, ConsumerRecord]] = []
    labelled = 0
    for index, event in enumerate(stream):
        prediction = Prediction(
            event_id=event.event_id,
            ts=event.ts,
            model="m",
            version=1,
            prediction=int(scores[index] > 0.5),
            score=float(scores[index]),
            latency_ms=0.1,
            features=event.features,
        ).encode()
        arrivals.append(
            record(topics.predictions, partition_of(event.event_id), prediction, event.ts)
        )
        while labelled < events and due[labelled][0] <= index:
            arrivals.append(label(due[labelled][1]))
            labelled += 1
    arrivals += [label(index) for _, index in due[labelled:]]
    arrivals = arrivals[:records]

    class Sent:
        def failed(self) -> bool:
            return False

    class Producer:
        def send(self, *args: object, **kwargs: object) -> Sent:
            return Sent()

    print(f"# the monitor's own work, no Kafka: {events:,} events, {len(arrivals):,} records")
    for number in range(rounds):
        monitor = Monitor(
            model="m",
            consumer=None,
            producer=Producer(),  # type: ignore[arg-type]
            topics=topics,
            store=None,  # type: ignore[arg-type]
            describe=lambda _v: info,
            config=MonitorConfig(),
            dead_letters=None,  # type: ignore[arg-type]
            metrics=MonitorMetrics.create(f"m{number}"),
            retrain_claim=LocalClaim(MonitorConfig().retrain_timeout_ms),
        )
        monitor._examples_copartitioned = True
        monitor._label_partitions = partitions  # no consumer to ask
        for partition in range(partitions):
            monitor.partitions[partition] = PartitionState(JoinBuffer(3_600_000, 100_000), {})
        monitor.reorder.assign(set(range(partitions)), 0)
        started = time.process_time()
        for start in range(0, len(arrivals), 500):  # polls of 500 records
            polled: dict[TopicPartition, list[ConsumerRecord]] = {}
            for partition, found in arrivals[start : start + 500]:
                polled.setdefault(TopicPartition(found.topic, partition), []).append(found)
            for tp, batch in polled.items():
                monitor._process(tp, batch)
            monitor._flush_examples()
            now = int(time.monotonic() * 1000)
            for partition in range(partitions):
                monitor.reorder.busy(partition, now)
            monitor._analyse(monitor.reorder.release(now))
            for state in monitor.partitions.values():
                state.join.expire()
        monitor._analyse(monitor.reorder.release(int(time.monotonic() * 1000), everything=True))
        spent = time.process_time() - started
        joined = sum(state.join.counts["joined"] for state in monitor.partitions.values())
        print(
            f"round {number + 1}: {spent / (len(arrivals) / 2) * 1e6:.1f} CPU µs per event, {joined:,} joined"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["detectors", "data-drift", "own-work"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--events", type=int, default=None, help="200,000; own-work: 60,000")
    parser.add_argument("--rounds", type=int, default=3, help="own-work: times over the stream")
    parser.add_argument("--records", type=int, default=None, help="own-work: stop after N records")
    args = parser.parse_args()
    if args.part == "detectors":
        detectors(args.seeds)
    elif args.part == "data-drift":
        data_drift(args.events or 200_000)
    else:
        own_work(args.events or 60_000, args.rounds, args.records)


if __name__ == "__main__":
    main()
