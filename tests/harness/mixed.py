"""Real mixed-type data for tests: River's bundled solar-flare set, written as users' files are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXT = ("zurich-class", "largest-spot-size", "spot-distribution")
"""Its three text columns (categories)."""


def solar_flare_rows() -> list[tuple[dict[str, Any], int]]:
    """The 1,066 regions of River's ``SolarFlare`` with a boolean feature added (``complex``: the
    region was historically complex) and the label ``flare``: a C-class flare followed."""
    from river import datasets  # noqa: PLC0415

    rows = []
    for x, y in datasets.SolarFlare():
        features = dict(x)
        features["complex"] = features.pop("hist-complex") == 1
        rows.append((features, int(y["c-class-flares"] > 0)))
    return rows


def solar_flare_csv(path: Path, *, blanks_every: int = 17) -> Path:
    """The rows as a CSV with a ``ts`` column, with blank cells in one text and one number
    column every ``blanks_every`` rows (as exported tables have)."""
    rows = solar_flare_rows()
    names = list(rows[0][0])
    lines = [",".join(["ts", *names, "flare"])]
    for i, (x, label) in enumerate(rows):
        blank = i % blanks_every == 0
        cells = [
            "" if blank and name in ("zurich-class", "area") else _cell(x[name]) for name in names
        ]
        lines.append(",".join([str(1_700_000_000_000 + i * 1_000), *cells, str(label)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _cell(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def users_pipeline(data: Any, estimator: Any) -> bytes:
    """What a user writes outside driftline: their own ColumnTransformer (columns by position,
    their own imputers and encoder) before ``estimator``, fitted on ``data`` (a
    ``shared.models.training.Dataset``) and saved with skops."""
    import skops.io  # noqa: PLC0415
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder  # noqa: PLC0415

    kinds = data.feature_schema.kinds
    text = [i for i, name in enumerate(data.features) if kinds[name] == "categorical"]
    numbers = [i for i in range(len(data.features)) if i not in text]
    prepare = ColumnTransformer(
        [
            ("n", SimpleImputer(strategy="mean"), numbers),
            ("c", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="?", missing_values=None),
                OneHotEncoder(handle_unknown="ignore"),
            ), text),
        ]
    )  # fmt: skip
    pipeline = make_pipeline(prepare, estimator)
    pipeline.fit(data.X, data.y)
    return bytes(skops.io.dumps(pipeline))
