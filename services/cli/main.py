"""The `driftline` command: the composition root that reads settings and runs one command.

Settings come from DRIFTLINE_* variables; a flag given here overrides its variable. Errors print one
message saying what to do and exit non-zero; `--help` on any command explains it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from services.cli import dlq, infra, models, observe, produce
from services.cli.demo import command as demo
from services.cli.report import command as report
from services.monitor import main as monitor
from services.notify import main as notify
from services.predictor import main as predictor
from services.trainer import main as trainer
from shared import __version__
from shared.runtime.entry import run_parsed, settings_flags

log = logging.getLogger(__name__)

DESCRIPTION = """\
driftline keeps machine-learning models healthy on a Kafka stream: predictors score feature
events with the active model, the monitor joins predictions with late labels and watches error
and drift, and the trainer retrains and promotes better models, which predictors hot-swap;
the notifier delivers alerts, grouped into incidents, to Alertmanager, webhooks and Slack.

Every setting is an environment variable DRIFTLINE_<NAME>; a flag overrides it.
"""


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="driftline",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [settings_flags()]
    infra.add_command(commands, parents)
    models.add_command(commands, parents)
    predictor.add_command(commands, parents)
    monitor.add_command(commands, parents)
    trainer.add_command(commands, parents)
    notify.add_command(commands, parents)
    observe.add_command(commands, parents)
    dlq.add_command(commands, parents)
    produce.add_command(commands, parents)
    demo.add_command(commands, parents)
    report.add_command(commands, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `driftline` command; return its exit code."""
    parser = build_parser()
    return run_parsed(parser.parse_args(argv))
