"""driftline's Prometheus alert rules, checked and unit-tested by Prometheus's own promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
RULES = HERE.parents[2] / "shared" / "infra" / "observability" / "prometheus-rules.yml"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return found


def test_the_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_each_rule_fires_on_its_failure_and_not_on_a_healthy_neighbour() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", "rules_test.yml"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


OBSERVABILITY = RULES.parent
DASHBOARD = OBSERVABILITY / "grafana" / "driftline.json"


def test_the_compose_prometheus_config_passes_promtool_with_the_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "config", str(OBSERVABILITY / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_compose_alertmanager_config_passes_amtool() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip(
            "amtool is not installed (Debian/Ubuntu: apt-get install prometheus-alertmanager)"
        )
    result = subprocess.run(
        [amtool, "check-config", str(OBSERVABILITY / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The notifier's alerts carry an incident label: grouping on it pages once per cause.
    assert "group_by: [incident, alertname]" in (OBSERVABILITY / "alertmanager.yml").read_text()


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def test_every_dashboard_query_is_promql_that_promtool_parses(tmp_path: Path) -> None:
    """Each panel's query, Grafana's variables filled in, as a recording rule: promtool parses
    it (the integration test runs each against a Prometheus that scraped real services)."""
    rules = []
    for panel in _dashboard()["panels"]:
        for n, target in enumerate(panel.get("targets", [])):
            expr = (
                target["expr"]
                .replace("$deployment", "driftline")
                .replace("$model", ".*")
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h")
            )
            assert "$" not in expr, f"{panel['title']}: a variable Grafana does not fill: {expr}"
            rules.append({"record": f"dashboard:panel{panel['id']}_{n}", "expr": expr})
    assert len(rules) >= 20
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_covers_what_an_operator_looks_for_and_is_provisioned() -> None:
    board = _dashboard()
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    assert all(p.get("description") for p in panels)
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "driftline_predictor_events_in_total",
        "driftline_predictor_predictions_out_total",
        "driftline_predictor_batch_seconds_bucket",
        "driftline_predictor_active_version",
        "dead_letters_total",
        "driftline_monitor_metric",
        "driftline_monitor_drift",
        "driftline_monitor_data_quality",
        "driftline_monitor_label_coverage",
        "driftline_monitor_join_lag_seconds_bucket",
        "driftline_consumer_lag",
        "driftline_monitor_alerts_total",
        "driftline_notify_notifications_total",
    ):
        assert metric in exprs, metric
    assert all('deployment="$deployment"' in t["expr"] for p in panels for t in p["targets"])
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "deployment", "model"}
    provider = (OBSERVABILITY / "grafana" / "dashboards.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    assert "uid: prometheus" in (OBSERVABILITY / "grafana" / "datasources.yml").read_text()
