"""Helpers for predictor tests: a deployment of one's own, predictor processes, stream I/O."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaProducer

from shared.io.kafka import Kafka, KafkaEndpoint, make_producer, read_to_end
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.io.transport.admin import ensure_topics
from shared.models.algorithms import algorithm
from shared.models.signing import create_key_pair, load_signer
from shared.models.training import Candidate, Dataset, train
from shared.registry.store import Registry

FEATURES = ["a", "b", "c"]
READY_TIMEOUT_S = 60.0


@dataclass
class Deployment:
    """A driftline deployment of one test's own: prefixes, keys, registry, environment."""

    bootstrap: Kafka
    redis_url: str = field(repr=False)  # it carries the Redis password
    model: str
    topic_prefix: str
    home: Path
    registry: Registry
    env: dict[str, str] = field(repr=False)  # credentials among them
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def features_topic(self) -> str:
        return f"{self.topic_prefix}features"

    def topic(self, noun: str) -> str:
        return f"{self.topic_prefix}{noun}"

    def candidate(self, *, seed: int = 0, flip: bool = False, algo: str = "logistic") -> Candidate:
        """A signed model trained on synthetic data; ``flip`` inverts the concept."""
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(600, len(FEATURES)))
        signal_ = X @ np.array([1.5, -2.0, 0.5])
        y = ((signal_ < 0) if flip else (signal_ > 0)).astype(int).tolist()
        data = Dataset(FEATURES, X, y, None)
        signer = load_signer(self.home / "keys" / "signing.key", None)
        return train(data, model=self.model, algo=algorithm(algo), signer=signer)

    def register(self, candidate: Candidate | None = None, **kwargs: Any) -> int:
        return self.registry.register(candidate or self.candidate(**kwargs)).version

    def start_predictor(self, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        return self.start("predictor", "--model", self.model, *args, env=env)

    def start(self, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        """A `driftline ARGS...` service process of this deployment."""
        process = ServiceProcess(self, args, env or {})
        self.processes.append(process)
        return process


def make_deployment(
    bootstrap: Kafka,
    redis_url: str,
    home: Path,
    unique: str,
    partitions: int = 3,
    model: str | None = None,
    env: dict[str, str] | None = None,
) -> Deployment:
    """A deployment of its own on these servers; ``env``: more variables for its processes
    (the security settings of a broker that needs them)."""
    create_key_pair(home / "keys" / "signing.key", home / "keys" / "signing.pub")
    topic_prefix, redis_prefix = f"p{unique}.", f"p{unique}:"
    ensure_topics(bootstrap, _specs(topic_prefix, partitions))
    extra = env or {}
    env = {key: value for key, value in os.environ.items() if not key.startswith("DRIFTLINE_")}
    env.update(extra)
    env.update(
        DRIFTLINE_HOME=str(home),
        DRIFTLINE_KAFKA_BOOTSTRAP=str(bootstrap),
        DRIFTLINE_REDIS_URL=redis_url,
        DRIFTLINE_TOPIC_PREFIX=topic_prefix,  # the Redis prefix follows it: p{unique}:
        DRIFTLINE_HTTP_PORT="0",
        DRIFTLINE_LOG_LEVEL="INFO",
    )
    registry = Registry(connect_redis(redis_url), RedisKeys(redis_prefix))
    model = model or f"m{unique}"
    return Deployment(bootstrap, redis_url, model, topic_prefix, home, registry, env)


def _specs(prefix: str, partitions: int) -> list[Any]:
    from shared.core.topics import Topics  # noqa: PLC0415

    return Topics(prefix).specs(partitions)


def unsigned(candidate: Candidate, artifact: bytes, fmt: str = "pickle") -> Candidate:
    """``candidate`` carrying other bytes with no signature, as an attacker with Redis access would."""
    from shared.models.signing import sha256_hex  # noqa: PLC0415

    return replace(
        candidate, artifact=artifact, format=fmt, sha256=sha256_hex(artifact), signer=_NoSignature()
    )


class _NoSignature:
    """Leaves the record unsigned, as a version written straight into Redis would be."""

    scheme = ""

    def sign(self, header: bytes) -> str:
        return ""


class ServiceProcess:
    """A real `driftline SERVICE` process (predictor, monitor), its log in a file."""

    def __init__(self, deployment: Deployment, args: Iterable[str], env: dict[str, str]) -> None:
        command = shutil.which("driftline")
        assert command, "the driftline console script is not installed (pip install -e .)"
        args = list(args)
        self.service = args[0]
        self.log_path = deployment.home / f"{self.service}-{len(deployment.processes)}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [command, *args],
            env={**deployment.env, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def port(self) -> int:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            found = re.search(r"health and metrics on http://[\d.]+:(\d+)", self.log())
            if found:
                return int(found.group(1))
            assert self.proc.poll() is None, f"{self.service} exited early:\n{self.log()}"
            assert time.monotonic() < deadline, f"{self.service} never served HTTP:\n{self.log()}"
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port()}{path}", timeout=5
            ) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            status, body = self.get("/readyz")
            if status == 200:
                return
            assert self.proc.poll() is None, f"{self.service} exited:\n{self.log()}"
            assert time.monotonic() < deadline, (
                f"{self.service} not ready in {timeout_s} s ({body}):\n{self.log()}"
            )
            time.sleep(0.2)

    def metric(self, name: str, where: str = "") -> float:
        """Sum of the samples of ``name`` whose line contains ``where`` (a label, say)."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if where not in line:
                continue
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        self._log.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def event(event_id: str, rng: np.random.Generator) -> bytes:
    values = rng.normal(size=len(FEATURES))
    return json.dumps(
        {"event_id": event_id, "features": dict(zip(FEATURES, values.tolist(), strict=True))}
    ).encode()


class Stream:
    """Produces feature events on a thread at a steady rate, so a test can act mid-stream."""

    def __init__(
        self, deployment: Deployment, count: int, rate: float, prefix: str = "e", seed: int = 0
    ) -> None:
        self.ids = [f"{prefix}{i}" for i in range(count)]
        self.sent = 0
        self._deployment = deployment
        self._rate = rate
        self._rng = np.random.default_rng(seed)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _run(self) -> None:
        producer = make_producer(self._deployment.bootstrap, client_id="test-stream")
        try:
            started = time.monotonic()
            for index, event_id in enumerate(self.ids):
                producer.send(
                    self._deployment.features_topic,
                    key=event_id.encode(),
                    value=event(event_id, self._rng),
                )
                self.sent = index + 1
                ahead = started + self.sent / self._rate - time.monotonic()
                if ahead > 0:
                    producer.flush()
                    time.sleep(ahead)
            producer.flush()
        except BaseException as exc:
            self.error = exc
        finally:
            producer.close()

    def wait_sent(self, count: int, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.sent < count:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"only {self.sent} of {count} events sent"
            time.sleep(0.02)

    def join(self, timeout_s: float = 300.0) -> None:
        self._thread.join(timeout_s)
        assert self.error is None, self.error
        assert self.sent == len(self.ids)


def client_config(bootstrap: Kafka) -> dict[str, Any]:
    """A kafka-python client's connection options for ``bootstrap``."""
    if isinstance(bootstrap, KafkaEndpoint):
        return bootstrap.config()
    return {"bootstrap_servers": bootstrap}


def run_cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """`driftline ARGS...` as this deployment's user runs it: its output, never raising."""
    return subprocess.run(
        ["driftline", *args],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def send_raw(bootstrap: Kafka, topic: str, items: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(**client_config(bootstrap), acks="all", max_request_size=4 << 20)
    for key, value in items:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def read_all(
    bootstrap: Kafka, topic: str, *, committed_only: bool = False, settle_s: float = 0.0
) -> list[Any]:
    """Every record of ``topic`` up to its end now (or its last stable offset when committed_only)."""
    if settle_s:
        time.sleep(settle_s)
    return read_to_end(bootstrap, topic, committed_only=committed_only)


def wait_for_predictions(
    deployment: Deployment,
    ids: Iterable[str],
    timeout_s: float = 120.0,
    committed_only: bool = False,
) -> dict[str, list[tuple[int, int, int]]]:
    """``event_id -> [(version, partition, offset), ...]`` once every id in ``ids`` has one."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, list[tuple[int, int, int]]] = {}
        for record in read_all(
            deployment.bootstrap, deployment.topic("predictions"), committed_only=committed_only
        ):
            data = json.loads(record.value)
            found.setdefault(data["event_id"], []).append(
                (data["version"], record.partition, record.offset)
            )
        missing = wanted - set(found)
        if not missing:
            return found
        assert time.monotonic() < deadline, (
            f"{len(missing)} of {len(wanted)} events have no prediction, e.g. {sorted(missing)[:5]}"
        )
        time.sleep(1.0)


def versions_never_go_backwards(found: dict[str, list[tuple[int, int, int]]]) -> bool:
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for entries in found.values():
        for version, partition, offset in entries:
            by_partition.setdefault(partition, []).append((offset, version))
    for entries in by_partition.values():
        ordered = [version for _, version in sorted(entries)]
        if any(later < earlier for earlier, later in itertools.pairwise(ordered)):
            return False
    return True
