"""`driftline infra up | down | status`: local Kafka and Redis, or checks of external ones.

State lives under DRIFTLINE_HOME: ``infra.json`` (pids and addresses of running servers, and the
ports used last, which the next ``up`` takes again when free), ``kafka/`` and ``redis/``
(configuration, data, ``*.log``). A server given by DRIFTLINE_KAFKA_BOOTSTRAP or DRIFTLINE_REDIS_URL
is external: ``up`` only checks that it answers and ``down`` leaves it alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.core.errors import ConfigError, DriftlineError, InfraError, KafkaError, RedisError
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra import kafka as local_kafka
from shared.infra import redis as local_redis
from shared.infra.ports import HOST, choose_port, port_is_free
from shared.infra.process import is_running, stop
from shared.io.kafka import cluster_id, ensure_topics
from shared.io.redis import connect_redis

log = logging.getLogger(__name__)

KAFKA_PORT = 9092
REDIS_PORT = 6379
Managed = Literal["local", "external", "none"]


@dataclass
class ServerStatus:
    """What one server is, where it answers, and whether it does."""

    name: str
    address: str | None
    running: bool
    managed: Managed
    pid: int | None = None
    log: str | None = None
    note: str = ""


@dataclass
class InfraStatus:
    """Both servers' status; ``as_json()`` is the documented `infra status --json` object."""

    kafka: ServerStatus
    redis: ServerStatus
    topics_created: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kafka.running and self.redis.running

    def as_json(self) -> dict[str, Any]:
        return {
            "kafka": {"bootstrap": self.kafka.address, "running": self.kafka.running},
            "redis": {"url": self.redis.address, "running": self.redis.running},
        }


@dataclass
class Endpoints:
    """Where driftline's services find Kafka and Redis."""

    bootstrap: str
    redis_url: str


