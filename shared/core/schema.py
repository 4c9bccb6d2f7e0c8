"""What a model version expects of each feature: its kind, and what counts as a value of that kind.

A feature is ``numeric`` (a finite number; integers stay integers), ``boolean`` or ``categorical``
(a string of at most :data:`MAX_CATEGORY` characters). ``null`` or an absent feature is *missing*,
which a version trained by this driftline scores (its pipeline imputes it), and a version made
before schemas existed cannot (``Schema.missing`` is False: it is refused with the reason).

:meth:`Schema.row` checks one event's features against the schema and returns the model's values
in column order, or raises :class:`~shared.core.errors.BadMessage` naming the feature. Only the
schema's features are looked at: extra features, whatever their type, are never refused. A value
is taken in the spellings other producers write:

- numeric: a number, or a string that parses as a finite number (``"3.5"``); a boolean as 0 or 1;
- boolean: ``true``/``false``, 0 or 1 (or 0.0, 1.0), or the strings ``"true"``/``"false"`` in any case;
- categorical: a string, an integer (an integer code, as its digits) or a boolean (``"true"``).

>>> schema = Schema([FeatureSpec("age", "numeric"), FeatureSpec("country", "categorical"),
...                  FeatureSpec("is_new", "boolean")])
>>> schema.row({"age": 41, "country": "DE", "is_new": True, "notes": {"any": ["thing"]}})
[41, 'DE', True]
>>> schema.row({"age": None, "is_new": "FALSE"})
[None, None, False]
>>> schema.row({"age": "forty", "country": "DE"})
Traceback (most recent call last):
...
shared.core.errors.BadMessage: features.age: expected a number (numeric feature), got the string 'forty'
>>> infer_schema({"a": ["1", "2.5", ""], "b": ["x", "y", "x"], "c": ["true", "False", ""]}).kinds
{'a': 'numeric', 'b': 'categorical', 'c': 'boolean'}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, get_args

import msgspec
import numpy as np
from numpy.typing import NDArray

from shared.core.errors import BadMessage, ConfigError

FeatureKind = Literal["numeric", "boolean", "categorical"]
KINDS: tuple[FeatureKind, ...] = get_args(FeatureKind)
MAX_CATEGORY = 256
"""The longest category (in characters) an event may carry; a longer string is refused."""

Value = bool | int | float | str | None
"""A feature's value once checked: a number, a boolean, a category, or None (missing)."""

_TRUE = frozenset({"true"})
_BOOLEAN_TEXT = frozenset({"true", "false"})


class FeatureSpec(msgspec.Struct, frozen=True, array_like=True):
    """One feature of a schema: its name and kind."""

    name: str
    kind: FeatureKind


class Schema(msgspec.Struct, frozen=True):
    """The features a model version reads, in its column order, each with its kind."""

    features: list[FeatureSpec]
    missing: bool = True
    """Whether the version scores missing values (its pipeline imputes them)."""

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.features]

    @property
    def kinds(self) -> dict[str, FeatureKind]:
        return {spec.name: spec.kind for spec in self.features}

    @property
    def categorical(self) -> bool:
        """Whether any feature is categorical (rows then need an object array)."""
        return any(spec.kind == "categorical" for spec in self.features)

    def row(self, features: Mapping[str, Any]) -> list[Value]:
        """The event's values of this schema's features, in order; :class:`BadMessage` naming
        the first feature whose value is not of its kind (or missing, where it cannot be)."""
        row: list[Value] = []
        for spec in self.features:
            value = features.get(spec.name)
            if value is None:
                if not self.missing:
                    raise BadMessage(
                        f"features.{spec.name}",
                        "missing; this version was made without missing-value handling and needs "
                        f"every one of {', '.join(self.names)} (retrain it with this driftline to "
                        "score events with gaps)",
                    )
                row.append(None)
                continue
            row.append(_CHECKS[spec.kind](spec.name, value))
        return row

    def matrix(self, rows: Sequence[Sequence[Value]]) -> NDArray[Any]:
        """``rows`` as the array a scikit-learn pipeline of this schema takes: floats (NaN where
        missing, booleans as 0/1) when every feature is numeric or boolean, else an object array
        whose categorical columns hold strings (None where missing)."""
        width = len(self.features)
        if not rows:
            return np.empty((0, width), dtype=object if self.categorical else float)
        if not self.categorical:
            return np.array(rows, dtype=float)  # None becomes NaN
        out = np.array(rows, dtype=object)
        for column, spec in enumerate(self.features):
            if spec.kind != "categorical":
                out[:, column] = np.array(out[:, column], dtype=float)
        return out

    def describe(self) -> str:
        """One line per kind, for `driftline models show`.

        >>> Schema([FeatureSpec("a", "numeric"), FeatureSpec("b", "categorical")]).describe()
        'numeric: a; categorical: b'
        """
        parts = []
        for kind in KINDS:
            names = [spec.name for spec in self.features if spec.kind == kind]
            if names:
                parts.append(f"{kind}: {', '.join(names)}")
        text = "; ".join(parts)
        return text if self.missing else f"{text} (no missing values)"


