"""Kafka client benchmark: CPU per event of the predictor on each client, against that client's
raw pass-through and against the loop a user would write by hand. Prints a table; asserts nothing.

    driftline infra up && python benchmarks/transport_bench.py [--events 100000 --rounds 3]

The predictor's loops drain the same preloaded topic (``--events`` feature events of 10 features, about 350
bytes each, over 3 partitions) with a fresh consumer group, in a fresh process, in interleaved
rounds. The figure is the CPU time of that process (all its threads: librdkafka's count) from its
first record to its last, per event, so start-up and other processes' load are left out;
events/s beside it is wall time over the same span.

- ``raw``: consume -> produce -> flush -> commit per polled batch, the predictor's delivery
  shape, with nothing decoded (the client's own cost);
- ``predictor``: driftline's predictor (:class:`services.predictor.service.Predictor`) serving a
  logistic regression;
- ``hand-written``: :func:`hand_written`, the confluent-kafka + orjson micro-batching loop a user
  would write instead of running driftline (decode, score the batch, encode, produce, commit),
  without validation, dead letters, metrics or hot swap;
- ``codec floor``: :func:`codec_floor`, the raw pass-through plus the least any loop must do to
  the records driftline's topics hold: decode each feature event with msgspec into a typed struct
  and encode a prediction carrying its features, nothing scored or checked. No predictor can
  cost less than this on the same client and messages.

The monitor's loops read ``--events`` predictions and their labels (each label up to 500 events
after its prediction, co-partitioned by event id), per joined event:

- ``monitor raw read``: :func:`raw_read`, both topics read and committed, nothing decoded;
- ``monitor codec floor``: :func:`monitor_codec_floor`, the raw read plus the least a monitor
  must do: decode both records with msgspec, join them in a dict, encode the example and send the
  examples once per partition and poll; no analytics, no checkpoints. No monitor can cost less.
- ``monitor``: driftline's monitor (:class:`services.monitor.service.Monitor`): decode, join,
  examples out, data, prediction and concept drift, rolling error, checkpoints to Redis.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from services.monitor.analytics.config import MonitorConfig
from services.monitor.main import FETCH
from services.monitor.metrics import MonitorMetrics
from services.monitor.retrain import LocalClaim
from services.monitor.service import Monitor
from services.monitor.state import MonitorStateStore
from services.predictor.metrics import PredictorMetrics
from services.predictor.service import Predictor
from shared.core.messages import Label, Prediction
from shared.core.schema import numeric_schema
from shared.core.settings import load_settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import DeadLetterWriter
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport import TP, ClientName, open_consumer, open_producer
from shared.io.transport.admin import ensure_topics
from shared.models.algorithms import Scorer, algorithm, fit
from shared.models.pipelines import remember_pandas_is_absent
from shared.models.serving import ServingModel

FEATURES = [f"f{i}" for i in range(10)]


def preload(bootstrap: str, topic: str, count: int) -> None:
    producer = open_producer("confluent", bootstrap, client_id="bench-load")
    rows = np.random.default_rng(0).normal(size=(count, len(FEATURES))).round(5).tolist()
    for index, row in enumerate(rows):
        event = {
            "event_id": f"e{index:08d}",
            "ts": int(time.time() * 1000),
            "features": dict(zip(FEATURES, row, strict=True)),
        }
        producer.send(topic, json.dumps(event).encode(), f"e{index:08d}".encode())
    while producer.flush(10.0).pending:
        pass
    producer.close()


def preload_joined(bootstrap: str, topics: Topics, count: int) -> None:
    """``count`` predictions of the benchmark's model and their labels, each label written up to
    500 events after its prediction, keyed by event id (co-partitioned, as the monitor reads)."""
    producer = open_producer("confluent", bootstrap, client_id="bench-load")
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(count, len(FEATURES))).round(5).tolist()
    scores = rng.random(count).tolist()
    late = rng.integers(0, 500, size=count).tolist()
    due = sorted((index + late[index], index) for index in range(count))
    now = int(time.time() * 1000) - 3_600_000
    labelled = 0

    def label(index: int) -> None:
        value = Label(event_id=f"e{index:08d}", ts=now + index, label=int(scores[index] > 0.4))
        producer.send(topics.labels, value.encode(), f"e{index:08d}".encode())

    for index in range(count):
        prediction = Prediction(
            event_id=f"e{index:08d}",
            ts=now + index,
            model="bench",
            version=1,
            prediction=int(scores[index] > 0.5),
            score=scores[index],
            latency_ms=0.5,
            features=dict(zip(FEATURES, rows[index], strict=True)),
        )
        producer.send(topics.predictions, prediction.encode(), f"e{index:08d}".encode())
        while labelled < count and due[labelled][0] <= index:
            label(due[labelled][1])
            labelled += 1
    for _, index in due[labelled:]:
        label(index)
    while producer.flush(10.0).pending:
        pass
    producer.close()


class _Span:
    """CPU and wall time from the first record to the last."""

    def __init__(self) -> None:
        self.cpu = self.wall = 0.0
        self.events = 0

    def first(self) -> None:
        if not self.cpu:
            self.cpu, self.wall = time.process_time(), time.perf_counter()

    def result(self) -> tuple[float, float]:
        cpu = time.process_time() - self.cpu
        wall = time.perf_counter() - self.wall
        return cpu / self.events * 1e6, self.events / wall


def _next_offsets(records: list[Any]) -> dict[TP, int]:
    return {TP(r.topic, r.partition): r.offset + 1 for r in records}


def raw(
    client: ClientName, bootstrap: str, source: str, sink: str, count: int
) -> tuple[float, float]:
    consumer = open_consumer(
        client, bootstrap, group_id=f"raw-{uuid.uuid4().hex[:8]}", fetch_wait_ms=50
    )
    producer = open_producer(client, bootstrap, client_id="bench-raw")
    consumer.subscribe([source])
    span = _Span()
    while span.events < count:
        records = consumer.poll(0.05, 500)
        if not records:
            continue
        span.first()
        for record in records:
            producer.send(sink, record.value, record.key)
        while producer.flush(5.0).pending:
            pass
        consumer.commit(_next_offsets(records))
        span.events += len(records)
    result = span.result()
    consumer.close()
    producer.close()
    return result


def raw_read(client: ClientName, bootstrap: str, topics: Topics, count: int) -> tuple[float, float]:
    """The monitor's floor: read its two inputs (a prediction and a label per event) and commit,
    nothing decoded; per event, so two records each."""
    consumer = open_consumer(
        client,
        bootstrap,
        group_id=f"rawmon-{uuid.uuid4().hex[:8]}",
        assignor="range",
        fetch_wait_ms=50,
        partition_fetch_bytes=FETCH["max_partition_fetch_bytes"],
    )
    consumer.subscribe([topics.predictions, topics.labels])
    span = _Span()
    records_read = 0
    while records_read < 2 * count:
        records = consumer.poll(0.05, 1_000)
        if not records:
            continue
        span.first()
        consumer.commit(_next_offsets(records))
        records_read += len(records)
    span.events = count
    result = span.result()
    consumer.close()
    return result


class _Event(msgspec.Struct):
    event_id: str
    features: dict[str, float]
    ts: int | None = None


class _Prediction(msgspec.Struct):
    event_id: str
    ts: int
    model: str
    version: int
    prediction: int
    score: float
    latency_ms: float
    features: dict[str, float]


class _Label(msgspec.Struct):
    event_id: str
    label: int
    ts: int | None = None


class _Example(msgspec.Struct):
    event_id: str
    ts: int
    model: str
    features: dict[str, float]
    label: int
    prediction: int
    version: int


def codec_floor(
    client: ClientName, bootstrap: str, source: str, sink: str, count: int
) -> tuple[float, float]:
    """The raw pass-through, plus decoding each feature event and encoding a prediction with its
    features (msgspec, typed): the JSON work any predictor of these topics does, and nothing else."""
    decode = msgspec.json.Decoder(_Event).decode
    encode = msgspec.json.Encoder().encode
    consumer = open_consumer(
        client, bootstrap, group_id=f"floor-{uuid.uuid4().hex[:8]}", fetch_wait_ms=50
    )
    producer = open_producer(client, bootstrap, client_id="bench-floor")
    consumer.subscribe([source])
    span = _Span()
    while span.events < count:
        records = consumer.poll(0.05, 500)
        if not records:
            continue
        span.first()
        for record in records:
            event = decode(record.value)
            body = _Prediction(event.event_id, event.ts or 0, "m", 1, 1, 0.5, 0.1, event.features)
            producer.send(sink, encode(body), record.key)
        while producer.flush(5.0).pending:
            pass
        consumer.commit(_next_offsets(records))
        span.events += len(records)
    result = span.result()
    consumer.close()
    producer.close()
    return result


def monitor_codec_floor(
    client: ClientName, bootstrap: str, topics: Topics, count: int
) -> tuple[float, float]:
    """The raw read, plus decoding both records (msgspec, typed), joining them in a dict and
    sending the encoded examples once per partition and poll: per joined event."""
    predictions = msgspec.json.Decoder(_Prediction).decode
    labels = msgspec.json.Decoder(_Label).decode
    encode = msgspec.json.Encoder().encode
    consumer = open_consumer(
        client,
        bootstrap,
        group_id=f"floormon-{uuid.uuid4().hex[:8]}",
        assignor="range",
        fetch_wait_ms=50,
        partition_fetch_bytes=FETCH["max_partition_fetch_bytes"],
    )
    producer = open_producer(client, bootstrap, client_id="bench-floormon", linger_ms=50)
    consumer.subscribe([topics.predictions, topics.labels])
    waiting: dict[str, _Prediction] = {}
    early: dict[str, _Label] = {}
    span = _Span()
    joined = 0
    while joined < count:
        records = consumer.poll(0.05, 1_000)
        if not records:
            continue
        span.first()
        out: dict[int, list[bytes]] = {}
        for record in records:
            if record.topic == topics.predictions:
                prediction = predictions(record.value)
                label = early.pop(prediction.event_id, None)
                if label is None:
                    waiting[prediction.event_id] = prediction
                    continue
            else:
                label = labels(record.value)
                found = waiting.pop(label.event_id, None)
                if found is None:
                    early[label.event_id] = label
                    continue
                prediction = found
            example = _Example(
                prediction.event_id,
                prediction.ts,
                prediction.model,
                prediction.features,
                label.label,
                prediction.prediction,
                prediction.version,
            )
            out.setdefault(record.partition, []).append(encode(example))
            joined += 1
        for partition, parts in out.items():
            producer.send(topics.examples, b"[" + b",".join(parts) + b"]", partition=partition)
        while producer.flush(5.0).pending:
            pass
        consumer.commit(_next_offsets(records))
    span.events = joined
    result = span.result()
    consumer.close()
    producer.close()
    return result


class _MeasuredMonitor(Monitor):
    span: _Span
    target: int

    def _process(self, tp: TP, records: list[Any]) -> None:
        self.span.first()
        super()._process(tp, records)
        joined = sum(state.join.counts["joined"] for state in self.state.partitions.values())
        if joined >= self.target:
            self.span.events = joined
            self.stop()


def monitor(
    client: ClientName, bootstrap: str, redis_url: str, topics: Topics, count: int
) -> tuple[float, float]:
    """driftline's monitor on the benchmark's predictions and labels, per joined event: decode,
    join, examples out, drift and error analytics, checkpoints to Redis."""
    from services.monitor.analytics.config import VersionInfo  # noqa: PLC0415
    from shared.stats.profile import build_profile  # noqa: PLC0415

    rng = np.random.default_rng(3)
    reference_rows = rng.normal(size=(4_000, len(FEATURES)))
    reference = build_profile(reference_rows, FEATURES, rng.random(4_000))
    info = VersionInfo(1, "classification", FEATURES, reference, [0, 1])
    group = f"mon-{uuid.uuid4().hex[:8]}"
    consumer = open_consumer(
        client,
        bootstrap,
        group_id=group,
        assignor="range",
        fetch_wait_ms=50,
        partition_fetch_bytes=FETCH["max_partition_fetch_bytes"],
    )
    producer = open_producer(client, bootstrap, client_id="bench-mon", linger_ms=50)
    store = MonitorStateStore(connect_redis(redis_url), RedisKeys(f"bench:{group}:"), "bench")
    config = MonitorConfig()
    measured = _MeasuredMonitor(
        model="bench",
        consumer=consumer,
        producer=producer,
        topics=topics,
        store=store,
        describe=lambda _version: info,
        config=config,
        dead_letters=DeadLetterWriter(producer, topics.dlq, "bench"),
        metrics=MonitorMetrics.create("bench"),
        retrain_claim=LocalClaim(config.retrain_timeout_ms),
        active_version=lambda: 1,
    )
    measured.span, measured.target = _Span(), count
    measured.run(timeout_s=600)
    result = measured.span.result()
    consumer.close()
    producer.close()
    return result


def hand_written(
    bootstrap: str, source: str, sink: str, count: int, model: ServingModel
) -> tuple[float, float]:
    """What a user writes by hand on confluent-kafka: decode with orjson, score the batch with the
    estimator, encode with orjson, produce, flush, commit."""
    import confluent_kafka  # noqa: PLC0415 - the reference loop calls the client itself
    import orjson  # noqa: PLC0415

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"hand-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50,
        }
    )
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    consumer.subscribe([source])
    estimator: Any = model.scorer.model
    span = _Span()
    while span.events < count:
        messages = consumer.consume(500, 0.05)
        if not messages:
            continue
        span.first()
        events = [orjson.loads(m.value()) for m in messages]
        X = np.array([[e["features"][f] for f in FEATURES] for e in events])
        scores = estimator.predict_proba(X)[:, 1]
        for message, event, score in zip(messages, events, scores.tolist(), strict=True):
            body = {
                "event_id": event["event_id"],
                "ts": event["ts"],
                "prediction": int(score > 0.5),
                "score": score,
                "model": model.name,
                "version": model.version,
            }
            producer.produce(sink, orjson.dumps(body), message.key())
        producer.flush(5.0)
        offsets = {}
        for m in messages:
            offsets[(m.topic(), m.partition())] = m.offset() + 1
        consumer.commit(
            offsets=[confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()],
            asynchronous=False,
        )
        span.events += len(messages)
    result = span.result()
    consumer.close()
    return result


class _Measured(Predictor):
    span: _Span

    def _process(self, records: list[Any]) -> None:
        self.span.first()
        super()._process(records)
        self.span.events += len(records)


def predictor(
    client: ClientName, bootstrap: str, topics: Topics, count: int, model: ServingModel
) -> tuple[float, float]:
    group = f"pred-{uuid.uuid4().hex[:8]}"
    consumer = open_consumer(
        client, bootstrap, group_id=group, assignor="cooperative-sticky", fetch_wait_ms=50
    )
    producer = open_producer(client, bootstrap, client_id="bench-pred")
    measured = _Measured(
        model=model.name,
        consumer=consumer,
        producer=producer,
        topics=topics,
        current_model=lambda: model,
        wait_for_model=lambda _timeout: model,
        dead_letters=DeadLetterWriter(producer, topics.dlq, "bench"),
        metrics=PredictorMetrics.create(model.name),
        group_id=group,
    )
    measured.span = _Span()
    measured.run(max_messages=count)
    result = measured.span.result()
    consumer.close()
    producer.close()
    return result


def _child(queue: Any, job: Callable[..., tuple[float, float]], *args: Any) -> None:
    # The model is made here, as a predictor's loading of a version makes it: compiled where it
    # can be, warmed up (the first batch would otherwise pay scikit-learn's lazy imports).
    model = model_for_bench()
    queue.put(job(*(model if arg == MODEL else arg for arg in args)))


def in_child(job: Callable[..., tuple[float, float]], *args: Any) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, job, *args))
    process.start()
    result: tuple[float, float] = queue.get(timeout=900)
    process.join()
    return result


MODEL = "<the benchmark's model>"
"""Stands for the model in a job's arguments (compared by value: a child imports this module
again); each child process makes its own."""


def model_for_bench() -> ServingModel:
    remember_pandas_is_absent()  # as the service's loading of a version does
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5_000, len(FEATURES)))
    y = (X @ rng.normal(size=len(FEATURES)) > 0).astype(int).tolist()
    schema = numeric_schema(FEATURES)
    algo = algorithm("logistic")
    fitted = fit(algo, "classification", {}, X, y, schema)
    scorer = Scorer(fitted, algo.family, "classification", FEATURES, [0, 1])
    scorer.compile(X[:64])
    scorer.score(X[:64])
    return ServingModel("bench", 1, "classification", tuple(FEATURES), scorer, schema)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="events per loop and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--only", nargs="*", help="loops to run (default all)")
    args = parser.parse_args()
    endpoints = Infra(load_settings()).endpoints()
    bootstrap, redis_url = endpoints.bootstrap, endpoints.redis_url
    prefix = f"tbench{uuid.uuid4().hex[:6]}"
    topics, joined = Topics(f"{prefix}."), Topics(f"{prefix}m.")
    events = args.events
    loops: dict[str, tuple[Callable[..., tuple[float, float]], tuple[Any, ...]]] = {
        "raw kafka-python": (
            raw,
            ("kafka-python", bootstrap, topics.features, topics.predictions, events),
        ),
        "raw confluent": (
            raw,
            ("confluent", bootstrap, topics.features, topics.predictions, events),
        ),
        "predictor kafka-python": (predictor, ("kafka-python", bootstrap, topics, events, MODEL)),
        "predictor confluent": (predictor, ("confluent", bootstrap, topics, events, MODEL)),
        "hand-written confluent + orjson": (
            hand_written,
            (bootstrap, topics.features, topics.predictions, events, MODEL),
        ),
        "codec floor confluent": (
            codec_floor,
            ("confluent", bootstrap, topics.features, topics.predictions, events),
        ),
        "monitor raw read kafka-python": (raw_read, ("kafka-python", bootstrap, joined, events)),
        "monitor raw read confluent": (raw_read, ("confluent", bootstrap, joined, events)),
        "monitor codec floor confluent": (
            monitor_codec_floor,
            ("confluent", bootstrap, joined, events),
        ),
        "monitor kafka-python": (monitor, ("kafka-python", bootstrap, redis_url, joined, events)),
        "monitor confluent": (monitor, ("confluent", bootstrap, redis_url, joined, events)),
    }
    chosen = {
        name: loop
        for name, loop in loops.items()
        if not args.only or any(o in name for o in args.only)
    }
    if any(not name.startswith("monitor") for name in chosen):
        ensure_topics(bootstrap, topics.specs(3))
        print(f"preloading {events:,} feature events ...", flush=True)
        preload(bootstrap, topics.features, events)
    if any(name.startswith("monitor") for name in chosen):
        ensure_topics(bootstrap, joined.specs(3))
        print(f"preloading {events:,} predictions and their labels ...", flush=True)
        preload_joined(bootstrap, joined, events)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in chosen}
    for round_ in range(args.rounds):
        for name, (job, job_args) in chosen.items():
            cpu, rate = in_child(job, *job_args)
            figures[name].append((cpu, rate))
            print(
                f"round {round_ + 1}/{args.rounds} {name:32s} {cpu:7.1f} CPU µs/event {rate:9,.0f} events/s",
                flush=True,
            )
    print(f"\n{args.events:,} events x {args.rounds} interleaved rounds, medians\n")
    print("| loop | CPU µs / event | events/s |\n|---|---|---|")
    for name, runs in figures.items():
        cpu = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[1] for r in runs)
        print(f"| {name} | {cpu:.1f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
