"""Predictor benchmark: prints a table; asserts nothing (figures go in the README).

    driftline infra up && python benchmarks/predictor_bench.py [--events 50000]

1. Throughput: the predictor draining N preloaded events, next to a raw kafka-python
   consume -> produce pass-through of the same shape (poll, send, flush, commit) over the same
   topics (3 partitions), as a ratio.
2. Latency: events produced at half the predictor's throughput with ``ts`` = send time; latency is
   the prediction record's timestamp (set when the predictor produced it) minus ``ts``; p50/p99.
   Halfway through, v2 is promoted: the longest gap between two batches around the swap is
   reported next to the usual (median) gap.
3. Scoring: one batch of 500 rows against 500 single-row calls, for scikit-learn and River models.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from services.predictor.metrics import PredictorMetrics
from services.predictor.service import Predictor
from shared.core.settings import load_settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import DeadLetterWriter, make_consumer, make_producer
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport import open_consumer, open_producer
from shared.io.transport.admin import ensure_topics
from shared.models.algorithms import Scorer, algorithm, fit
from shared.models.serving import ServingModel
from shared.models.signing import Signer, Verifier
from shared.models.training import Dataset, train
from shared.registry.loading import load_version
from shared.registry.store import Registry

FEATURES = [f"f{i}" for i in range(10)]
SECRET = b"benchmark-secret-0123456789"
SWAPS = 5


def preload(
    bootstrap: str, topic: str, count: int, stamp_now: bool = False, rate: float | None = None
) -> None:
    producer = make_producer(bootstrap, client_id="bench-load", linger_ms=20)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(count, len(FEATURES))).round(5).tolist()
    started = time.monotonic()
    for index, row in enumerate(rows):
        event = {"event_id": f"e{index}", "features": dict(zip(FEATURES, row, strict=True))}
        if stamp_now:
            event["ts"] = int(time.time() * 1000)
        producer.send(topic, key=f"e{index}".encode(), value=json.dumps(event).encode())
        if rate is not None:
            ahead = started + (index + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    producer.close()


def pass_through(bootstrap: str, source: str, sink: str, count: int) -> float:
    """Events per second of a raw consume -> produce loop with the predictor's delivery shape."""
    consumer = make_consumer(
        bootstrap,
        group_id=f"bench-pass-{uuid.uuid4().hex[:6]}",
        topics=[source],
        max_poll_records=500,
    )
    producer = make_producer(bootstrap, client_id="bench-pass")
    done = 0
    started = None
    while done < count:
        polled = consumer.poll(timeout_ms=50, max_records=500)
        records = [r for batch in polled.values() for r in batch]
        if not records:
            continue
        started = started or time.perf_counter()
        for record in records:
            producer.send(sink, key=record.key, value=record.value)
        producer.flush()
        last: dict[TopicPartition, int] = {}
        for record in records:
            last[TopicPartition(record.topic, record.partition)] = record.offset
        consumer.commit({tp: OffsetAndMetadata(o + 1, "", -1) for tp, o in last.items()})
        done += len(records)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    producer.close()
    return count / elapsed


class Timed(Predictor):
    """The real predictor, noting when each batch finished (for the swap gap)."""

    batch_times: list[tuple[float, int]]
    processed = 0

    def _process(self, records: list[Any]) -> None:
        super()._process(records)
        self.processed += len(records)
        model = self._current_model()
        self.batch_times.append((time.monotonic(), model.version if model else 0))


def make_predictor(
    bootstrap: str, topics: Topics, model: ServingModel | None, loader: Any = None
) -> Timed:
    holder: dict[str, ServingModel | None] = {"model": model}
    group = f"bench-pred-{uuid.uuid4().hex[:6]}"
    client = load_settings().kafka_client
    producer = open_producer(client, bootstrap, client_id="bench-pred")
    predictor = Timed(
        model="bench",
        consumer=open_consumer(client, bootstrap, group_id=group, fetch_wait_ms=50),
        producer=producer,
        topics=topics,
        current_model=lambda: holder["model"],
        wait_for_model=lambda _timeout: holder["model"],
        dead_letters=DeadLetterWriter(producer, topics.dlq, "bench"),
        metrics=PredictorMetrics.create("bench"),
        group_id=group,
        batch_max=500,
        batch_wait_ms=50,
    )
    predictor.batch_times = []
    predictor.holder = holder  # type: ignore[attr-defined]
    return predictor


