"""Mixed-type data benchmark: prints figures; asserts nothing (figures go in the README).

    python benchmarks/mixed_bench.py throughput [--events 20000 --rounds 5]
    python benchmarks/mixed_bench.py false-alarms [--events 1000000]
    python benchmarks/mixed_bench.py delay [--seeds 10]

1. throughput: CPU microseconds per event of the predictor's data plane (``handle``: decode, check
   against the schema, lay out rows, score with the pipeline, encode) and of the monitor's
   analytics (``ModelWatch.feed`` of scored and labelled events: windows, drift tests, data quality,
   rolling metrics, concept detector), on mixed events (ten numbers, one with 3% gaps, a category,
   a boolean) against numeric-only events of the same width (twelve numbers), each model trained by
   ``driftline train``'s code; interleaved rounds in one process, median of the rounds, and the
   ratio. The Kafka client's cost per record is the same for both and is left out (see
   ``predictor_bench.py`` and ``pipeline_bench.py`` for it).
2. false-alarms: the monitor's data-drift, prediction-drift and data-quality alerts on N stationary
   mixed events, per million, against the budget (``DRIFTLINE_MONITOR_FALSE_ALARMS_PER_MILLION``).
3. delay: events from a shift of ``channel=phone`` from 10% to 20% and to 40% until its data-drift
   alert, over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import Joined, Scored
from services.predictor.scoring import handle
from shared.models.algorithms import algorithm
from shared.models.serving import ServingModel
from shared.models.signing import Signer
from shared.models.training import Candidate, train

SIGNER = Signer.hmac(b"benchmark-secret-key")
NUMERIC = Scenario(n_features=12)
MIXED = Scenario(mixed=True)


def _train(scenario: Scenario) -> Candidate:
    data = SyntheticStream(scenario, seed=99).dataset(4_000)
    return train(data, model="m", algo=algorithm("logistic"), signer=SIGNER)


def _serving(candidate: Candidate) -> ServingModel:
    assert candidate.scorer is not None  # noqa: S101 - train() always sets it
    return ServingModel(
        "m", 1, candidate.task, tuple(candidate.features), candidate.scorer, candidate.schema
    )


def _info(candidate: Candidate) -> VersionInfo:
    return VersionInfo(
        1, candidate.task, candidate.features, candidate.reference, candidate.classes
    )


def _records(scenario: Scenario, count: int, seed: int) -> list[ConsumerRecord]:
    found = []
    for event in SyntheticStream(scenario, seed=seed).events(count):
        value = json.dumps({"event_id": event.event_id, "features": event.features}).encode()
        found.append(
            ConsumerRecord(
                "features", 0, 0, event.index, event.ts, 0, event.event_id.encode(), value, [],
                None, 1, len(value), -1,
            )
        )  # fmt: skip
    return found


def _joined_stream(scenario: Scenario, serving: ServingModel, count: int, seed: int) -> list[Any]:
    """Scored then joined items of ``count`` events, as the monitor feeds its analytics."""
    records = _records(scenario, count, seed)
    labels = [e.label for e in SyntheticStream(scenario, seed=seed).events(count)]
    out = handle(records, serving, received_at=time.time(), max_bytes=1 << 20)
    items: list[Any] = []
    for prediction, label in zip(out.predictions, labels, strict=True):
        features = prediction.features or {}
        items.append(
            Scored(
                prediction.event_id, prediction.ts, features, prediction.prediction,
                prediction.score, 1,
            )
        )  # fmt: skip
        items.append(
            Joined(
                prediction.event_id, prediction.ts, features, prediction.prediction,
                prediction.score, 1, "m", label, prediction.ts, 0,
            )
        )  # fmt: skip
    return items


def _cpu_us(work: Any, events: int) -> float:
    start = time.process_time()
    work()
    return (time.process_time() - start) / events * 1e6


def throughput(events: int, rounds: int) -> None:
    print(f"# CPU us per event, {events:,} events per round, {rounds} interleaved rounds (median)")
    kinds = {"numeric (12 numbers)": NUMERIC, "mixed (10 numbers, category, boolean)": MIXED}
    setups = {}
    for label, scenario in kinds.items():
        candidate = _train(scenario)
        serving = _serving(candidate)
        records = _records(scenario, events, seed=1)
        items = _joined_stream(scenario, serving, events, seed=1)
        setups[label] = (serving, records, items, _info(candidate))
    predictor: dict[str, list[float]] = {label: [] for label in kinds}
    monitor: dict[str, list[float]] = {label: [] for label in kinds}
    for _ in range(rounds):
        for label, (serving, records, items, info) in setups.items():
            batches = [records[i : i + 500] for i in range(0, len(records), 500)]

            def score(batches: list[Any] = batches, serving: ServingModel = serving) -> None:
                for batch in batches:
                    handle(batch, serving, received_at=0.0, max_bytes=1 << 20)

            def watch(items: list[Any] = items, info: VersionInfo = info) -> None:
                analytics = ModelWatch("m", MonitorConfig(), lambda _v: info)
                for start in range(0, len(items), 1_000):
                    analytics.feed(items[start : start + 1_000])

            predictor[label].append(_cpu_us(score, events))
            monitor[label].append(_cpu_us(watch, events))
    print(f"{'events':<40} {'predictor us/event':>19} {'monitor us/event':>17}")
    medians = {}
    for label in kinds:
        p, m = statistics.median(predictor[label]), statistics.median(monitor[label])
        medians[label] = (p, m)
        print(f"{label:<40} {p:>19.1f} {m:>17.1f}")
    (pn, mn), (pm, mm) = medians.values()
    print(f"{'mixed / numeric':<40} {pm / pn:>18.2f}x {mm / mn:>16.2f}x")


def _scored(scenario: Scenario, serving: ServingModel, count: int, seed: int) -> Iterator[Scored]:
    """Scored events in chunks (the predictor's data plane scores them)."""
    stream = SyntheticStream(scenario, seed=seed)
    done = 0
    while done < count:
        chunk = min(10_000, count - done)
        events = list(stream.events(chunk, start=done))
        records = [
            ConsumerRecord(
                "f", 0, 0, e.index, e.ts, 0, b"k",
                json.dumps({"event_id": e.event_id, "features": e.features}).encode(),
                [], None, 1, 1, -1,
            )
            for e in events
        ]  # fmt: skip
        for p in handle(records, serving, received_at=0.0, max_bytes=1 << 20).predictions:
            yield Scored(p.event_id, p.ts, p.features or {}, p.prediction, p.score, 1)
        done += chunk


def false_alarms(events: int, psi_threshold: float) -> None:
    candidate = _train(MIXED)
    serving, info = _serving(candidate), _info(candidate)
    config = MonitorConfig(psi_threshold=psi_threshold)
    watch = ModelWatch("m", config, lambda _v: info)
    fired: list[tuple[str, str | None]] = []
    started = time.process_time()
    batch: list[Scored] = []
    for scored in _scored(MIXED, serving, events, seed=7):
        batch.append(scored)
        if len(batch) == 1_000:
            for signals in watch.feed(batch):
                fired += [(a.kind, a.feature) for a in signals.alerts if a.state == "firing"]
            batch = []
    drift = [f for f in fired if f[0] in ("data_drift", "prediction_drift")]
    quality = [f for f in fired if f[0] == "data_quality"]
    print(
        f"# {events:,} stationary mixed events, PSI threshold {psi_threshold} "
        f"({time.process_time() - started:.0f} s CPU)"
    )
    print(
        f"data/prediction drift: {len(drift)} alarms, {len(drift) / events * 1e6:.2f} per million "
        f"(budget {config.false_alarms_per_million:g} per million) {drift}"
    )
    print(f"data quality: {len(quality)} alarms, {len(quality) / events * 1e6:.2f} per million")


def delay(seeds: int, psi_threshold: float) -> None:
    candidate = _train(MIXED)
    serving, info = _serving(candidate), _info(candidate)
    change = 3_000
    print(
        f"# events from a channel=phone shift at event {change:,} to its data-drift alert "
        f"(PSI threshold {psi_threshold})"
    )
    for share in (0.2, 0.4):
        delays: list[int] = []
        missed = 0
        for seed in range(seeds):
            scenario = Scenario(mixed=True, drift="categorical", at=change, phone_share=share)
            config = MonitorConfig(psi_threshold=psi_threshold)
            watch = ModelWatch("m", config, lambda _v: info)
            found = None
            for index, scored in enumerate(_scored(scenario, serving, change + 6_000, seed)):
                for alert in watch.observe(scored).alerts:
                    if alert.kind == "data_drift" and alert.state == "firing":
                        found = found if found is not None else index - change
                if found is not None:
                    break
            if found is None:
                missed += 1
            else:
                delays.append(found)
        shown = (
            f"median {statistics.median(delays):.0f}, min {min(delays)}, max {max(delays)}"
            if delays
            else "never"
        )
        print(
            f"10% -> {share:.0%}: detected in {len(delays)}/{seeds} runs, {shown} events; {missed} missed within 6,000"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["throughput", "false-alarms", "delay"])
    parser.add_argument("--events", type=int, default=None, help="20,000; false-alarms: 1,000,000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--psi", type=float, default=0.2, help="the PSI threshold (0.2)")
    args = parser.parse_args()
    if args.part == "throughput":
        throughput(args.events or 20_000, args.rounds)
    elif args.part == "false-alarms":
        false_alarms(args.events or 1_000_000, args.psi)
    else:
        delay(args.seeds, args.psi)


if __name__ == "__main__":
    main()
