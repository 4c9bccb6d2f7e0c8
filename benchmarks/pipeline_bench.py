"""Does one monitor keep up with one predictor? Prints a table; asserts nothing (figures go in the
README).

    driftline infra up && python benchmarks/pipeline_bench.py [--events 30000] [--rounds 3]

Each round preloads N feature events and their labels (3 partitions, 10 features, logistic
regression; labels late and out of order) on fresh topics, then runs real `driftline` processes of
this checkout (or of ``--checkout DIR``, to compare two commits on one machine):

1. ``predictor`` alone drains the N feature events into N predictions;
2. ``monitor`` alone drains those N predictions and N labels (2N records in) into joined events;
   before it, the benchmark itself reads those 2N records with kafka-python and does nothing else,
   for the floor of the monitor's CPU per event (the client parses every record in Python);
3. both at once on a second copy of the input, as in production: the monitor can go no faster
   than predictions appear, and the question is whether it falls behind (its lag grows from the
   first half of the run to the second) or keeps pace (the lag stays at a poll or two).

Rates come from the output records' own timestamps (a producer stamps each record when it is sent),
not from status the services publish: events per second from the first output to the last.
CPU per event is the process's user + system time (from ``/proc``) over its steady part, which is
steadier than wall-clock rates on a machine whose speed drifts. In the run together, the monitor's
lag is the predictions made minus the events joined, at each joined record's send time; its tail
is the time from the last prediction to the last joined event.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import pathlib
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for the tests' harness

from services.cli.demo.synthetic import Scenario  # noqa: E402
from services.monitor.main import FETCH  # noqa: E402
from shared.core.messages import decode_examples  # noqa: E402
from shared.core.settings import load_settings  # noqa: E402
from shared.infra.stack import Infra  # noqa: E402
from shared.io.kafka import read_to_end  # noqa: E402
from tests.harness.monitor import produce, register_model, score  # noqa: E402
from tests.harness.predictor import Deployment, make_deployment  # noqa: E402

TICK_S = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def code_env(env: dict[str, str], checkout: pathlib.Path) -> dict[str, str]:
    """``env`` for a child that must run ``checkout``'s code. The child also starts in
    ``checkout``: ``python -m`` puts the working directory first on the path, where a PYTHONPATH
    alone lost to it (until this was found, ``--checkout`` ran this checkout's code)."""
    return {**env, "PYTHONPATH": str(checkout)}


def check_checkout(checkout: pathlib.Path) -> None:
    """Stop unless a service started from ``checkout`` imports its code from there."""
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import services, shared; print(services.__file__, shared.__file__)",
        ],
        env=code_env(dict(os.environ), checkout),
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    stray = [path for path in found if not pathlib.Path(path).resolve().is_relative_to(checkout)]
    if stray:
        raise SystemExit(f"services started from {checkout} would run code from {stray}")
    print(f"# services run the code of {checkout}", flush=True)


@dataclass
class Service:
    """A running `driftline SERVICE` process and its CPU time, sampled every tick."""

    name: str
    process: subprocess.Popen[bytes]
    samples: list[tuple[float, float]]
    """(wall time, CPU seconds)."""

    @classmethod
    def start(cls, deployment: Deployment, checkout: pathlib.Path, *args: str) -> Service:
        command = [sys.executable, "-m", "services.cli", *args, "--model", deployment.model]
        with (deployment.home / f"{args[0]}.log").open("ab") as log:  # the child keeps its copy
            process = subprocess.Popen(
                command,
                env=code_env(deployment.env, checkout),
                cwd=checkout,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(args[0], process, [])

    def sample(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"the {self.name} exited early (exit {self.process.returncode})")
        self.samples.append((time.time(), cpu_seconds(self.process.pid)))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)

    def cpu_per_event(self, outputs: Outputs) -> float:
        """CPU µs per event between the first tick with output and the tick after the last
        output (start-up, imports and group join excluded)."""
        steady = [(t, cpu) for t, cpu in self.samples if outputs.count_by(t) > 0]
        done = next((s for s in steady if outputs.count_by(s[0]) >= outputs.total), steady[-1])
        first = steady[0]
        events = outputs.count_by(done[0]) - outputs.count_by(first[0])
        return (done[1] - first[1]) / max(1, events) * 1e6


