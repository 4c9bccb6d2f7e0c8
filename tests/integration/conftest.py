"""Fixtures of the integration tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.harness.predictor import Deployment, make_deployment


@pytest.fixture
def deployment(servers: Servers, tmp_path: Path, unique: str) -> Iterator[Deployment]:
    """A deployment of the test's own (prefixes, keys, registry); its predictors die with it."""
    made = make_deployment(servers.bootstrap, servers.redis_url, tmp_path, unique)
    yield made
    for process in made.processes:
        if process.proc.poll() is None:
            process.kill()
