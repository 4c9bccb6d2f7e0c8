"""Fixtures shared by all tiers: the real servers, unique names, and the CI no-skip rule.

The ``servers`` session fixture gives a real Kafka broker and a real Redis, chosen in this order:

1. ``DRIFTLINE_KAFKA_BOOTSTRAP`` and ``DRIFTLINE_REDIS_URL`` when both are set (existing servers);
2. testcontainers, when a Docker engine answers (``DRIFTLINE_TEST_SERVERS=docker`` forces it);
3. local processes started by driftline's own ``Infra`` in a temporary DRIFTLINE_HOME
   (``DRIFTLINE_TEST_SERVERS=local`` forces it). This is what CI and a laptop without Docker use.

Under pytest-xdist (``-n 2`` in pyproject.toml's addopts) every worker has servers of its own on
ports the kernel picks (:func:`kernel_ports`), as has every test that starts servers of its own.
The tests of driftline's default ports (9092 when free) hold :func:`default_ports`, one at a time.

A server that cannot start is an error of every test that needs it, never a skip; and when ``CI``
is set, any skipped test fails the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared.core.settings import Settings
from shared.infra.ports import free_port
from shared.infra.stack import Infra

_skipped: list[str] = []


@dataclass(frozen=True)
class Servers:
    """Addresses of the real servers the integration tests run against."""

    bootstrap: str
    redis_url: str
    source: str
    home: str | None = None
    """DRIFTLINE_HOME of servers started by ``Infra`` (its credentials live there)."""


def _docker_answers() -> bool:
    try:
        import docker  # noqa: PLC0415 - only where testcontainers may be used

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _containers() -> Iterator[Servers]:
    from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415
    from testcontainers.community.redis import RedisContainer  # noqa: PLC0415

    with KafkaContainer().with_kraft() as kafka, RedisContainer("redis:7") as redis:
        host = redis.get_container_host_ip()
        port = redis.get_exposed_port(6379)
        yield Servers(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0", "testcontainers")


@contextlib.contextmanager
def _local(home: str) -> Iterator[Servers]:
    # Each pytest-xdist worker starts servers of its own, all at once: ports the kernel picks keep
    # them apart, and 9092 and 6379 free for the tests that check driftline's defaults.
    ports = kernel_ports() if os.environ.get("PYTEST_XDIST_WORKER") else {}
    settings = Settings(home=home, kafka_bootstrap=None, redis_url=None, **ports)
    infra = Infra(settings)
    infra.up()
    try:
        endpoints = infra.endpoints()  # the Redis URL carries the generated password
        yield Servers(endpoints.bootstrap, endpoints.redis_url, "local processes", home)
    finally:
        infra.down()


def kernel_ports() -> dict[str, int]:
    """Settings that put a local broker and Redis on ports the kernel picks, never on the
    defaults (9092, 6379) that another worker's test of ``driftline infra up`` may take."""
    chosen: list[int] = []
    while len(chosen) < 3:
        port = free_port()
        if port not in chosen and port not in (9092, 6379):
            chosen.append(port)
    kafka, controller, redis = chosen
    return {"kafka_port": kafka, "kafka_controller_port": controller, "redis_port": redis}


@pytest.fixture
def default_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held by a test that starts servers on driftline's default ports: one such test at a time
    across all pytest-xdist workers (a lock file in the directory the workers share)."""
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "default-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A real Kafka broker and a real Redis for the whole session."""
    bootstrap = os.environ.get("DRIFTLINE_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("DRIFTLINE_REDIS_URL")
    choice = os.environ.get("DRIFTLINE_TEST_SERVERS", "auto")
    if bootstrap and redis_url and choice == "auto":
        yield Servers(bootstrap, redis_url, "environment")
    elif choice == "docker" or (choice == "auto" and _docker_answers()):
        with _containers() as found:
            yield found
    else:
        with _local(str(tmp_path_factory.mktemp("servers-home"))) as found:
            yield found


@pytest.fixture
def unique() -> str:
    """A short unique token for topic prefixes, group ids and Redis prefixes of one test."""
    return uuid.uuid4().hex[:10]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: it means a server or a tool was missing."""
    if os.environ.get("CI") and _skipped and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"CI forbids skipped tests; {len(_skipped)} skipped: {', '.join(_skipped)}",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def needs_system_program(*names: str, why: str = "") -> pytest.MarkDecorator:
    """Skip a test of the system's own programs (java, mvn, redis-server) where the PATH lacks
    them: on a machine with nothing but Python (``.ci/python-only python -m pytest``) driftline
    runs on the wheels' instead, and the rest of the suite runs there. ``why`` says why the
    wheels' cannot stand in."""
    missing = [name for name in names if shutil.which(name) is None]
    reason = f"needs {', '.join(missing)} on the PATH" + (f" ({why})" if why else "")
    return pytest.mark.skipif(bool(missing), reason=reason)
