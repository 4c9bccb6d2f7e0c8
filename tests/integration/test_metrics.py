"""Every service's ``/metrics`` as Prometheus reads it: scraped from real processes that scored,
joined and trained on a real broker and Redis, and passed through ``promtool check metrics``."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from services.cli.demo.synthetic import Scenario
from tests.harness.monitor import produce, register_model, score, start_monitor, wait_joined
from tests.harness.predictor import Deployment, ServiceProcess
from tests.harness.receiver import receiving
from tests.harness.trainer import start_trainer

pytestmark = pytest.mark.integration

EVENTS = 2_000


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return found


def _scraped(process: ServiceProcess) -> str:
    status, text = process.get("/metrics")
    assert status == 200, text
    return text


def _lint(promtool: str, text: str) -> str:
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    return (result.stdout + result.stderr).strip() or ("ok" if result.returncode == 0 else "?")


def _lags(process: ServiceProcess, service: str, count: int) -> list[tuple[str, int, float]]:
    """``(topic, partition, lag)`` of ``service``'s consumer-lag series, once ``count`` show (or
    after 30 s, whatever shows then)."""
    pattern = re.compile(
        rf'^driftline_consumer_lag\{{partition="(\d+)",service="{service}",topic="([^"]+)"\}} (\S+)$',
        re.MULTILINE,
    )
    deadline = time.monotonic() + 30
    while True:
        found = [(t, int(p), float(v)) for p, t, v in pattern.findall(_scraped(process))]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_every_services_metrics_pass_promtool_with_build_process_and_lag(
    deployment: Deployment,
) -> None:
    promtool = _promtool()
    predictor = deployment.start_predictor()
    monitor = start_monitor(deployment)
    trainer = start_trainer(deployment, "logistic")
    with receiving() as hook:
        notify = deployment.start("notify", "--webhook", hook.url)
        _check(deployment, promtool, predictor, monitor, trainer, notify)


def _check(
    deployment: Deployment,
    promtool: str,
    predictor: ServiceProcess,
    monitor: ServiceProcess,
    trainer: ServiceProcess,
    notify: ServiceProcess,
) -> None:
    scenario = Scenario()
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, EVENTS, serving)
    for process in (predictor, monitor, trainer, notify):
        process.wait_ready()
    produce(deployment, scored, predictions=False, rate=4_000)  # the predictor scores them
    wait_joined(deployment, monitor, EVENTS)
    deadline = time.monotonic() + 60
    while monitor.metric("driftline_monitor_join_lag_seconds_count") < EVENTS:
        assert time.monotonic() < deadline, _scraped(monitor)[-3000:]
        time.sleep(0.5)  # published at each checkpoint (every 2 s here)

    partitions = 3  # the deployment fixture's topics
    services = [("predictor", predictor), ("monitor", monitor), ("trainer", trainer)]
    for service, process in [*services, ("notify", notify)]:
        text = _scraped(process)
        assert _lint(promtool, text) == "ok", f"{service}:\n{_lint(promtool, text)}"
        assert "_created" not in text  # one needless series per label set, off
        [info] = re.findall(r"^driftline_build_info\{(.*)\} 1\.0$", text, re.MULTILINE)
        assert f'service="{service}"' in info and 'kafka_client="confluent"' in info, info
        assert re.search(r'version="\d+\.\d+', info), info
        assert re.search(r"^process_resident_memory_bytes \d", text, re.MULTILINE), service
        assert re.search(rf'^driftline_ready\{{service="{service}"\}} 1\.0$', text, re.MULTILINE)
        assert "python_info{" in text
    # Consumer lag per topic and partition, of what each service reads (updated every 5 s).
    predictor_lag = _lags(predictor, "predictor", partitions)
    assert {topic for topic, _, _ in predictor_lag} == {deployment.topic("features")}
    assert len(predictor_lag) == partitions
    assert all(lag == 0.0 for _, _, lag in predictor_lag)  # every event scored
    monitor_lag = _lags(monitor, "monitor", 2 * partitions)
    assert {topic for topic, _, _ in monitor_lag} == {
        deployment.topic("predictions"),
        deployment.topic("labels"),
    }
    # The join lag is a histogram now (promtool refuses a "quantile" label on a gauge).
    assert monitor.metric("driftline_monitor_join_lag_seconds_count") == EVENTS
    assert monitor.metric("driftline_monitor_join_lag_seconds_bucket", 'le="+Inf"') == EVENTS
    notify_lag = _lags(notify, "notify", 1)
    assert [(t, p) for t, p, _ in notify_lag] == [(deployment.topic("alerts"), 0)]
    for process in (predictor, monitor, trainer, notify):
        assert process.stop() == 0