def wait_until(condition: Any, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark: gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.05)


def scoring_table(X: np.ndarray, y: list[int]) -> list[tuple[str, float, float]]:
    rows = []
    for name in ("logistic", "svm", "river-logistic"):
        algo = algorithm(name)
        fitted = fit(algo, "classification", {}, X, y, FEATURES)
        scorer = Scorer(fitted, algo.family, "classification", FEATURES, [0, 1])
        batch = X[:500]
        started = time.perf_counter()
        for _ in range(20):
            scorer.score(batch)
        batched = (time.perf_counter() - started) / (20 * 500)
        started = time.perf_counter()
        for row in batch:
            scorer.score(row[None, :])
        single = (time.perf_counter() - started) / 500
        rows.append((name, batched * 1e6, single * 1e6))
    return rows


@dataclass
class Bench:
    bootstrap: str
    prefix: str
    registry: Registry
    verifier: Verifier
    versions: list[int]
    X: np.ndarray
    y: list[int]

    def topics(self, name: str) -> Topics:
        topics = Topics(f"{self.prefix}{name}.")
        ensure_topics(self.bootstrap, topics.specs(3))
        return topics

    def serving(self, index: int) -> ServingModel:
        return load_version(self.registry, "bench", self.versions[index], self.verifier)


def setup() -> Bench:
    endpoints = Infra(load_settings()).endpoints()
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5_000, len(FEATURES)))
    y = (X @ rng.normal(size=len(FEATURES)) > 0).astype(int).tolist()
    signer = Signer.hmac(SECRET)
    registry = Registry(connect_redis(endpoints.redis_url), RedisKeys(prefix + ":"))
    versions = []
    for seed in range(SWAPS + 1):
        order = np.random.default_rng(seed).permutation(len(y))
        data = Dataset(FEATURES, X[order], [y[i] for i in order], None)
        candidate = train(data, model="bench", algo=algorithm("logistic"), signer=signer)
        versions.append(registry.register(candidate).version)
    return Bench(endpoints.bootstrap, prefix, registry, Verifier.hmac(SECRET), versions, X, y)


def dead_letters(predictor: Timed) -> float:
    registry = predictor._metrics.registry
    return sum(
        sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "driftline_predictor_dead_letters_total"
    )


def throughput(bench: Bench, events: int, rounds: int) -> tuple[list[float], list[float], float]:
    """Alternating rounds of pass-through and predictor on fresh topics: rates and dead letters."""
    raw_rates, rates, failed = [], [], 0.0
    for round_ in range(rounds):
        raw, topics = bench.topics(f"raw{round_}"), bench.topics(f"pred{round_}")
        print(f"round {round_ + 1}/{rounds}: preloading {events:,} events twice ...", flush=True)
        preload(bench.bootstrap, raw.features, events)
        preload(bench.bootstrap, topics.features, events)
        raw_rates.append(pass_through(bench.bootstrap, raw.features, raw.predictions, events))
        predictor = make_predictor(bench.bootstrap, topics, bench.serving(0))
        predictor.run(max_messages=events)
        rates.append(events / (predictor.batch_times[-1][0] - predictor.batch_times[0][0]))
        failed += dead_letters(predictor)
        predictor._consumer.close()
        predictor._producer.close()
    return raw_rates, rates, failed


@dataclass
class Latency:
    rate: float
    latencies: list[float]
    gaps: list[float]
    transitions: list[float]
    monotonic: bool


