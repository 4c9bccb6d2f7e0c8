"""`driftline demo --fast --json` end to end, as a newcomer runs it: separate processes over the
real broker and Redis, drift injected, detected, retrained, swapped, nothing lost."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.integration.predictor_harness import Deployment


def test_demo_fast_closes_the_loop_and_loses_nothing(deployment: Deployment) -> None:
    done = subprocess.run(
        [shutil.which("driftline") or "driftline", "demo", "--fast", "--json"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["drift_detected_at"] is not None, summary
    assert summary["drift_detected_at"] >= summary["drift_injected_at"], summary
    assert summary["promoted_version"] >= 2, summary
    assert summary["error_after"] < summary["error_after_drift"], summary
    assert summary["error_before"] < summary["error_after_drift"], summary
    assert summary["events_lost"] == 0 and summary["events_in"] == 12_000, summary
    assert summary["dead_letters"] == 0, summary
    assert "events lost 0" in done.stderr  # the human summary goes to stderr with --json