def numeric_schema(names: Iterable[str], *, missing: bool = False) -> Schema:
    """Every feature numeric: the schema of a version made before schemas were stored."""
    return Schema([FeatureSpec(name, "numeric") for name in names], missing=missing)


def _numeric(name: str, value: Any) -> int | float:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int:
        if -(2**63) <= value < 2**63:
            return value  # type: ignore[no-any-return]
        raise BadMessage(f"features.{name}", "integer out of range (a 64-bit integer at most)")
    if kind is bool:
        return int(value)
    if kind is str:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number) if number.is_integer() and "." not in value else number
            raise BadMessage(f"features.{name}", f"must be a finite number, got {value!r}")
    raise BadMessage(f"features.{name}", f"expected a number (numeric feature), got {_what(value)}")


def _boolean(name: str, value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if (kind is int or kind is float) and value in (0, 1):
        return bool(value)
    if kind is str and value.strip().lower() in _BOOLEAN_TEXT:
        return value.strip().lower() in _TRUE
    raise BadMessage(
        f"features.{name}",
        f"expected true or false (boolean feature), got {_what(value)}",
    )


def _categorical(name: str, value: Any) -> str:
    kind = type(value)
    if kind is str:
        if len(value) > MAX_CATEGORY:
            raise BadMessage(
                f"features.{name}",
                f"a category of {len(value):,} characters, over the {MAX_CATEGORY} allowed",
            )
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float and value.is_integer():
        return str(int(value))
    raise BadMessage(
        f"features.{name}",
        f"expected a category (a string or an integer code), got {_what(value)}",
    )


_CHECKS = {"numeric": _numeric, "boolean": _boolean, "categorical": _categorical}


def _what(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"the string {shown!r}"
    names = {bool: "a boolean", int: "an integer", float: "a number", list: "an array"}
    return names.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)


# ---- inferring a schema from training data -----------------------------------------------------


def refused_feature(reason: str) -> str | None:
    """The feature a refusal names (the checks here say ``features.NAME: ...``), else None: what
    the predictor counts per feature, and ``driftline report`` reads back from dead letters.

    >>> refused_feature("features.age: expected a number"), refused_feature("$: invalid JSON")
    ('age', None)
    """
    if reason.startswith("features.") and ": " in reason:
        return reason.removeprefix("features.").split(": ", 1)[0]
    return None


def is_missing(value: Any) -> bool:
    """A CSV's empty cell (or ``NaN``, as some writers spell a gap), JSON null: no value.

    >>> [is_missing(v) for v in ("", "NaN", None, float("nan"), 0, "n/a")]
    [True, True, True, True, False, False]
    """
    if value is None or value == "":
        return True
    kind = type(value)
    return (kind is float and math.isnan(value)) or (kind is str and value.lower() == "nan")


def infer_kind(values: Iterable[Any]) -> FeatureKind:
    """The kind of a column of raw values (CSV strings or JSON values), missing ones skipped:
    boolean if every value is a boolean (or ``true``/``false`` text), numeric if every one is a
    number (or parses as a finite one), else categorical.

    >>> infer_kind([True, False, None]), infer_kind(["1", "2", ""]), infer_kind([1, "a"])
    ('boolean', 'numeric', 'categorical')
    """
    boolean = numeric = True
    seen = False
    for value in values:
        if is_missing(value):
            continue
        seen = True
        kind = type(value)
        text = value.strip().lower() if kind is str else None
        if boolean and not (kind is bool or text in _BOOLEAN_TEXT):
            boolean = False
        if numeric and not ((kind is int or kind is float) or (text is not None and _parses(text))):
            numeric = False
        if not boolean and not numeric:
            return "categorical"
    if not seen:
        return "numeric"
    return "boolean" if boolean else "numeric" if numeric else "categorical"


def _parses(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def infer_schema(
    columns: Mapping[str, Sequence[Any]],
    *,
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
) -> Schema:
    """The schema of ``columns`` (name to raw values), each kind inferred unless named in
    ``categorical`` or ``numeric`` (``--categorical COL``, for integer codes; ``--numeric COL``).
    Raises :class:`ConfigError` for an override naming no column (a value that does not fit a
    forced kind is refused where the rows are checked, with its line)."""
    forced: dict[str, FeatureKind] = dict.fromkeys(categorical, "categorical")
    for name in numeric:
        if name in forced:
            raise ConfigError(f"{name} cannot be both --categorical and --numeric")
        forced[name] = "numeric"
    unknown = sorted(set(forced) - set(columns))
    if unknown:
        raise ConfigError(
            f"--categorical/--numeric name {', '.join(unknown)}, not a feature column; "
            f"the features are {', '.join(columns)}"
        )
    specs = []
    for name, values in columns.items():
        kind = forced.get(name) or infer_kind(values)
        specs.append(FeatureSpec(name, kind))
    return Schema(specs)