@dataclass
class Outputs:
    """Output records of one topic: when each was sent and how many events it carried."""

    times: list[float]
    cumulative: list[int]

    @property
    def total(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def count_by(self, t: float) -> int:
        index = bisect.bisect_right(self.times, t)
        return self.cumulative[index - 1] if index else 0

    def rate(self) -> float:
        """Events per second from the first output record to the last (the first record's
        events excluded: they were made before the clock started)."""
        span = self.times[-1] - self.times[0]
        return (self.total - self.cumulative[0]) / span if span > 0 else float("nan")


def read_outputs(bootstrap: str, topic: str, *, batches: bool) -> Outputs:
    found = sorted(
        (r.timestamp / 1000, len(decode_examples(r.value)) if batches else 1)
        for r in read_to_end(bootstrap, topic)
    )
    return Outputs([t for t, _ in found], list(itertools.accumulate(n for _, n in found)))


class RecordCount:
    """Records in a topic, from its end offsets (one consumer kept open, nothing decoded)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._parts = [
            TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic) or ()
        ]

    def __call__(self) -> int:
        return sum(self._consumer.end_offsets(self._parts).values())

    def close(self) -> None:
        self._consumer.close()


class JoinedCount:
    """Events joined so far, read from ``examples`` as they come: each record is decoded once
    (re-reading the whole topic every second took CPU from the services being measured)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic) or ()]
        self._consumer.assign(parts)
        self._consumer.seek_to_beginning(*parts)
        self.total = 0

    def __call__(self) -> int:
        for records in self._consumer.poll(timeout_ms=0).values():
            self.total += sum(len(decode_examples(r.value)) for r in records)
        return self.total

    def close(self) -> None:
        self._consumer.close()


def run_until(services: list[Service], done: Any, timeout_s: float = 600.0) -> None:
    """Sample the services' CPU every tick until ``done()``; then stop them."""
    deadline = time.monotonic() + timeout_s
    checked = 0.0
    try:
        while True:
            for service in services:
                service.sample()
            if time.monotonic() - checked >= 1.0:  # reading the topic costs: once a second
                checked = time.monotonic()
                if done():
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up after {timeout_s:.0f} s")
            time.sleep(TICK_S)
    finally:
        for service in services:
            service.stop()


