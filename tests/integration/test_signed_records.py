"""Everything that decides a prediction is signed and bound to its place: an edited field, a
replayed copy of an old version, or a forged promotion never changes what the predictors serve,
and the command line says so."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest

from shared.core.messages import DriftAlert
from tests.harness.predictor import Deployment, read_all, run_cli, send_raw, wait_for_predictions

pytestmark = pytest.mark.integration

_driftline = run_cli


def _shifted(reference: str) -> str:
    """The reference profile with its first feature's mean moved: false drift to order."""
    profile = json.loads(reference)
    first = next(iter(profile["features"].values()))
    first["mean"] += 1.0
    return json.dumps(profile)


EDITS: dict[str, Callable[[str], str]] = {
    # Inverting the classes inverted every score with the old signature's blessing.
    "classes": lambda _: json.dumps([0, -1]),
    "features": lambda text: json.dumps(list(reversed(json.loads(text)))),
    "params": lambda _: json.dumps({"C": 1e6}),
    "reference": _shifted,
}
"""Some of the signed fields (a unit test edits each of them, in
tests/unit/shared/models/test_signing_and_artifacts.py)."""


def _load_alerts(deployment: Deployment) -> dict[int, DriftAlert]:
    records = read_all(deployment.bootstrap, deployment.topic("alerts"))
    alerts = [DriftAlert.decode(r.value) for r in records]
    return {a.version: a for a in alerts if a.kind == "model_load"}


def _wait_for_alert(deployment: Deployment, version: int) -> DriftAlert:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _load_alerts(deployment).get(version)
        if found is not None:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no model_load alert for v{version}")


def test_edited_fields_and_a_replayed_version_are_refused_while_the_old_one_serves(
    deployment: Deployment,
) -> None:
    model, registry = deployment.model, deployment.registry
    client, keys = registry.client, registry.keys
    good = deployment.register(seed=1)
    registry.promote(model, good)
    predictor = deployment.start_predictor()
    predictor.wait_ready()

    refused: dict[int, str] = {}
    for field, edit in EDITS.items():  # an attacker with write access to Redis edits a field
        version = deployment.register(seed=2)
        key = keys.version(model, version)
        client.hset(key, field, edit(client.hget(key, field).decode()))
        refused[version] = field
    # ... or copies an old, validly signed version under a new number (a silent downgrade).
    old = deployment.register(seed=3)
    replay = int(client.incr(keys.next_version(model)))
    client.hset(keys.version(model, replay), mapping=client.hgetall(keys.version(model, old)))
    client.zadd(keys.versions(model), {str(replay): replay})
    refused[replay] = "replay"

    for version, field in refused.items():  # straight to the pointer, as the CLI would refuse
        registry.promote(model, version)
        alert = _wait_for_alert(deployment, version)
        expected = "a replay" if field == "replay" else "signature does not verify"
        assert expected in alert.message, (field, alert.message)
        assert "keep serving the previous version" in alert.message

    send_raw(
        deployment.bootstrap,
        deployment.features_topic,
        [(b"x1", b'{"event_id": "x1", "features": {"a": 1, "b": 2, "c": 3}}')],
    )
    assert wait_for_predictions(deployment, ["x1"])["x1"][0][0] == good
    assert predictor.metric("driftline_predictor_model_load_failures_total") == len(refused)
    password = deployment.redis_url.partition("://")[2].partition("@")[0].partition(":")[2]
    assert password  # the session's Redis takes a password, which no output may show
    for path in ("/metrics", "/readyz", "/healthz"):
        assert password not in predictor.get(path)[1]
    assert password not in predictor.log()

    # The pointer is at the replay, which no predictor loads: `models list` says so.
    listing = _driftline(deployment, "models", "list", "--model", model)
    assert listing.returncode == 0, listing.stderr
    found = (re.match(r"^[*! ] (v\d+)", line) for line in listing.stdout.splitlines())
    rows = {m.group(1): m.string for m in found if m}
    assert "refused" in rows[f"v{replay}"] and "a replay" in rows[f"v{replay}"]
    assert "served by 1" in rows[f"v{good}"]
    assert f"predictors serve v{good} (1)" in listing.stdout
    as_json = json.loads(
        _driftline(deployment, "models", "list", "--model", model, "--json").stdout
    )
    assert as_json["active"] == replay and as_json["serving"] == {str(good): 1}

    # `models promote` verifies first, as a predictor would.
    forged = next(v for v, f in refused.items() if f == "classes")
    answer = _driftline(deployment, "models", "promote", "--model", model, "--version", str(forged))
    assert answer.returncode == 1
    assert f"refusing to promote {model} v{forged}" in answer.stderr
    assert "signature does not verify" in answer.stderr
    assert registry.active(model) == replay  # nothing changed

    rejected = registry.register(deployment.candidate(seed=4), status="rejected").version
    answer = _driftline(
        deployment, "models", "promote", "--model", model, "--version", str(rejected)
    )
    assert answer.returncode == 1 and "--force" in answer.stderr, answer.stderr
    answer = _driftline(
        deployment, "models", "promote", "--model", model, "--version", str(rejected), "--force"
    )
    assert answer.returncode == 0, answer.stderr
    assert registry.active(model) == rejected
    assert predictor.stop() == 0
