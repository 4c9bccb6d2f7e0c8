"""`driftline demo --fast --json` end to end, as a newcomer runs it, and the closed loop it shows:
predictor, monitor and trainer as separate processes over the real broker and Redis; a flipped
concept is detected, a better model is trained on post-change examples and promoted by itself,
predictions switch to it with no lost event, and the error recovers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from services.cli.demo.synthetic import Scenario
from shared.core.topics import deployment_redis_prefix
from shared.io.keys import RedisKeys
from shared.registry.store import Registry
from tests.harness.predictor import Deployment, read_all, versions_never_go_backwards


def test_demo_fast_closes_the_loop_and_loses_nothing(deployment: Deployment) -> None:
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
    assert page.name == "index.html" and page.read_text().count("<svg") == 3
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
    assert Path(written["page"]).read_text().count("<svg") == 3
    unknown = _driftline(deployment, "report", "--model", "no-such-model")
    assert unknown.returncode == 1 and "`driftline models list`" in unknown.stderr


def _driftline(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    command = [shutil.which("driftline") or "driftline", *args]
    return subprocess.run(
        command, env=deployment.env, capture_output=True, text=True, timeout=120, check=False
    )


def _messages(deployment: Deployment, topic: str) -> list[dict[str, object]]:
    return [json.loads(r.value) for r in read_all(deployment.bootstrap, topic)]
