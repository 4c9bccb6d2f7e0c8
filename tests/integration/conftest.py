"""Fixtures of the integration tier."""

from __future__ import annotations

import fcntl
import time
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
    The unit tests take no part.

    A test waiting to be alone says so in a file: no other starts meanwhile, so it waits for the
    one test running beside it at most, however many follow."""
    alone = request.node.get_closest_marker("alone") is not None
    shared = tmp_path_factory.getbasetemp().parent
    waiting = shared / "integration.alone"
    with open(shared / "integration.lock", "w") as lock:
        if alone:
            waiting.touch()
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + 240  # a worker that died while alone holds nobody up
            while waiting.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            if alone:
                waiting.unlink(missing_ok=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def deployment(servers: Servers, tmp_path: Path, unique: str) -> Iterator[Deployment]:
    """A deployment of the test's own (prefixes, keys, registry); its predictors die with it."""
    made = make_deployment(servers.bootstrap, servers.redis_url, tmp_path, unique)
    yield made
    for process in made.processes:
        if process.proc.poll() is None:
            process.kill()
