"""docker-compose.yml checked against the Compose Specification (compose-spec's validating parser),
after YAML resolves its anchors: no Docker engine needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


def _load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_the_compose_file_is_valid_and_runs_the_whole_loop() -> None:
    spec = _load()
    PyCompose.from_json(json.dumps(spec))  # raises ValueError naming what is wrong
    services = spec["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["redis"]["image"].startswith("redis:")
    assert services["predictor"]["deploy"]["replicas"] == 2
    for name in ("kafka", "redis", "predictor", "monitor", "trainer", "notify", "prometheus"):
        assert "healthcheck" in services[name], name
    for name in ("predictor", "monitor", "trainer", "notify"):
        assert services[name]["build"] == "." and services[name]["command"][0] == name
    assert services["notify"]["command"][:3] == [
        "notify",
        "--alertmanager",
        "http://alertmanager:9093",
    ]
    assert services["demo"]["profiles"] == ["demo"]
    assert {"kafka-data", "redis-data"} <= set(spec["volumes"])
    assert (COMPOSE.parent / "Dockerfile").exists()


def test_the_validator_refuses_a_broken_file() -> None:
    spec = _load()
    spec["services"]["monitor"]["healthcheck"]["interval"] = "soon"
    with pytest.raises(ValueError, match="soon"):
        PyCompose.from_json(json.dumps(spec))


def test_prometheus_alertmanager_and_grafana_mount_files_that_exist() -> None:
    """Every file the observability services mount is in the repository, and Prometheus scrapes
    each driftline service on the port its command serves."""
    services = _load()["services"]
    for name in ("prometheus", "alertmanager", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (COMPOSE.parent / source).is_file(), f"{name} mounts {source}"
    scraped = (COMPOSE.parent / "shared/infra/observability/prometheus.yml").read_text()
    for name in ("predictor", "monitor", "trainer", "notify"):
        command = services[name]["command"]
        port = command[command.index("--http-port") + 1]
        assert f'names: ["{name}"]\n        type: A\n        port: {port}' in scraped, name
