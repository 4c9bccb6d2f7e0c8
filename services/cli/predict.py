"""`driftline models predict`: score a file offline with a registered version, as a predictor would.

The version is verified and loaded as a predictor loads it (signature, sha256, deserialize, warm
up), and each row of the file (CSV or JSON Lines, read as `driftline produce` reads them) is
scored by the predictor's own logic: the same checks of each feature against the version's schema,
the same imputing, the same prediction records. Each prediction is one JSON line on stdout (or
``--out``); a row that cannot be scored is said on stderr with its line number and reason, and
the command exits 4. Nothing is read from or written to Kafka.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from services.cli.common import EXIT_OK, clients, progress
from services.cli.produce import EXIT_REFUSED, Row, file_format, file_lines, rows
from services.predictor.scoring import handle
from shared.core.errors import ConfigError
from shared.core.messages import DEFAULT_MAX_BYTES
from shared.core.settings import Settings
from shared.io.transport import Record
from shared.models.signing import load_verifier
from shared.registry.loading import load_version

BATCH = 1_000


def add_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    predict = actions.add_parser(
        "predict",
        parents=parents,
        help="score a CSV or JSON Lines file offline with a version",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("--model", required=True, help="model name")
    predict.add_argument("--version", type=int, help="version (default: the active one)")
    predict.add_argument("file", type=Path, help="feature rows: .csv or .jsonl; - for stdin")
    predict.add_argument("--format", choices=("csv", "jsonl"), help="default: by extension")
    predict.add_argument("--out", type=Path, help="write the predictions here (default: stdout)")
    predict.set_defaults(run=run_predict)


def _batches(found: Iterator[Row]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in found:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def run_predict(settings: Settings, args: argparse.Namespace) -> int:
    fmt = file_format(args.file, args.format)
    verifier = load_verifier(settings.verify_key_path, settings.secret)
    with clients(settings, kafka=False) as found:
        found.registry.require(args.model)
        version = args.version or found.registry.active(args.model)
        if version is None:
            raise ConfigError(f"model {args.model!r} has no active version; pass --version")
        progress(f"verifying and loading {args.model} v{version} as a predictor would")
        model = load_version(found.registry, args.model, version, verifier)
    out: TextIO = sys.stdout if args.out is None else args.out.open("w")
    scored = refused = 0
    started = time.monotonic()
    try:
        for batch in _batches(rows("features", file_lines(args.file), fmt)):
            records = []
            for row in batch:
                if row.refused:
                    refused += 1
                    print(f"{args.file}:{row.line}: refused: {row.refused}", file=sys.stderr)
                else:
                    records.append(
                        Record("file", 0, row.line, row.key, row.value, int(time.time() * 1000))
                    )
            outcome = handle(records, model, time.time(), DEFAULT_MAX_BYTES)
            for refusal in outcome.refused:
                refused += 1
                line = refusal.record.offset
                print(f"{args.file}:{line}: refused: {refusal.reason}", file=sys.stderr)
            for written in outcome.encoded:
                out.write(written.decode())
                out.write("\n")
            scored += len(outcome.encoded)
    finally:
        if args.out is not None:
            out.close()
    took = time.monotonic() - started
    where = f" to {args.out}" if args.out else ""
    progress(
        f"{scored:,} rows scored with {args.model} v{version}{where} in {took:.1f} s; {refused:,} refused"
    )
    return EXIT_OK if not refused else EXIT_REFUSED
