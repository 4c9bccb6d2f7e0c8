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
