"""Running one command: settings from DRIFTLINE_* variables with flags on top, logging, clean errors.

The `driftline` CLI and each service's ``python -m services.<name>`` entry point go through
:func:`run_parsed`, so a service started either way reads the same settings and fails the same way:
one line saying what to do, and a non-zero exit.

>>> parser = argparse.ArgumentParser(parents=[settings_flags()])
>>> settings_from(parser.parse_args(["--topic-prefix", "from.flag."])).topic_prefix
'from.flag.'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from shared.core.errors import DriftlineError
from shared.core.logs import configure_logging
from shared.core.settings import Settings, load_settings

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

AddCommand = Callable[
    ["argparse._SubParsersAction[argparse.ArgumentParser]", list[argparse.ArgumentParser]], None
]
"""What each command module offers: add its subcommand (with these parent parsers) to a tree."""

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
    "infra_secure",
    "exactly_once",
    "batch_max",
    "batch_wait_ms",
    "http_port",
    "instance_id",
    "monitor_detector",
    "monitor_label_window_s",
    "monitor_performance",
    "monitor_checkpoint_s",
    "trainer_algorithm",
    "trainer_min_examples",
    "trainer_margin",
    "notify_routes",
    "notify_group_wait_s",
    "notify_group_interval_s",
)
"""Settings a command's flags may override (each flag is named after its setting)."""


def settings_flags() -> argparse.ArgumentParser:
    """Flags shared by every command; each overrides the DRIFTLINE_* variable of the same name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings (each overrides its DRIFTLINE_* variable)")
    group.add_argument("--home", help="state folder of local servers and keys (DRIFTLINE_HOME)")
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


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings from the environment, with every flag that was given on top."""
    return load_settings(**{name: getattr(args, name, None) for name in SETTING_FLAGS})


def run_parsed(args: argparse.Namespace) -> int:
    """Run the command ``args`` names (its ``run``); return its exit code, or 1 with one line on
    stderr for a driftline error, or 130 when interrupted."""
    try:
        settings = settings_from(args)
        configure_logging(settings.log_level, settings.log_format)
        run: Callable[[Settings, argparse.Namespace], int] = args.run
        return run(settings, args)
    except DriftlineError as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("driftline: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def service_main(name: str, add_command: AddCommand, argv: Sequence[str] | None = None) -> int:
    """``python -m services.<name> [flags]``: the same as ``driftline <name> [flags]``."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}", add_help=False)
    commands = parser.add_subparsers(dest="command", required=True)
    add_command(commands, [settings_flags()])
    commands.choices[name].prog = f"python -m services.{name}"
    args = parser.parse_args([name, *(sys.argv[1:] if argv is None else argv)])
    return run_parsed(args)
