"""The `driftline` command: the composition root that reads settings and runs one command.

Settings come from DRIFTLINE_* variables; a flag given here overrides its variable. Errors print one
message saying what to do and exit non-zero; `--help` on any command explains it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from shared import __version__
from shared.errors import DriftlineError
from shared.infra import kafka as local_kafka
from shared.infra.stack import Infra, InfraStatus, status_lines
from shared.logs import configure_logging
from shared.settings import Settings, load_settings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
driftline keeps machine-learning models healthy on a Kafka stream: predictors score feature
events with the active model, the monitor joins predictions with late labels and watches error
and drift, and the trainer retrains and promotes better models, which predictors hot-swap.

Every setting is an environment variable DRIFTLINE_<NAME>; a flag overrides it.
"""

INFRA_HELP = """\
Local Apache Kafka (KRaft) and Redis for a laptop or CI, as background processes with their
data, logs and pid files under DRIFTLINE_HOME (default ~/.driftline). With
DRIFTLINE_KAFKA_BOOTSTRAP / DRIFTLINE_REDIS_URL set, driftline uses those servers instead:
`up` only checks that they answer (and creates missing driftline topics).
"""


def _settings_flags() -> argparse.ArgumentParser:
    """Flags shared by every command; each overrides the DRIFTLINE_* variable of the same name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings (each overrides its DRIFTLINE_* variable)")
    group.add_argument("--home", help="state folder of local servers (DRIFTLINE_HOME)")
    group.add_argument(
        "--kafka-bootstrap", help="existing Kafka HOST:PORT (DRIFTLINE_KAFKA_BOOTSTRAP)"
    )
    group.add_argument("--redis-url", help="existing Redis URL (DRIFTLINE_REDIS_URL)")
    group.add_argument("--topic-prefix", help="topic name prefix (DRIFTLINE_TOPIC_PREFIX)")
    group.add_argument("--redis-prefix", help="Redis key prefix (DRIFTLINE_REDIS_PREFIX)")
    group.add_argument(
        "--partitions", type=int, help="partitions of keyed topics (DRIFTLINE_PARTITIONS)"
    )
    group.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(DRIFTLINE_LOG_LEVEL)"
    )
    group.add_argument("--log-format", choices=["text", "json"], help="(DRIFTLINE_LOG_FORMAT)")
    return common


def _infra_flags() -> argparse.ArgumentParser:
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
    group.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return flags


SETTING_FLAGS = (
    "home",
    "kafka_bootstrap",
    "redis_url",
    "topic_prefix",
    "redis_prefix",
    "partitions",
    "log_level",
    "log_format",
    "kafka_port",
    "redis_port",
    "kafka_version",
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="driftline",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _settings_flags()
    infra_flags = _infra_flags()

    infra = commands.add_parser(
        "infra",
        help="start, stop or check local Kafka and Redis",
        description=INFRA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = infra.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser(
        "up",
        parents=[common, infra_flags],
        help="start Kafka and Redis (or check external ones) and create the topics",
        description="Start local Kafka (fetching its jars through mvn on first use) and Redis, "
        "wait until both answer, and create driftline's topics. Servers already running are "
        "reported, not started again.",
    ).set_defaults(run=_infra_up)
    actions.add_parser(
        "down",
        parents=[common, infra_flags],
        help="stop the local servers that `up` started",
        description="Stop the local servers (SIGTERM, then SIGKILL after a wait). Data stays "
        "under DRIFTLINE_HOME for the next `up`; external servers are never touched.",
    ).set_defaults(run=_infra_down)
    actions.add_parser(
        "status",
        parents=[common, infra_flags],
        help="where Kafka and Redis are and whether they answer (exit 3 when one does not)",
        description="Show each server's address and whether it answers now. Exit code 0 when "
        "both answer, 3 when one does not.",
    ).set_defaults(run=_infra_status)
    actions.add_parser(
        "fetch",
        parents=[common, infra_flags],
        help="fetch and cache the Kafka broker's jars without starting anything",
        description="Resolve Apache Kafka's jars from Maven Central through mvn into "
        "DRIFTLINE_CACHE_DIR, so a later `up` starts without network access.",
    ).set_defaults(run=_infra_fetch)
    return parser


def _print_status(status: InfraStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.as_json()))
    else:
        print("\n".join(status_lines(status)))


def _progress(message: str) -> None:
    print(f"driftline: {message}", file=sys.stderr, flush=True)


def _infra_up(settings: Settings, args: argparse.Namespace) -> int:
    status = Infra(settings, _progress).up()
    _print_status(status, args.json)
    return EXIT_OK


def _infra_down(settings: Settings, args: argparse.Namespace) -> int:
    status = Infra(settings, _progress).down()
    _print_status(status, args.json)
    return EXIT_OK


def _infra_status(settings: Settings, args: argparse.Namespace) -> int:
    status = Infra(settings, _progress).status()
    _print_status(status, args.json)
    return EXIT_OK if status.ok else EXIT_NOT_RUNNING


def _infra_fetch(settings: Settings, args: argparse.Namespace) -> int:
    libs = local_kafka.fetch_jars(settings.cache_dir, settings.kafka_version, _progress)
    if args.json:
        print(json.dumps({"kafka_version": settings.kafka_version, "libs": str(libs)}))
    else:
        print(f"Apache Kafka {settings.kafka_version} jars: {libs}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `driftline` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(**{name: getattr(args, name, None) for name in SETTING_FLAGS})
        configure_logging(settings.log_level, settings.log_format)
        run: Callable[[Settings, argparse.Namespace], int] = args.run
        return run(settings, args)
    except DriftlineError as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("driftline: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
