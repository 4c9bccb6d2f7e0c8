"""`driftline demo --fast --json` end to end, as a newcomer runs it, and the closed loop it shows:
predictor, monitor and trainer as separate processes over the real broker and Redis; a flipped
concept is detected, a better model is trained on post-change examples and promoted by itself,
predictions switch to it with no lost event, and the error recovers.

It runs against servers as production has them: a broker that takes only SASL_SSL (SCRAM, a CA of
its own) and a Redis that takes only a password, both started by `driftline infra up --secure`,
and passed to the demo as external servers with their credentials, the way an operator sets
them. No secret may appear in anything the run writes or prints."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.demo.synthetic import Scenario
from shared.core.settings import Settings
from shared.core.topics import deployment_redis_prefix
from shared.infra import redis as local_redis
from shared.infra.stack import Endpoints, Infra
from shared.io.keys import RedisKeys
from shared.registry.store import Registry
from tests.conftest import kernel_ports
from tests.harness.predictor import (
    Deployment,
    make_deployment,
    read_all,
    versions_never_go_backwards,
)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoints, Path]]:
    """A broker with only a SASL_SSL listener for clients, and a password-only Redis."""
    home = tmp_path_factory.mktemp("secure-servers")
    infra = Infra(Settings(home=home, infra_secure=True, **kernel_ports()))
    status = infra.up()
    try:
        assert status.kafka.security == "SASL_SSL" and status.redis.security == "password"
        yield infra.endpoints(), home
    finally:
        infra.down()


@pytest.fixture
def deployment(secure: tuple[Endpoints, Path], tmp_path: Path, unique: str) -> Deployment:
    endpoints, _ = secure
    return make_deployment(
        endpoints.kafka, endpoints.redis_url, tmp_path, unique, env=endpoints.env
    )


def _secrets(home: Path, deployment: Deployment) -> list[str]:
    """Every secret of the run: the servers' passwords, and the signing key's PEM body."""
    kafka = local_redis.saved_credentials(home / "kafka")
    redis = local_redis.saved_credentials(home / "redis")
    assert kafka is not None and redis is not None
    key = (deployment.home / "keys" / "signing.key").read_text().splitlines()[1:-1]
    return [kafka.driftline, redis.driftline, redis.admin, *key]


def test_demo_fast_closes_the_loop_and_loses_nothing(
    deployment: Deployment, secure: tuple[Endpoints, Path]
) -> None:
    done = subprocess.run(
        # --keep: its topics stay, to be checked below (tests/integration/test_kafka_io.py
        # checks the deletion that a run without it ends with).
        [shutil.which("driftline") or "driftline", "demo", "--fast", "--json", "--keep"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert "events lost 0" in done.stderr  # the summary for people goes to stderr with --json

    # What the summary promises.
    assert summary["drift_detected_at"] is not None, summary
    assert summary["drift_detected_at"] >= summary["drift_injected_at"], summary
    assert summary["promoted_version"] >= 2, summary
    assert summary["error_before"] < 0.15 and summary["error_after_drift"] > 0.7, summary
    assert summary["error_after"] < 0.15, summary
    assert summary["events_in"] == summary["predictions_out"] == 12_000, summary
    assert summary["events_lost"] == 0 and summary["dead_letters"] == 0, summary
    logs = "".join(f.read_text(errors="replace") for f in Path(summary["logs"]).rglob("*.log"))
    assert logs.count("Kafka client: confluent") >= 2 and "Kafka client: kafka-python" not in logs
    # every version the predictor loaded (the first, and each retrained one) scored compiled
    loaded = re.findall(r"loaded \S+ v\d+ in \d+ ms \(([^)]*)\)", logs)
    assert len(loaded) >= 2 and all("compiled pipeline" in how for how in loaded), loaded

    # What is behind it, read from the registry and the topics.
    model, prefix = summary["model"], summary["topic_prefix"]
    assert prefix.startswith(deployment.topic_prefix)  # a run of its own, on its own topics
    # ... and a registry of its own: the Redis prefix follows the run's topic prefix.
    assert summary["redis_prefix"] == deployment_redis_prefix(prefix)
    registry = Registry(deployment.registry.client, RedisKeys(summary["redis_prefix"]))
    lineage = registry.get(model, 2).trained_on
    flip_ts = summary["drift_injected_ts"]  # the demo's clock starts when it runs
    assert abs(lineage["since_ts"] - flip_ts) <= 500 * Scenario().step_ms, lineage
    assert lineage["start_ts"] >= lineage["since_ts"] and lineage["examples"] >= 1_000, lineage
    assert lineage["request_id"] and lineage["gate"]["test"] == "mcnemar"
    found: dict[str, list[tuple[int, int, int]]] = {}
    for record in read_all(deployment.bootstrap, f"{prefix}predictions"):
        data = json.loads(record.value)
        if data["model"] == model:
            found.setdefault(data["event_id"], []).append(
                (data["version"], record.partition, record.offset)
            )
    assert len(found) == 12_000 and versions_never_go_backwards(found)
    events = [(m["version"], m["event"]) for m in _messages(deployment, f"{prefix}model-events")]
    assert events == [(1, "registered"), (1, "promoted"), (2, "registered"), (2, "promoted")]
    concept = [
        a
        for a in _messages(deployment, f"{prefix}alerts")
        if a["kind"] == "concept_drift" and a["state"] == "firing"
    ]
    assert concept and all(a["version"] == 1 for a in concept), concept

    # The report written at the end tells the same story (its rendering: test_report_browser).
    page = Path(summary["report"])
    # Three time plots, and the mixed stream's category (channel) against its reference.
    assert page.name == "index.html" and page.read_text().count("<svg") == 4
    figures = json.loads((page.parent / "report.json").read_text())
    assert figures["examples"] == 12_000
    assert [span["version"] for span in figures["spans"]] == [1, summary["promoted_version"]]
    kinds = {marker["kind"] for marker in figures["markers"]}
    assert {"injected", "concept_drift", "swap"} <= kinds, kinds
    v1 = figures["errors"]["1"]["values"]
    assert max(v1) > 0.7 and min(v1) < 0.15  # v1's error rose after the flip

    # `driftline report` draws the same page from the same records, at any time after.
    again = _driftline(
        deployment,
        "report",
        "--model",
        model,
        "--topic-prefix",
        prefix,
        "--out",
        str(page.parent / "again"),
        "--json",
    )
    assert again.returncode == 0, again.stderr
    written = json.loads(again.stdout)
    assert written["examples"] == 12_000 and written["versions"] == [1, 2]
    assert Path(written["page"]).read_text().count("<svg") == 4
    unknown = _driftline(deployment, "report", "--model", "no-such-model")
    assert unknown.returncode == 1 and "`driftline models list`" in unknown.stderr

    # No secret in anything the run printed or wrote: its output, every service's log, the
    # report, what the topics carry, and what the status, list and show commands say.
    shown = [
        _driftline(deployment, *args, "--topic-prefix", prefix)
        for args in (
            ("status", "--json"),
            ("models", "list", "--model", model, "--json"),
            ("models", "show", "--model", model, "--json"),
            ("infra", "status", "--json"),
        )
    ]
    assert all(answer.returncode == 0 for answer in shown), [a.stderr for a in shown]
    written = [done.stdout, done.stderr, unknown.stderr, again.stdout, again.stderr]
    written += [answer.stdout + answer.stderr for answer in shown]
    folders = [Path(summary["logs"]), page.parent]
    written += [f.read_text(errors="replace") for d in folders for f in d.rglob("*") if f.is_file()]
    for noun in ("alerts", "dlq", "model-events", "retrain"):
        written += [
            r.value.decode(errors="replace") for r in read_all(deployment.bootstrap, prefix + noun)
        ]
    assert len(written) > 10 and any("SASL" not in w for w in written)
    for secret in _secrets(secure[1], deployment):
        leaked = [w[:200] for w in written if secret in w]
        assert not leaked, f"a secret appears in {leaked}"


def _driftline(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    command = [shutil.which("driftline") or "driftline", *args]
    return subprocess.run(
        command, env=deployment.env, capture_output=True, text=True, timeout=120, check=False
    )


def _messages(deployment: Deployment, topic: str) -> list[dict[str, object]]:
    return [json.loads(r.value) for r in read_all(deployment.bootstrap, topic)]


def test_demo_of_a_category_shift_names_the_category(
    deployment: Deployment, secure: tuple[Endpoints, Path]
) -> None:
    """`--drift categorical`: channel=phone goes from 10% to 40% of the events; the data-drift
    alert and the summary name the feature and the share that moved; nothing is refused. On the
    pure-Python client, kafka-python (the other demo runs on the default, confluent-kafka)."""
    done = subprocess.run(
        [
            shutil.which("driftline") or "driftline",
            *("demo", "--drift", "categorical", "--events", "3000", "--rate", "3000", "--json"),
        ],
        env={**deployment.env, "DRIFTLINE_KAFKA_CLIENT": "kafka-python"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["detected_by"] == "data_drift", summary
    assert summary["drift_detected_at"] >= summary["drift_injected_at"], summary
    [first, *_] = summary["found"]
    assert first.startswith("data_drift on channel: "), summary["found"]
    assert re.search(r"shares moved most: phone 1\d% → [2-4]\d%", first), first
    assert "found: data_drift on channel" in done.stderr
    assert summary["events_lost"] == 0 and summary["dead_letters"] == 0, summary
    logs = "".join(f.read_text(errors="replace") for f in Path(summary["logs"]).rglob("*.log"))
    assert logs.count("Kafka client: kafka-python") >= 2 and "Kafka client: confluent" not in logs
    loaded = re.findall(r"loaded \S+ v\d+ in \d+ ms \(([^)]*)\)", logs)  # categories too
    assert loaded and all("compiled pipeline" in how for how in loaded), loaded
