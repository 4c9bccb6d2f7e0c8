"""Two deployments on one Kafka and one Redis: same model name, different topic prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.harness.predictor import Deployment, Stream, make_deployment, wait_for_predictions

pytestmark = pytest.mark.integration


def _two_deployments(
    servers: Servers, tmp_path: Path, unique: str, model: str
) -> tuple[Deployment, Deployment]:
    """Two deployments (prefixes ``p{unique}a.`` and ``p{unique}b.``) serving one model name."""
    a, b = (
        make_deployment(servers.bootstrap, servers.redis_url, tmp_path / n, unique + n, model=model)
        for n in ("a", "b")
    )
    return a, b


def test_two_exactly_once_deployments_of_one_model_never_fence_or_rebalance_each_other(
    servers: Servers, tmp_path: Path, unique: str
) -> None:
    # The same model name and the same instance id in both: before groups and transactional ids
    # carried the prefix, the second predictor fenced the first (ProducerFencedError, exit 1).
    model = f"m{unique}"
    a, b = _two_deployments(servers, tmp_path, unique, model)
    args = ("--exactly-once", "--instance-id", "same-instance")
    try:
        for deployment, seed in ((a, 1), (b, 2)):
            deployment.registry.promote(model, deployment.register(seed=seed))
        predictors = [d.start_predictor(*args) for d in (a, b)]
        for predictor in predictors:
            predictor.wait_ready()
        streams = [Stream(d, 3_000, rate=1_000).start() for d in (a, b)]
        for stream in streams:
            stream.join()
        for deployment, stream in zip((a, b), streams, strict=True):
            found = wait_for_predictions(deployment, stream.ids, committed_only=True)
            assert set(found) == set(stream.ids)
            assert all(len(entries) == 1 for entries in found.values())  # exactly once
        # Each predictor had all of its deployment's partitions from start to end: no member of
        # the other deployment joined its group.
        for predictor in predictors:
            assert predictor.log().count("partitions assigned:") == 1
            assert predictor.proc.poll() is None
            assert predictor.stop() == 0
        for deployment in (a, b):
            assert deployment.registry.active(model) == 1
    finally:
        for deployment in (a, b):
            for process in deployment.processes:
                if process.proc.poll() is None:
                    process.kill()


def test_a_service_on_another_deployments_redis_prefix_is_refused_with_the_fix(
    servers: Servers, tmp_path: Path, unique: str
) -> None:
    model = f"m{unique}"
    a, b = _two_deployments(servers, tmp_path, unique, model)
    a.registry.claim(a.topic_prefix)
    # b's topics with a's Redis keys: its monitor would restore a's checkpoints.
    monitor = b.start(
        "monitor", "--model", model, env={"DRIFTLINE_REDIS_PREFIX": a.registry.keys.prefix}
    )
    assert monitor.proc.wait(timeout=60) == 1
    log = monitor.log()
    assert f"belongs to the deployment with topic prefix {a.topic_prefix!r}" in log
    assert "DRIFTLINE_REDIS_PREFIX" in log
    own = b.start("monitor", "--model", model)  # its own prefix: it starts
    own.wait_ready()
    assert own.stop() == 0
