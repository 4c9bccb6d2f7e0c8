"""`driftline report`: one HTML page with the story of a model on the stream, for people to read.

It is drawn from what driftline keeps anyway: the joined events on ``examples``, the ``alerts`` and
``model-events`` topics, and each version's reference profile in the registry. Nothing is sampled
live, so a report can be written for any model at any time, by anyone who can read the topics.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.cli.common import EXIT_OK, clients, progress
from services.cli.observe import read_alerts
from shared.core.errors import BadMessage, ConfigError
from shared.core.messages import DeadLetter, Example, ModelEvent, decode_examples
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.kafka import read_to_end

DEFAULT_LAST = 2_000
"""Records read per partition of ``examples`` by default, the newest: each holds the joined events
of one monitor poll (up to a few hundred), or one event written by hand."""


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    report = commands.add_parser(
        "report",
        parents=parents,
        help="write an HTML page: error per version, drift per feature, alerts and swaps",
        description="Write DIR/index.html (plots as inline SVG; opens offline) and DIR/report.json "
        "(the same figures, for scripts) for one model: rolling error per model version over event "
        "time with alert and swap markers, PSI per feature against the serving version's "
        "reference, which version served when, and the alerts and model events. Read from the "
        "examples, alerts and model-events topics and the registry.",
    )
    report.add_argument("--model", required=True, help="the model to report on")
    report.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder to write to (default DRIFTLINE_HOME/reports/MODEL)",
    )
    report.add_argument(
        "--last",
        type=int,
        default=DEFAULT_LAST,
        help=f"newest records to read per partition of examples ({DEFAULT_LAST}); a monitor "
        "writes the joined events of each poll in one record",
    )
    report.add_argument("--json", action="store_true", help="print one JSON object: path, counts")
    report.set_defaults(run=run_report)


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    if args.last < 1:
        raise ConfigError("--last: at least 1 record per partition")
    out = args.out or settings.home / "reports" / args.model
    written = write_report(settings, args.model, out, last=args.last)
    if args.json:
        print(json.dumps(written))
    else:
        print(f"report for {args.model}: {written['page']}")
    return EXIT_OK


def write_report(
    settings: Settings,
    model: str,
    out: Path,
    *,
    last: int = DEFAULT_LAST,
    injected_ts: int | None = None,
    summary: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Read the model's records, write ``out/index.html`` and ``out/report.json``; return the paths
    and counts."""
    from services.cli.report.figures import (  # noqa: PLC0415 - numpy, scipy: only when reporting
        build,
        refused_by_feature,
    )
    from services.cli.report.page import render  # noqa: PLC0415 - matplotlib: only when reporting

    endpoints = Infra(settings).endpoints()
    with clients(settings, kafka=False) as opened:
        versions = opened.registry.versions(model)
    if not versions:
        raise ConfigError(
            f"no model {model!r} in the registry (prefix {settings.redis_prefix!r}); "
            "`driftline models list` shows what there is"
        )
    topics = Topics(settings.topic_prefix)
    progress(f"reading {topics.examples}, {topics.alerts} and {topics.model_events}")
    examples = [
        example
        for record in read_to_end(endpoints.kafka, topics.examples, last=last)
        for example in _examples(record)
    ]
    alerts = list(read_alerts(endpoints.kafka, topics.alerts))
    events = _model_events(read_to_end(endpoints.kafka, topics.model_events))
    refused = refused_by_feature(
        _predictor_errors(read_to_end(endpoints.kafka, topics.dlq, last=last))
    )
    data = build(
        model,
        versions[-1].task,
        examples,
        alerts,
        events,
        {v.version: v.reference for v in versions if v.reference is not None},
        psi_threshold=settings.monitor_psi_threshold,
        injected_ts=injected_ts,
        summary=summary,
        refused=refused,
    )
    progress(f"{data.examples:,} joined events, {len(data.alerts)} alerts; drawing")
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(render(data), encoding="utf-8")
    figures = dataclasses.asdict(data)
    figures["alerts"] = [json.loads(a.encode()) for a in data.alerts]
    figures["events"] = [json.loads(e.encode()) for e in data.events]
    (out / "report.json").write_text(json.dumps(figures), encoding="utf-8")
    return {
        "model": model,
        "page": str(page),
        "data": str(out / "report.json"),
        "examples": data.examples,
        "alerts": len(data.alerts),
        "versions": [span.version for span in data.spans],
    }


def _examples(record: Any) -> list[Example]:
    try:
        return decode_examples(record.value or b"")
    except BadMessage:
        return []


def _predictor_errors(records: list[Any]) -> list[str]:
    """The reasons of the predictors' dead letters (a feature's refusals among them)."""
    found = []
    for record in records:
        try:
            letter = DeadLetter.decode(record.value or b"")
        except BadMessage:
            continue
        if letter.service == "predictor":
            found.append(letter.error)
    return found


def _model_events(records: list[Any]) -> list[ModelEvent]:
    """The records that decode; others (already dead-lettered by their writer) are skipped."""
    found = []
    for record in records:
        try:
            found.append(ModelEvent.decode(record.value or b""))
        except BadMessage:
            continue
    return found