def latency(bench: Bench, rate: float, seconds: float = 20.0) -> Latency:
    """Events at ``rate`` with ts = send time; SWAPS promotions spread over the run."""
    topics = bench.topics("lat")
    count = int(rate * seconds)
    predictor = make_predictor(bench.bootstrap, topics, bench.serving(0))
    runner = threading.Thread(target=predictor.run, kwargs={"max_messages": count})
    runner.start()
    wait_until(lambda: predictor.ready, "the predictor to own its partitions")
    # Producers are other processes in real life; a thread would share the GIL with the predictor.
    producer = multiprocessing.get_context("spawn").Process(
        target=preload,
        args=(bench.bootstrap, topics.features, count),
        kwargs={"stamp_now": True, "rate": rate},
    )
    producer.start()
    print(f"latency run: {count:,} events at {rate:,.0f}/s with {SWAPS} swaps", flush=True)
    for index in range(1, SWAPS + 1):
        due = index * count // (SWAPS + 1)
        wait_until(lambda due=due: predictor.processed >= due, f"{due} events scored")
        # What the watcher does: load and verify off the hot path, then replace one reference.
        predictor.holder["model"] = bench.serving(index)  # type: ignore[attr-defined]
    producer.join()
    runner.join()
    reader = KafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topics.predictions, p) for p in range(3)]
    reader.assign(parts)
    reader.seek_to_beginning(*parts)
    ends = reader.end_offsets(parts)
    latencies = []
    while any(reader.position(tp) < ends[tp] for tp in parts):
        for batch in reader.poll(timeout_ms=500).values():
            latencies.extend(r.timestamp - json.loads(r.value)["ts"] for r in batch)
    reader.close()
    served = predictor.batch_times
    flowing = [t for t, _ in served][10:-10]  # while the stream flows
    return Latency(
        rate=rate,
        latencies=latencies,
        gaps=[(b - a) * 1000 for a, b in itertools.pairwise(flowing)],
        transitions=[(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(served) if b[1] != a[1]],
        monotonic=[v for _, v in served] == sorted(v for _, v in served),
    )


def report(
    raw_rates: list[float],
    rates: list[float],
    failed: float,
    lat: Latency,
    scoring: list[tuple[str, float, float]],
) -> None:
    raw, rate = statistics.median(raw_rates), statistics.median(rates)
    rows = [
        (
            "pass-through, kafka-python consume -> produce, 3 partitions (median of rounds)",
            f"{raw:,.0f} events/s",
        ),
        (
            "predictor: decode, validate, score (logistic, 10 features), produce, commit",
            f"{rate:,.0f} events/s",
        ),
        (
            "predictor / pass-through",
            f"{rate / raw:.0%} (rounds: {', '.join(f'{p / r:.0%}' for p, r in zip(rates, raw_rates, strict=True))})",
        ),
        ("failed events (dead letters)", f"{failed:.0f}"),
        (
            f"latency ts -> prediction produced at {lat.rate:,.0f} events/s, p50 / p99",
            f"{np.percentile(lat.latencies, 50):.0f} / {np.percentile(lat.latencies, 99):.0f} ms",
        ),
        (
            "gap between batches: median / p99 / longest",
            f"{statistics.median(lat.gaps):.1f} / {np.percentile(lat.gaps, 99):.1f} / {max(lat.gaps):.1f} ms",
        ),
        (
            f"gap at each of {len(lat.transitions)} swaps (last batch of old version -> first of new)",
            ", ".join(f"{g:.0f}" for g in lat.transitions)
            + f" ms (median {statistics.median(lat.transitions):.1f})",
        ),
        ("versions never go back across batches", str(lat.monotonic)),
    ]
    rows += [
        (f"scoring {name}: batched / per-event, µs per event", f"{b:.2f} / {s:.1f} ({s / b:,.0f}x)")
        for name, b, s in scoring
    ]
    print("\n| measure | figure |\n|---|---|")
    for measure, figure in rows:
        print(f"| {measure} | {figure} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=30_000, help="events per throughput round")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput rounds (medians are reported)"
    )
    args = parser.parse_args()
    bench = setup()
    raw_rates, rates, failed = throughput(bench, args.events, args.rounds)
    lat = latency(bench, statistics.median(rates) / 2)
    report(raw_rates, rates, failed, lat, scoring_table(bench.X, bench.y))


if __name__ == "__main__":
    main()
