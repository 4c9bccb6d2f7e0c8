"""`driftline produce`: feature events or labels from a CSV or JSON Lines file, onto their topic.

Each record is keyed by its ``event_id`` and partitioned with murmur2, as Java's and driftline's own
producers do, so that its prediction and its label meet in the monitor's join. A row is checked
the way driftline's consumers check it before anything is sent: a row without an ``event_id``, with
NaN or Infinity, or (labels) without a label, is refused with its line number and the reason, and
the others are sent. ``--rate`` spreads the records over time (events per second), as a live
stream would send them.

**CSV**: the header names the columns; ``event_id`` and ``ts`` (epoch milliseconds, optional) are
columns of their own, and for features every other column is a feature: a cell that reads as an
integer or a number is one, ``true``/``false`` a boolean, an empty cell or ``NaN`` is missing
(null), and anything else is a category (as ``driftline train`` reads a file).
For labels, the ``label`` column, read the same way.

**JSON Lines**: one object per line: a feature event as driftline's topic holds it
(``{"event_id", "ts"?, "features": {...}}``), or a flat object whose other fields are its
features; a label ``{"event_id", "ts"?, "label"}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.cli.common import EXIT_OK, progress
from shared.core.errors import BadMessage, ConfigError
from shared.core.messages import FeatureEvent, Label
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Infra
from shared.io.transport import open_producer
from shared.io.transport.admin import require_topics

EXIT_REFUSED = 4
"""Some rows were refused (each said on stderr); the others were sent."""
RESERVED = ("event_id", "ts")


@dataclass(frozen=True)
class Row:
    """One line of the file: what would be sent, or why it cannot be."""

    line: int
    key: bytes | None = None
    value: bytes | None = None
    refused: str = ""


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    produce = commands.add_parser(
        "produce",
        parents=parents,
        help="send feature events or labels from a CSV or JSON Lines file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    produce.add_argument("what", choices=("features", "labels"), help="which topic")
    produce.add_argument("file", type=Path, help="a .csv, or a .jsonl/.ndjson file; - for stdin")
    produce.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        help="the file's format (default: by its extension; stdin: jsonl)",
    )
    produce.add_argument(
        "--rate", type=float, help="records per second (default: as fast as the broker takes them)"
    )
    produce.add_argument("--json", action="store_true", help="a JSON summary on stdout")
    produce.set_defaults(run=run_produce)


def file_format(path: Path, given: str | None) -> str:
    """``csv`` or ``jsonl``: ``given``, else by the file's extension (stdin: jsonl)."""
    if given:
        return given
    suffix = path.suffix.lower()
    if str(path) == "-" or suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise ConfigError(f"cannot tell the format of {path} by its extension: pass --format csv|jsonl")


def cell(text: str) -> Any:
    """A CSV cell as the value it reads as, the way ``driftline train`` reads its files: an
    integer, a number, a boolean (``true``/``false``), null (empty or ``NaN``), else a string.

    >>> [cell(t) for t in ("3", "-2.5", "1e3", "", "NaN", "true", "False", "DE", "inf")]
    [3, -2.5, 1000.0, None, None, True, False, 'DE', 'inf']
    """
    lowered = text.strip().lower()
    if lowered in ("", "nan"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text  # "nan" and "inf" are no numbers to send


def rows(what: str, lines: Iterator[str], fmt: str) -> Iterator[Row]:
    """Each line of the file, checked and encoded as its topic holds it.

    >>> [r.refused or r.value for r in rows("labels", iter(['{"event_id": "e1", "label": 1}',
    ...     '{"label": 0}']), "jsonl")]
    [b'{"v":1,"event_id":"e1","ts":null,"label":1}', 'event_id: missing (every record is keyed by it)']
    """
    if fmt == "csv":
        reader = csv.DictReader(lines)
        for number, record in enumerate(reader, start=2):  # line 1 is the header
            if None in record:
                yield Row(number, refused="more cells than the header has columns")
                continue
            yield _row(what, number, {k: cell(v or "") for k, v in record.items()}, flat=True)
        return
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            yield Row(number, refused=f"not JSON: {exc}")
            continue
        if not isinstance(data, dict):
            yield Row(number, refused=f"a JSON {type(data).__name__}, not an object")
            continue
        yield _row(what, number, data, flat="features" not in data)


def _row(what: str, number: int, data: dict[str, Any], *, flat: bool) -> Row:
    event_id = data.get("event_id")
    if event_id is None or event_id == "":
        return Row(number, refused="event_id: missing (every record is keyed by it)")
    event_id = str(event_id)
    ts = data.get("ts")
    body: dict[str, Any] = {"event_id": event_id}
    if ts is not None:
        body["ts"] = ts
    if what == "labels":
        if data.get("label") is None:
            return Row(number, refused="label: missing")
        body["label"] = data["label"]
        kind: type[FeatureEvent] | type[Label] = Label
    else:
        body["features"] = (
            {k: v for k, v in data.items() if k not in RESERVED} if flat else data["features"]
        )
        kind = FeatureEvent
    try:
        # Exactly what the consumer will check, and sent as driftline writes it.
        encoded = kind.decode(json.dumps(body, allow_nan=False).encode()).encode()
    except ValueError:
        return Row(number, refused="holds NaN or Infinity, which JSON has no spelling for")
    except BadMessage as exc:
        return Row(number, refused=str(exc))
    return Row(number, event_id.encode(), encoded)


def file_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` (``-``: stdin), a byte-order mark dropped; an error when missing."""
    if str(path) == "-":
        yield from sys.stdin
        return
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from handle


def run_produce(settings: Settings, args: argparse.Namespace) -> int:
    fmt = file_format(args.file, args.format)
    topics = Topics(settings.topic_prefix)
    topic = topics.name(args.what)
    endpoints = Infra(settings).endpoints()
    require_topics(endpoints.kafka, [topic], client=settings.kafka_client)
    producer = open_producer(settings.kafka_client, endpoints.kafka, client_id="driftline-produce")
    sent = refused = 0
    started = time.monotonic()
    next_note = started + 5.0
    try:
        for row in rows(args.what, file_lines(args.file), fmt):
            if row.refused:
                refused += 1
                print(f"{args.file}:{row.line}: refused: {row.refused}", file=sys.stderr)
                continue
            if args.rate:
                wait = started + sent / args.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            producer.send(topic, row.value, row.key)
            sent += 1
            if time.monotonic() >= next_note:
                next_note = time.monotonic() + 5.0
                progress(f"{sent:,} sent to {topic}, {refused:,} refused")
        flushed = producer.flush(60.0)
        if flushed.pending:
            raise ConfigError(
                f"{flushed.pending} of {sent} records were not acknowledged in 60 s: check the "
                "broker (`driftline infra status`); sending the file again sends duplicates, "
                "which the monitor and the trainer count once"
            )
    finally:
        producer.close()
    took = time.monotonic() - started
    if args.json:
        print(json.dumps({"topic": topic, "sent": sent, "refused": refused, "seconds": took}))
    else:
        print(f"sent {sent:,} records to {topic} in {took:.1f} s; refused {refused:,}")
    return EXIT_OK if not refused else EXIT_REFUSED
