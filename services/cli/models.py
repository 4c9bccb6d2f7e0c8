"""`driftline keys init`, `driftline train`, and `driftline models list|show|promote|rollback`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import msgspec

from services.cli import predict, register
from services.cli.common import EXIT_OK, clients, progress
from shared.core.errors import ArtifactRejected, ConfigError
from shared.core.messages import EARLIEST_TS
from shared.core.settings import Settings
from shared.io.redis import Redis, redis_errors
from shared.models.algorithms import ALGORITHMS, algorithm, parse_params
from shared.models.signing import create_key_pair, load_signer, load_verifier
from shared.models.training import load_dataset, train
from shared.models.version import ModelVersion
from shared.registry.loading import load_version
from shared.registry.store import Registry

ALGORITHM_HELP = "; ".join(
    f"{a.name}: {a.summary} ({'/'.join(a.tasks)})" for a in ALGORITHMS.values()
)


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    keys = commands.add_parser("keys", help="create the key pair that signs model artifacts")
    key_actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = key_actions.add_parser(
        "init",
        parents=parents,
        help="create a development Ed25519 key pair under DRIFTLINE_HOME/keys",
        description="Write an Ed25519 private key (signs artifacts: trainer, `driftline train`) "
        "and its public key (verifies them: predictors). Keep the private key off predictor "
        "hosts; copy only the .pub file there.",
    )
    init.add_argument("--force", action="store_true", help="replace an existing key pair")
    init.set_defaults(run=_keys_init)

    training = commands.add_parser(
        "train",
        parents=parents,
        help="train a model offline from a CSV or JSONL file and register it",
        description="Fit ALGO on the older rows of FILE (time order: a ts column if present, else "
        "file order), evaluate on the most recent --holdout share, profile the training data as "
        "the drift reference, sign the artifact, and register it as the model's next version. "
        f"Algorithms: {ALGORITHM_HELP}.",
    )
    training.add_argument("--model", required=True, help="model name")
    training.add_argument(
        "--data", required=True, type=Path, help="a .csv (with a header) or .jsonl file"
    )
    training.add_argument("--target", required=True, help="the label column")
    training.add_argument(
        "--algo",
        required=True,
        choices=list(ALGORITHMS),
        metavar="ALGO",
        help="one of: " + ", ".join(ALGORITHMS),
    )
    training.add_argument(
        "--features",
        help="comma-separated feature columns (default: every other column but event_id/ts)",
    )
    training.add_argument(
        "--categorical",
        action="append",
        default=[],
        metavar="COL[,COL]",
        help="treat these columns as categories (e.g. integer codes); each feature's kind is "
        "otherwise inferred: text columns are categorical, true/false boolean, numbers numeric; "
        "empty cells and JSON null are missing values, which the model imputes",
    )
    training.add_argument(
        "--numeric",
        action="append",
        default=[],
        metavar="COL[,COL]",
        help="treat these columns as numbers (a value that is not one is an error, with its line)",
    )
    training.add_argument(
        "--task",
        choices=["regression", "classification"],
        help="default: from the algorithm, else from the labels",
    )
    training.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="estimator parameter, e.g. C=0.5 (repeatable)",
    )
    training.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="most recent share held out for evaluation (default 0.2)",
    )
    training.add_argument("--promote", action="store_true", help="make the new version active")
    training.add_argument(
        "--json", action="store_true", help='print {"model", "version", "metrics"}'
    )
    training.set_defaults(run=_train)

    models = commands.add_parser(
        "models", help="list, inspect, register, promote and roll back model versions"
    )
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", parents=parents, help="versions of a model (or every model)"
    )
    listing.add_argument("--model", help="model name (default: list the models)")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", parents=parents, help="everything recorded about one version")
    show.add_argument("--model", required=True)
    show.add_argument("--version", type=int, help="default: the active version")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_show)
    register.add_action(actions, parents)
    predict.add_action(actions, parents)
    promote = actions.add_parser(
        "promote",
        parents=parents,
        help="make a version active; predictors swap to it without a restart",
        description="Atomically make VERSION the active one (the previous one goes on the history "
        "for rollback), announce it to predictors over Redis, and write a model-events record.",
    )
    promote.add_argument("--model", required=True)
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--json", action="store_true")
    promote.add_argument(
        "--force",
        action="store_true",
        help="promote a version the trainer rejected (never one that does not verify)",
    )
    promote.set_defaults(run=_promote)
    rollback = actions.add_parser(
        "rollback", parents=parents, help="make the previous active version active again"
    )
    rollback.add_argument("--model", required=True)
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(run=_rollback)


def _keys_init(settings: Settings, args: argparse.Namespace) -> int:
    private, public = settings.signing_key_path, settings.verify_key_path
    create_key_pair(private, public, force=args.force)
    print(f"private key (signs; keep it on trainer hosts only): {private}")
    print(f"public key (verifies; give it to predictors):       {public}")
    if settings.secret:
        progress(
            "note: DRIFTLINE_HMAC_SECRET is set, so driftline signs with HMAC and ignores these keys"
        )
    return EXIT_OK


def _train(settings: Settings, args: argparse.Namespace) -> int:
    signer = load_signer(settings.signing_key_path, settings.secret)
    features = [name.strip() for name in args.features.split(",")] if args.features else None
    data = load_dataset(
        args.data,
        args.target,
        features,
        categorical=_names(args.categorical),
        numeric=_names(args.numeric),
    )
    algo = algorithm(args.algo)
    progress(
        f"training {algo.name} on {len(data)} rows of {args.data} ({len(data.features)} features: "
        f"{data.feature_schema.describe()})"
    )
    candidate = train(
        data,
        model=args.model,
        algo=algo,
        signer=signer,
        task=args.task,
        params=parse_params(args.param),
        holdout=args.holdout,
        source=str(args.data),
    )
    version = register.add_version(settings, args.model, candidate, promote=args.promote)
    if args.json:
        print(json.dumps({"model": args.model, "version": version, "metrics": candidate.metrics}))
    else:
        state = (
            "promoted (active)"
            if args.promote
            else "registered (promote with `driftline models promote`)"
        )
        print(f"{args.model} v{version}: {algo.name}, {candidate.task}, {state}")
        print(
            "hold-out metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in candidate.metrics.items())
        )
    return EXIT_OK


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with clients(settings, kafka=False) as found:
        registry = found.registry
        if args.model is None:
            names = registry.models()
            rows = [
                {
                    "model": name,
                    "active": registry.active(name),
                    "serving": _serving(found.client, registry, name),
                }
                for name in names
            ]
            if args.json:
                print(json.dumps({"models": rows}))
            else:
                print(
                    "\n".join(
                        f"{r['model']}  active v{r['active']}  {_serving_line(r['serving'])}"  # type: ignore[arg-type]
                        for r in rows
                    )
                    or "no models registered"
                )
            return EXIT_OK
        registry.require(args.model)
        versions, refused = _readable_versions(registry, args.model)
        active = registry.active(args.model)
        serving = _serving(found.client, registry, args.model)
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "active": active,
                    "serving": serving,
                    "versions": [v.summary() for v in versions],
                    "refused": refused,
                }
            )
        )
        return EXIT_OK
    served = {int(v): n for v, n in serving.items() if v != "none"}
    for version in versions:
        marker = "*" if version.version == active else " "
        status: str = version.status
        if version.version == active and serving and version.version not in served:
            status = "active: NOT SERVED"
        load = f"  served by {served[version.version]}" if version.version in served else ""
        print(
            f"{marker} v{version.version:<4} {_when(version.created_at)}  {status:<11} "
            f"{version.algorithm:<14} {_metrics(version)}{load}"
        )
    for number, reason in refused.items():
        print(f"! v{number:<4} refused: {reason}")
    print(f"(* the active pointer; {_serving_line(serving)})")
    return EXIT_OK


def _readable_versions(registry: Registry, model: str) -> tuple[list[ModelVersion], dict[int, str]]:
    """The versions whose records can be read, and why the others cannot (a replayed copy)."""
    versions, refused = [], {}
    for number in registry.version_numbers(model):
        try:
            versions.append(registry.get(model, number))
        except ArtifactRejected as exc:
            refused[number] = str(exc)
    return versions, refused


def _serving(client: Redis, registry: Registry, model: str) -> dict[str, int]:
    """Version -> how many running predictors serve it ("none": running, nothing loaded)."""
    counts: dict[str, int] = {}
    with redis_errors("reading the predictors' status"):
        for key in client.scan_iter(match=registry.keys.predictor_status(model, "*")):
            text = client.get(key)
            if not text:
                continue
            serving = json.loads(text).get("serving")
            name = "none" if serving is None else str(serving)
            counts[name] = counts.get(name, 0) + 1
    return counts


def _serving_line(serving: dict[str, int]) -> str:
    if not serving:
        return "no predictor running"
    return "predictors serve " + ", ".join(
        f"{'nothing yet' if v == 'none' else 'v' + v} ({n})" for v, n in sorted(serving.items())
    )


def _metrics(version: ModelVersion) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in version.metrics.items())


def _names(values: list[str]) -> list[str]:
    """``--categorical a,b --categorical c`` as ``["a", "b", "c"]``."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _show(settings: Settings, args: argparse.Namespace) -> int:
    with clients(settings, kafka=False) as found:
        found.registry.require(args.model)
        version = args.version or found.registry.active(args.model)
        if version is None:
            raise ConfigError(f"model {args.model!r} has no active version; pass --version")
        record = found.registry.get(args.model, version)
    data = msgspec.to_builtins(record)
    if args.json:
        print(json.dumps(data))
        return EXIT_OK
    reference = data.pop("reference")
    data.pop("signature")
    data["schema"] = (
        record.schema.describe()
        if record.schema is not None
        else "none stored (made before schemas): every feature numeric, none missing"
    )
    for key, value in data.items():
        print(f"{key:>11}: {_readable(key, value)}")
    if reference:
        print(
            f"{'reference':>11}: {reference['n']} training rows, features {', '.join(reference['features'])}"
        )
    return EXIT_OK


