"""Trainer benchmark: prints tables; asserts nothing (figures go in the README).

    python benchmarks/trainer_bench.py training [--sizes 1000,5000,20000,50000]   # no servers
    driftline infra up && python benchmarks/trainer_bench.py loop [--events 30000 --flip 5000]

1. ``training``: for every algorithm and window size, the time :func:`services.trainer.retraining.retrain`
   takes to fit a candidate on a flipped synthetic stream (10 features, classification; linear and
   ridge on its regression twin) and to judge it against a champion on the held-out quarter.
   RBF SVMs grow with the square of the rows; sizes above ``--rbf-max`` are left out.
2. ``loop``: real predictor, monitor and trainer processes; a stream of N events at a steady rate
   whose concept flips at ``--flip`` (the stream goes on long enough for the new version to
   serve). From Kafka record timestamps (wall clock when each record was
   written) and the trainer's metrics, the time from the flip to the new version serving, broken
   into: detection (flipped events produced -> concept alert), waiting for enough post-change
   examples, training and gate, and swap (promotion -> first prediction by the new version).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import uuid
from typing import Any

import numpy as np

from services.cli.demo.synthetic import Scenario, SyntheticStream
from services.trainer.retraining import TrainerConfig, retrain
from services.trainer.window import ExampleWindow, Stored
from shared.models.algorithms import ALGORITHMS, algorithm
from shared.models.serving import ServingModel
from shared.models.signing import Signer
from shared.models.training import train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # for tests' harness

SIGNER = Signer.hmac(b"benchmark-secret-0123456789")


def _window(scenario: Scenario, count: int) -> ExampleWindow:
    window = ExampleWindow(max_count=count)
    for i, event in enumerate(SyntheticStream(scenario, seed=1).events(count)):
        window.add(Stored(event.event_id, event.ts, event.features, event.label, 1, 0, i))
    return window


def _champion(scenario: Scenario, algo: str) -> ServingModel:
    data = SyntheticStream(scenario, seed=99).dataset(2_000)
    fitted = train(data, model="m", algo=algorithm(algo), signer=SIGNER)
    assert fitted.scorer is not None  # noqa: S101
    return ServingModel("m", 1, fitted.task, tuple(fitted.features), fitted.scorer)


def training(sizes: list[int], rbf_max: int) -> None:
    print("# candidate training + gate time (s) by window size; 10 features; flip at row 0")
    print("| algorithm | task | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for name, algo in ALGORITHMS.items():
        task = "regression" if "classification" not in algo.tasks else "classification"
        scenario = Scenario(task=task, drift="sudden", at=0)  # type: ignore[arg-type]
        champion = _champion(Scenario(task=task), name)  # type: ignore[arg-type]
        cells = []
        for size in sizes:
            if name == "svm-rbf" and size > rbf_max:
                cells.append("-")
                continue
            window = _window(scenario, size)
            config = TrainerConfig(algorithm=name, task=task, min_examples=10)  # type: ignore[arg-type]
            started = time.perf_counter()
            outcome = retrain(
                window,
                model="m",
                config=config,
                signer=SIGNER,
                champion=champion,
                request_id=None,
                since_ts=None,
            )
            seconds = time.perf_counter() - started
            cells.append(f"{seconds:.2f} ({outcome.kind})")
        print(f"| {name} | {task} | " + " | ".join(cells) + " |")


def loop(events: int, flip: int, rate: float) -> None:
    from shared.core.settings import load_settings  # noqa: PLC0415
    from shared.infra.stack import Infra  # noqa: PLC0415
    from tests.harness.monitor import (  # noqa: PLC0415
        produce,
        register_model,
        score,
        start_monitor,
    )
    from tests.harness.predictor import make_deployment, read_all  # noqa: PLC0415
    from tests.harness.trainer import start_trainer, wait_for  # noqa: PLC0415

    settings = load_settings()
    endpoints = Infra(settings).endpoints()
    home = settings.home / "bench" / uuid.uuid4().hex[:8]
    home.mkdir(parents=True)
    deployment = make_deployment(
        endpoints.bootstrap, endpoints.redis_url, home, uuid.uuid4().hex[:8]
    )
    scenario = Scenario(drift="sudden", at=flip)
    _, served = register_model(deployment, scenario)
    stream = score(scenario, events, served, seed=11)
    services = [
        deployment.start_predictor(),
        start_monitor(deployment),
        start_trainer(deployment, "logistic", env={"DRIFTLINE_TRAINER_MIN_EXAMPLES": "1000"}),
    ]
    try:
        for service in services:
            service.wait_ready()
        print(f"# closed loop: {events:,} events at {rate:,.0f}/s, concept flips at {flip:,}")
        produce(deployment, stream, predictions=False, rate=rate, max_label_delay=300)
        wait_for("v2", lambda: deployment.registry.active(deployment.model) == 2, services, 300)
        time.sleep(3)
        flip_id = stream.events[flip].event_id
        feature = _record_ms(deployment, read_all, "features", lambda m: m["event_id"] == flip_id)
        alert = _record_ms(deployment, read_all, "alerts", lambda m: m["kind"] == "concept_drift")
        request = _record_ms(deployment, read_all, "retrain", lambda m: True)
        registered = _record_ms(
            deployment, read_all, "model-events", lambda m: m["event"] == "registered"
        )
        promoted = _record_ms(
            deployment, read_all, "model-events", lambda m: m["event"] == "promoted"
        )
        served_v2 = _record_ms(deployment, read_all, "predictions", lambda m: m["version"] == 2)
        trainer = services[2]
        fit_s = trainer.metric("driftline_trainer_training_seconds_sum")
        lineage = deployment.registry.get(deployment.model, 2).trained_on
        post = (lineage["since_ts"] - stream.events[flip].ts) // scenario.step_ms
        print(f"change located {post:+d} events from the flip; trained on {lineage['examples']:,}")
        rows = [
            ("detection (flipped events produced -> concept alert)", (alert - feature) / 1000),
            ("alert -> retrain request", (request - alert) / 1000),
            ("waiting for post-change examples", (registered - request) / 1000 - fit_s),
            ("training + gate", fit_s),
            ("register -> promote", (promoted - registered) / 1000),
            ("swap (promoted -> first v2 prediction)", (served_v2 - promoted) / 1000),
        ]
        print("| phase | seconds |\n|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} |")
        print(f"| **flip -> new version serving** | **{(served_v2 - feature) / 1000:.2f}** |")
    finally:
        for service in services:
            service.stop()


def _record_ms(deployment: Any, read_all: Any, noun: str, match: Any) -> int:
    """Kafka timestamp (ms) of the first record of ``noun`` matching ``match``."""
    found = [
        r.timestamp
        for r in read_all(deployment.bootstrap, deployment.topic(noun))
        if match(json.loads(r.value))
    ]
    if not found:
        raise SystemExit(f"no matching record on {noun}")
    return int(np.min(found))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["training", "loop"])
    parser.add_argument("--sizes", default="1000,5000,20000,50000")
    parser.add_argument("--rbf-max", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--flip", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    args = parser.parse_args()
    if args.part == "training":
        training([int(n) for n in args.sizes.split(",")], args.rbf_max)
    else:
        loop(args.events, args.flip, args.rate)


if __name__ == "__main__":
    main()
