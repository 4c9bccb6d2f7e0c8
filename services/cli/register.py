"""`driftline models register`: a scikit-learn model trained elsewhere, registered as a version.

The file is a skops artifact of an estimator or ``Pipeline`` (``skops.io.dump(pipeline, path)``);
a sample file of labelled rows gives its schema, its reference profile and its metrics
(:mod:`services.cli.external`). The version is signed like any other, and refused with the reason
when it uses a type outside driftline's trusted list or cannot score the sample.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from services.cli.common import EXIT_OK, clients, progress
from services.cli.external import external_candidate
from shared.core.errors import ConfigError
from shared.core.settings import Settings
from shared.models.signing import load_signer
from shared.models.training import Candidate, load_dataset


def add_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    register = actions.add_parser(
        "register",
        parents=parents,
        help="register a scikit-learn model trained elsewhere (a skops file)",
        description="Register a scikit-learn estimator or Pipeline saved with skops as the "
        "model's next version: its schema, reference profile and metrics come from --sample "
        "(labelled rows, .csv or .jsonl); it is signed like a version driftline trained. The "
        "model must take the features in their order as one array (numbers as floats with NaN "
        "where missing, categories as strings), selecting columns by position; only the types "
        "driftline's own pipelines use are trusted.",
    )
    register.add_argument("--model", required=True, help="model name")
    register.add_argument("--file", required=True, type=Path, help="the .skops file")
    register.add_argument(
        "--sample",
        required=True,
        type=Path,
        help="labelled rows (.csv or .jsonl) it was trained on",
    )
    register.add_argument("--target", required=True, help="the label column of the sample")
    register.add_argument(
        "--features", help="comma-separated feature columns, in the model's order"
    )
    register.add_argument("--categorical", action="append", default=[], metavar="COL[,COL]")
    register.add_argument("--numeric", action="append", default=[], metavar="COL[,COL]")
    register.add_argument("--task", choices=["regression", "classification"])
    register.add_argument("--promote", action="store_true", help="make the new version active")
    register.add_argument("--json", action="store_true", help='print {"model", "version", ...}')
    register.set_defaults(run=_register)


def _names(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _register(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise ConfigError(f"no model file at {args.file}")
    signer = load_signer(settings.signing_key_path, settings.secret)
    features = _names([args.features]) if args.features else None
    data = load_dataset(
        args.sample,
        args.target,
        features,
        categorical=_names(args.categorical),
        numeric=_names(args.numeric),
    )
    progress(f"checking {args.file} against {len(data)} rows of {args.sample}")
    candidate = external_candidate(
        args.file.read_bytes(),
        data,
        model=args.model,
        signer=signer,
        task=args.task,
        source=str(args.file),
    )
    version = add_version(settings, args.model, candidate, promote=args.promote)
    if args.json:
        print(json.dumps({"model": args.model, "version": version, "metrics": candidate.metrics}))
    else:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in candidate.metrics.items())
        state = "active" if args.promote else "registered"
        print(
            f"{args.model} v{version} {state}: {candidate.params['estimator']} "
            f"({candidate.schema.describe()}); on the sample: {shown}"
        )
    return EXIT_OK


def add_version(settings: Settings, model: str, candidate: Candidate, *, promote: bool) -> int:
    """Register ``candidate`` as ``model``'s next version (its parent the active one), say so on
    the model-events topic, and promote it when asked; return its version number."""
    with clients(settings, kafka=True) as found:
        registry, events = found.registry, found.events
        assert events is not None  # noqa: S101 - asked for with kafka=True
        record = registry.register(candidate, parent=registry.active(model))
        events.publish(model, record.version, "registered", candidate.metrics)
        if promote:
            registry.promote(model, record.version)
            events.publish(model, record.version, "promoted", candidate.metrics)
    return record.version