def _promote(settings: Settings, args: argparse.Namespace) -> int:
    verifier = load_verifier(settings.verify_key_path, settings.secret)
    with clients(settings, kafka=True) as found:
        record: ModelVersion = found.registry.get(args.model, args.version)
        if record.status == "rejected" and not args.force:
            raise ConfigError(
                f"{args.model} v{args.version} was rejected by the trainer's gate "
                f"({_metrics(record)}); pass --force to promote it anyway"
            )
        progress(f"verifying and loading {args.model} v{args.version} as a predictor would")
        try:  # what every predictor will do with it: signature, sha256, deserialize, warm-up
            load_version(found.registry, args.model, args.version, verifier)
        except ArtifactRejected as exc:
            raise ArtifactRejected(
                f"refusing to promote {args.model} v{args.version}, which no predictor would "
                f"load: {exc}"
            ) from None
        change = found.registry.promote(args.model, args.version)
        assert found.events is not None  # noqa: S101
        found.events.publish(args.model, args.version, "promoted", record.metrics)
    _report(change.model, change.previous, change.current, "promoted", args.json)
    return EXIT_OK


def _rollback(settings: Settings, args: argparse.Namespace) -> int:
    with clients(settings, kafka=True) as found:
        change = found.registry.rollback(args.model)
        assert found.events is not None  # noqa: S101
        found.events.publish(
            args.model, change.current, "rolled_back", reason=f"rolled back from v{change.previous}"
        )
    _report(change.model, change.previous, change.current, "rolled back", args.json)
    return EXIT_OK


def _report(model: str, previous: int | None, current: int, verb: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"model": model, "previous": previous, "active": current}))
    else:
        print(f"{model}: {verb} v{current} (was v{previous if previous is not None else '-'})")


def _readable(key: str, value: Any) -> Any:
    """``value`` as a person reads it: an epoch-millisecond time (a key ending in ``_at`` or
    ``ts``) as UTC with the number beside it, inside dicts too.

    >>> _readable("trained_on", {"since_ts": 1700000000000, "rows": 5})
    {'since_ts': '2023-11-14 22:13:20Z (1700000000000)', 'rows': 5}
    """
    if isinstance(value, dict):
        return {k: _readable(str(k), v) for k, v in value.items()}
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (key.endswith("_at") or key.endswith("ts"))
        and value >= EARLIEST_TS
    ):
        return f"{_when(value)} ({value})"
    return value


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
