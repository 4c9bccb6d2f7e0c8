"""The Grafana dashboard and the alert rules against a real Prometheus (Debian's) that scraped
real predictor, monitor, trainer and notifier processes: every panel's query, and each template
variable's, returns data without error, and every rule evaluates."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from services.cli.demo.synthetic import Scenario
from tests.conftest import free_port
from tests.harness.monitor import produce, register_model, score, start_monitor, wait_joined
from tests.harness.predictor import Deployment, ServiceProcess, send_raw
from tests.harness.receiver import receiving
from tests.harness.trainer import start_trainer

pytestmark = pytest.mark.integration

OBSERVABILITY = Path(__file__).parents[2] / "shared" / "infra" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "driftline.json"
RULES = OBSERVABILITY / "prometheus-rules.yml"
PROMETHEUS = shutil.which("prometheus")
RATE_WINDOW = "30s"
"""What Grafana's $__rate_interval becomes here: Prometheus scrapes every second."""


def dashboard_queries(deployment: str, model: str) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every panel target, Grafana's variables filled in."""
    board = json.loads(DASHBOARD.read_text())
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$deployment", deployment)
                .replace("$model", model)
                .replace("$__rate_interval", RATE_WINDOW)
                .replace("$__range", "5m")
            )
            found.append((panel["title"], expr))
    return found


def _get(port: int, path: str, **params: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        answer: dict[str, Any] = json.loads(reply.read())
    assert answer["status"] == "success", answer
    return answer


def _config(deployment: str, targets: dict[str, int]) -> str:
    jobs = "".join(
        f"  - job_name: driftline-{service}\n"
        f"    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
        f"        labels: {{deployment: '{deployment}'}}\n"
        for service, port in targets.items()
    )
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{RULES}']\n"
        f"scrape_configs:\n{jobs}"
    )


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is not installed")
def test_every_dashboard_query_returns_data_from_prometheus_scraping_the_services(
    deployment: Deployment, tmp_path: Path
) -> None:
    # Two features shift at event 2,000 of 6,000: data drift alerts, delivered by the notifier.
    scenario = Scenario(drift="covariate", at=2_000, shifted=(2, 7), shift=2.0)
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 6_000, serving, seed=4)
    with receiving() as hook:
        predictor = deployment.start_predictor()
        monitor = start_monitor(deployment)
        trainer = start_trainer(deployment, "logistic")
        notify = deployment.start(
            "notify",
            "--webhook",
            hook.url,
            env={
                "DRIFTLINE_NOTIFY_GROUP_WAIT_S": "1",
            },
        )
        services = {
            "predictor": predictor,
            "monitor": monitor,
            "trainer": trainer,
            "notify": notify,
        }
        for process in services.values():
            process.wait_ready()
        prometheus, port = _start_prometheus(deployment, services, tmp_path)
        try:
            _feed(deployment, scored)
            wait_joined(deployment, monitor, len(scored.events))
            hook.wait_for(lambda got: len(got) >= 1, timeout_s=60, what="a drift notification")
            _wait_scraped(port, monitor)
            _check(deployment, port)
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
    for process in services.values():
        assert process.stop() == 0


def _start_prometheus(
    deployment: Deployment, services: dict[str, ServiceProcess], tmp_path: Path
) -> tuple[subprocess.Popen[bytes], int]:
    assert PROMETHEUS is not None
    name = deployment.topic_prefix.rstrip(".")
    config = tmp_path / "prometheus.yml"
    config.write_text(_config(name, {s: p.port() for s, p in services.items()}))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(port, "/api/v1/status/buildinfo")
            return process, port
        except OSError:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "prometheus did not answer"
            time.sleep(0.5)


def _feed(deployment: Deployment, scored: Any) -> None:
    """The stream, and a hostile record for each service that dead-letters: a feature of the
    wrong kind, a label that is no JSON, an alert record that is not an alert."""
    produce(deployment, scored, predictions=False, rate=4_000)
    bad_event = {"event_id": "bad-1", "features": {"x0": "not a number", "x1": 0.0}}
    send_raw(
        deployment.bootstrap,
        deployment.topic("features"),
        [(b"bad-1", json.dumps(bad_event).encode())],
    )
    send_raw(deployment.bootstrap, deployment.topic("labels"), [(b"bad-2", b"{not json")])
    send_raw(deployment.bootstrap, deployment.topic("alerts"), [(b"x", b'{"alert_id": 3}')])


def _wait_scraped(port: int, monitor: ServiceProcess) -> None:
    """Until Prometheus holds the monitor's last join counts and the alerts it raised."""
    deadline = time.monotonic() + 60
    while True:
        answer = _get(port, "/api/v1/query", query="sum(driftline_monitor_alerts_total)")
        if answer["data"]["result"]:
            break
        assert time.monotonic() < deadline, monitor.log()[-3000:]
        time.sleep(1)
    time.sleep(5)  # a few more scrapes after it


def _check(deployment: Deployment, port: int) -> None:
    name = deployment.topic_prefix.rstrip(".")
    empty = []
    for title, expr in dashboard_queries(name, deployment.model):
        answer = _get(port, "/api/v1/query", query=expr)  # an error fails here, with its reason
        if not answer["data"]["result"]:
            empty.append(f"{title}: {expr}")
    assert empty == [], "queries without data:\n" + "\n".join(empty)
    # The template variables: the deployment from build info, the model from the predictor.
    values = _get(port, "/api/v1/label/deployment/values", **{"match[]": "driftline_build_info"})
    assert name in values["data"]
    models = _get(
        port,
        "/api/v1/label/model/values",
        **{"match[]": f'driftline_predictor_events_in_total{{deployment="{name}"}}'},
    )
    assert models["data"] == [deployment.model]
    # Every alert rule evaluates without error on these series.
    rules = [r for g in _get(port, "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    assert len(rules) == 8
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
