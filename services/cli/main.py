"""The `driftline` command: the composition root that reads settings and runs one command.

Settings come from DRIFTLINE_* variables; a flag given here overrides its variable. Errors print one
message saying what to do and exit non-zero; `--help` on any command explains it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from services.cli import infra, models, observe
from services.cli.common import EXIT_ERROR, EXIT_INTERRUPTED
from services.cli.demo import command as demo
from services.cli.report import command as report
from services.monitor import main as monitor
from services.predictor import main as predictor
from services.trainer import main as trainer
from shared import __version__
from shared.core.errors import DriftlineError
from shared.core.logs import configure_logging
from shared.core.settings import Settings, load_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
driftline keeps machine-learning models healthy on a Kafka stream: predictors score feature
events with the active model, the monitor joins predictions with late labels and watches error
and drift, and the trainer retrains and promotes better models, which predictors hot-swap.

Every setting is an environment variable DRIFTLINE_<NAME>; a flag overrides it.
"""

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
)


def _settings_flags() -> argparse.ArgumentParser:
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


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="driftline",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [_settings_flags()]
    infra.add_command(commands, parents)
    models.add_command(commands, parents)
    predictor.add_command(commands, parents)
    monitor.add_command(commands, parents)
    trainer.add_command(commands, parents)
    observe.add_command(commands, parents)
    demo.add_command(commands, parents)
    report.add_command(commands, parents)
    return parser


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