class Infra:
    """Starts, checks and stops the servers of one DRIFTLINE_HOME."""

    def __init__(self, settings: Settings, progress: Callable[[str], None] = log.info) -> None:
        self._settings = settings
        self._progress = progress
        self._home = settings.home
        self._state_path = self._home / "infra.json"

    # ----- public operations -------------------------------------------------------------

    def up(self) -> InfraStatus:
        """Start what is not running (or check external servers) and create the topics."""
        self._home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = self._read_state()
            java = redis_server = None
            if self._settings.kafka_bootstrap is None and not self._local_running(state, "kafka"):
                java = local_kafka.find_java()
            if self._settings.redis_url is None and not self._local_running(state, "redis"):
                redis_server = local_redis.find_redis_server()
            started: list[str] = []
            try:
                redis_status = self._up_redis(state, redis_server, started)
                kafka_status = self._up_kafka(state, java, started)
                topics = Topics(self._settings.topic_prefix).specs(self._settings.partitions)
                assert kafka_status.address is not None  # noqa: S101 - set by _up_kafka
                created = ensure_topics(kafka_status.address, topics)
            except BaseException:
                self._stop_started(state, started)
                raise
            return InfraStatus(kafka_status, redis_status, created)

    def down(self) -> InfraStatus:
        """Stop the local servers (SIGTERM, wait, SIGKILL); external ones are left alone."""
        with self._locked():
            state = self._read_state()
            results = {}
            for name, timeout in (("kafka", 60.0), ("redis", 15.0)):
                entry = state.pop(name, None)
                if entry is None:
                    results[name] = "not started by driftline"
                    continue
                self._progress(f"stopping {name} (pid {entry['pid']})")
                results[name] = stop(entry["pid"], entry["marker"], timeout_s=timeout)
            self._write_state(state)
        status = self.status()
        status.kafka.note = results["kafka"]
        status.redis.note = results["redis"]
        return status

    def status(self) -> InfraStatus:
        """Where each server is and whether it answers now."""
        state = self._read_state()
        return InfraStatus(self._kafka_status(state), self._redis_status(state))

    def endpoints(self) -> Endpoints:
        """The addresses services should use; an error that says what to do when there are none."""
        state = self._read_state()
        bootstrap = self._settings.kafka_bootstrap or state.get("kafka", {}).get("address")
        redis_url = self._settings.redis_url or state.get("redis", {}).get("address")
        if bootstrap is None or redis_url is None:
            missing = " and ".join(
                name
                for name, value in (("Kafka", bootstrap), ("Redis", redis_url))
                if value is None
            )
            raise ConfigError(
                f"no {missing} configured: run `driftline infra up` to start local servers, or "
                "set DRIFTLINE_KAFKA_BOOTSTRAP and DRIFTLINE_REDIS_URL to existing ones."
            )
        return Endpoints(bootstrap=bootstrap, redis_url=redis_url)

    # ----- Kafka ---------------------------------------------------------------------------

    def _up_kafka(
        self, state: dict[str, Any], java: str | None, started: list[str]
    ) -> ServerStatus:
        settings = self._settings
        if settings.kafka_bootstrap is not None:
            return self._check_external_kafka(settings.kafka_bootstrap)
        kafka_dir = self._home / "kafka"
        if java is None:  # running already: only confirm that it answers
            entry = state["kafka"]
            local_kafka.wait_ready(
                entry["address"], entry["pid"], entry["marker"], kafka_dir / "kafka.log", 30.0
            )
            status = self._kafka_status(state)
            status.note = "already running"
            return status
        libs = local_kafka.fetch_jars(settings.cache_dir, settings.kafka_version, self._progress)
        last = state.setdefault("ports", {})
        port = choose_port(
            "Kafka",
            settings.kafka_port,
            _reusable(last.get("kafka"), KAFKA_PORT),
            "DRIFTLINE_KAFKA_PORT",
        )
        controller_port = choose_port(
            "Kafka's controller",
            settings.kafka_controller_port,
            _reusable(last.get("kafka_controller"), None),
            "DRIFTLINE_KAFKA_CONTROLLER_PORT",
            avoid=(port,),
        )
        last.update(kafka=port, kafka_controller=controller_port)
        bootstrap = f"{HOST}:{port}"
        self._progress(f"starting Kafka {settings.kafka_version} (KRaft) on {bootstrap}")
        pid = local_kafka.start(
            java=java,
            libs=libs,
            kafka_dir=kafka_dir,
            port=port,
            controller_port=controller_port,
            host=HOST,
            heap=settings.kafka_heap,
        )
        marker = str(kafka_dir / "server.properties")
        state["kafka"] = {
            "pid": pid,
            "marker": marker,
            "address": bootstrap,
            "port": port,
            "controller_port": controller_port,
            "version": settings.kafka_version,
        }
        self._write_state(state)
        started.append("kafka")
        took = local_kafka.wait_ready(
            bootstrap, pid, marker, kafka_dir / "kafka.log", settings.startup_timeout_s
        )
        self._progress(f"Kafka answers on {bootstrap} after {took:.1f} s")
        status = self._kafka_status(state)
        status.note = f"started in {took:.1f} s"
        return status

    def _check_external_kafka(self, bootstrap: str) -> ServerStatus:
        try:
            cluster_id(bootstrap, timeout_s=10.0)
        except KafkaError as exc:
            raise InfraError(
                f"DRIFTLINE_KAFKA_BOOTSTRAP={bootstrap} does not answer: {exc}. Check the address, "
                "or unset the variable to let `driftline infra up` start a local broker."
            ) from None
        return ServerStatus("kafka", bootstrap, True, "external", note="external, answers")

    def _kafka_status(self, state: dict[str, Any]) -> ServerStatus:
        return self._server_status("kafka", self._settings.kafka_bootstrap, state, _kafka_answers)

    # ----- Redis ---------------------------------------------------------------------------

    def _up_redis(
        self, state: dict[str, Any], redis_server: str | None, started: list[str]
    ) -> ServerStatus:
        settings = self._settings
        if settings.redis_url is not None:
            try:
                connect_redis(settings.redis_url, timeout_s=5.0).close()
            except RedisError as exc:
                raise InfraError(
                    f"DRIFTLINE_REDIS_URL={settings.redis_url} does not answer: {exc}. Check the "
                    "URL, or unset the variable to let `driftline infra up` start a local Redis."
                ) from None
            return ServerStatus(
                "redis", settings.redis_url, True, "external", note="external, answers"
            )
        redis_dir = self._home / "redis"
        if redis_server is None:
            status = self._redis_status(state)
            status.note = "already running"
            return status
        last = state.setdefault("ports", {})
        port = choose_port(
            "Redis",
            settings.redis_port,
            _reusable(last.get("redis"), REDIS_PORT),
            "DRIFTLINE_REDIS_PORT",
        )
        last["redis"] = port
        url = f"redis://{HOST}:{port}/0"
        self._progress(f"starting redis-server on {HOST}:{port} (append-only file on)")
        pid = local_redis.start(
            redis_server=redis_server, redis_dir=redis_dir, port=port, host=HOST
        )
        marker = "redis-server"  # in the command line both before and after Redis retitles itself
        state["redis"] = {"pid": pid, "marker": marker, "address": url, "port": port}
        self._write_state(state)
        started.append("redis")
        took = local_redis.wait_ready(
            url, pid, marker, redis_dir / "redis.log", settings.startup_timeout_s
        )
        status = self._redis_status(state)
        status.note = f"started in {took:.1f} s"
        return status

    def _redis_status(self, state: dict[str, Any]) -> ServerStatus:
        return self._server_status("redis", self._settings.redis_url, state, _redis_answers)

    def _server_status(
        self,
        name: str,
        external: str | None,
        state: dict[str, Any],
        answers: Callable[[str], bool],
    ) -> ServerStatus:
        """An external server by its address, else the local one by its state entry and pid."""
        if external is not None:
            return ServerStatus(name, external, answers(external), "external")
        entry = state.get(name)
        if entry is None:
            return ServerStatus(name, None, False, "none")
        alive = is_running(entry["pid"], entry["marker"])
        return ServerStatus(
            name,
            entry["address"],
            alive and answers(entry["address"]),
            "local",
            pid=entry["pid"] if alive else None,
            log=str(self._home / name / f"{name}.log"),
        )

    # ----- state ---------------------------------------------------------------------------

    def _local_running(self, state: dict[str, Any], name: str) -> bool:
        entry = state.get(name)
        return entry is not None and is_running(entry["pid"], entry["marker"])

    def _stop_started(self, state: dict[str, Any], started: list[str]) -> None:
        """Undo a failed `up`: stop what this call started, so it leaves no half-started stack."""
        for name in reversed(started):
            entry = state.pop(name, None)
            if entry is not None:
                stop(entry["pid"], entry["marker"], timeout_s=20.0)
        self._write_state(state)

    def _read_state(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise InfraError(
                f"{self._state_path} is unreadable ({exc}); stop any driftline servers by hand "
                "and delete it."
            ) from None
        return loaded

    def _write_state(self, state: dict[str, Any]) -> None:
        self._home.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(temporary, self._state_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up` or `down` at a time per DRIFTLINE_HOME."""
        with (self._home / "infra.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _reusable(previous: int | None, default: int | None) -> int | None:
    """Prefer the port used last time, kept in infra.json across `down` (stable addresses across
    restarts), else the default.
    """
    if previous is not None and port_is_free(previous):
        return previous
    return default


def _kafka_answers(bootstrap: str) -> bool:
    try:
        cluster_id(bootstrap, timeout_s=3.0)
    except DriftlineError:
        return False
    return True


def _redis_answers(url: str) -> bool:
    try:
        connect_redis(url, timeout_s=2.0).close()
    except DriftlineError:
        return False
    return True


def status_lines(status: InfraStatus) -> list[str]:
    """Human-readable lines for `infra up|down|status`."""
    lines = []
    for server in (status.kafka, status.redis):
        state = "running" if server.running else "stopped"
        details: list[str] = [server.managed]
        if server.pid:
            details.append(f"pid {server.pid}")
        if server.note:
            details.append(server.note)
        if server.log:
            details.append(f"log {server.log}")
        lines.append(
            f"{server.name:<6} {state:<8} {server.address or '-':<28} ({', '.join(details)})"
        )
    if status.topics_created:
        lines.append(f"topics created: {', '.join(status.topics_created)}")
    return lines
