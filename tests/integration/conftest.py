"""Fixtures of the integration tier."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.harness.predictor import Deployment, make_deployment


@pytest.fixture(autouse=True)
def _machine_share(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Integration tests share the machine across pytest-xdist workers (a shared lock), but a
    test marked ``alone`` has it to itself (an exclusive one): its assertion holds only when its
    services keep up with their stream, which a second worker's services can prevent on 2 cores.
    The unit tests take no part."""
    alone = request.node.get_closest_marker("alone") is not None
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "integration.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def deployment(servers: Servers, tmp_path: Path, unique: str) -> Iterator[Deployment]:
    """A deployment of the test's own (prefixes, keys, registry); its predictors die with it."""
    made = make_deployment(servers.bootstrap, servers.redis_url, tmp_path, unique)
    yield made
    for process in made.processes:
        if process.proc.poll() is None:
            process.kill()