def reading_floor(bootstrap: str, topics: list[str], events: int) -> float:
    """CPU µs per event to read ``topics`` (all partitions, from the start) with kafka-python and
    do nothing else, with the monitor's fetch settings: what no Python monitor of these inputs can
    go below on this machine."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **FETCH)
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        total = sum(consumer.end_offsets(parts).values())
        started, read = time.process_time(), 0
        while read < total:
            read += sum(len(records) for records in consumer.poll(timeout_ms=500).values())
        return (time.process_time() - started) / events * 1e6
    finally:
        consumer.close()


@dataclass
class Round:
    predictor_rate: float
    predictor_cpu: float
    floor_cpu: float
    monitor_rate: float
    monitor_cpu: float
    together_predictor: float
    together_monitor: float
    lag_first_half: int
    lag_second_half: int
    tail_s: float


def one_round(events: int, monitors: int, checkout: pathlib.Path, number: int) -> Round:
    settings = load_settings()
    endpoints = Infra(settings).endpoints()
    bootstrap = endpoints.bootstrap
    scenario = Scenario(drift="sudden", at=events // 2)

    def deployment() -> Deployment:
        unique = uuid.uuid4().hex[:8]
        home = settings.home / "bench" / unique
        home.mkdir(parents=True)
        made = make_deployment(bootstrap, endpoints.redis_url, home, unique)
        made.env["DRIFTLINE_LOG_LEVEL"] = "WARNING"
        return made

    alone = deployment()
    _, serving = register_model(alone, scenario)
    scored = score(scenario, events, serving)
    print(f"round {number}: preloading {events:,} feature events and labels ...", flush=True)
    produce(alone, scored, rate=None, predictions=False)

    predictions = alone.topic("predictions")
    predictor = Service.start(alone, checkout, "predictor")
    made_so_far = RecordCount(bootstrap, predictions)
    run_until([predictor], lambda: made_so_far() >= events)
    made_so_far.close()
    made = read_outputs(bootstrap, predictions, batches=False)
    floor = reading_floor(bootstrap, [predictions, alone.topic("labels")], events)

    group = [Service.start(alone, checkout, "monitor") for _ in range(monitors)]
    examples = alone.topic("examples")
    counted = JoinedCount(bootstrap, examples)
    run_until(group, lambda: counted() >= events)
    counted.close()
    joined = read_outputs(bootstrap, examples, batches=True)

    both = deployment()
    register_model(both, scenario)
    produce(both, scored, rate=None, predictions=False)
    together = [Service.start(both, checkout, "predictor")]
    together += [Service.start(both, checkout, "monitor") for _ in range(monitors)]
    counted = JoinedCount(bootstrap, both.topic("examples"))
    run_until(together, lambda: counted() >= events)
    counted.close()
    made2 = read_outputs(bootstrap, both.topic("predictions"), batches=False)
    joined2 = read_outputs(bootstrap, both.topic("examples"), batches=True)
    # Falling behind shows as a lag that grows: compare the worst of each half of the run.
    middle = (joined2.times[0] + joined2.times[-1]) / 2
    lags = [(t, made2.count_by(t) - joined2.count_by(t)) for t in joined2.times]
    first_half = max((lag for t, lag in lags if t < middle), default=0)
    second_half = max((lag for t, lag in lags if t >= middle), default=0)

    return Round(
        predictor_rate=made.rate(),
        predictor_cpu=predictor.cpu_per_event(made),
        floor_cpu=floor,
        monitor_rate=joined.rate(),
        monitor_cpu=sum(m.cpu_per_event(joined) for m in group),
        together_predictor=made2.rate(),
        together_monitor=joined2.rate(),
        lag_first_half=first_half,
        lag_second_half=second_half,
        tail_s=joined2.times[-1] - made2.times[-1],
    )


def report(rounds: list[Round], events: int, monitors: int) -> None:
    def column(values: list[float], fmt: str) -> str:
        middle = statistics.median(values)
        return f"{middle:{fmt}} ({', '.join(f'{v:{fmt}}' for v in values)})"

    who = "one monitor" if monitors == 1 else f"{monitors} monitors in one group"
    rows = [
        ("predictor alone: events/s", column([r.predictor_rate for r in rounds], ",.0f")),
        (f"{who} alone: joined events/s", column([r.monitor_rate for r in rounds], ",.0f")),
        (
            "monitor / predictor",
            column([r.monitor_rate / r.predictor_rate for r in rounds], ".1f"),
        ),
        ("predictor: CPU µs per event", column([r.predictor_cpu for r in rounds], ",.0f")),
        (
            f"{'monitor' if monitors == 1 else 'monitors'}: CPU µs per event",
            column([r.monitor_cpu for r in rounds], ",.0f"),
        ),
        (
            "reading the monitor's two inputs and nothing else: CPU µs per event",
            column([r.floor_cpu for r in rounds], ",.0f"),
        ),
        (
            "together: predictor events/s",
            column([r.together_predictor for r in rounds], ",.0f"),
        ),
        ("together: joined events/s", column([r.together_monitor for r in rounds], ",.0f")),
        (
            "together: most events predicted but not yet joined, first half of the run",
            column([float(r.lag_first_half) for r in rounds], ",.0f"),
        ),
        (
            "together: the same, second half (growing: the monitor falls behind)",
            column([float(r.lag_second_half) for r in rounds], ",.0f"),
        ),
        (
            "together: last joined event after the last prediction, s",
            column([r.tail_s for r in rounds], ".2f"),
        ),
    ]
    print(f"\n{events:,} events per round, {len(rounds)} rounds: median (each round)")
    print("\n| measure | figure |\n|---|---|")
    for measure, figure in rows:
        print(f"| {measure} | {figure} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=30_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--monitors", type=int, default=1, help="monitor processes in one group")
    parser.add_argument(
        "--checkout",
        type=pathlib.Path,
        default=ROOT,
        help="run the services of this checkout (default: this one)",
    )
    args = parser.parse_args()
    check_checkout(args.checkout.resolve())
    rounds = [
        one_round(args.events, args.monitors, args.checkout.resolve(), n + 1)
        for n in range(args.rounds)
    ]
    report(rounds, args.events, args.monitors)


if __name__ == "__main__":
    main()
