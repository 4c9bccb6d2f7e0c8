"""Data quality of a version's features over the recent window, against its training data: what
the monitor's ``data_quality`` alerts judge, and what ``driftline report`` tabulates.

Per feature, three shares of the last window, each next to what training had: the share of events
missing the feature (a feature that stops arriving is missing from every event); for a number,
the share of values outside the training range; for a category, the share of values outside the
training categories the reference lists (every training category when it had at most
:data:`~shared.stats.profile.TOP_CATEGORIES`, so then: never seen in training). A feature's
statistic is its largest excess over training, which one ``data_quality`` alert per feature
judges through the same gate as every alert (minimum count, hysteresis, cooldown).

>>> from shared.stats.profile import CategoryProfile
>>> found = category_quality("c", ["DE", None, "ZZ", "DE"], CategoryProfile(9, ["DE"], [1.0], 0.0, 0.0))
>>> found.missing, found.unseen, found.worst()
(0.25, 0.3333333333333333, ('unseen', 0.3333333333333333))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared.stats.profile import TOP_CATEGORIES, CategoryProfile, DistributionProfile

Check = Literal["missing", "out_of_range", "unseen"]


@dataclass(frozen=True)
class FeatureQuality:
    """One feature's shares over the window, with training's beside them."""

    feature: str
    events: int
    """Events in the window (the missing share's denominator)."""
    missing: float
    missing_reference: float
    out_of_range: float | None = None
    """Numbers: the share of present values outside the training range."""
    unseen: float | None = None
    """Categories: the share of present values outside the training categories listed."""
    unseen_reference: float | None = None
    """The training share of categories outside those listed (0 when all are listed)."""
    range: tuple[float, float] | None = None

    def excess(self) -> dict[Check, float]:
        """Each check's share above training's."""
        found: dict[Check, float] = {"missing": self.missing - self.missing_reference}
        if self.out_of_range is not None:
            found["out_of_range"] = self.out_of_range
        if self.unseen is not None:
            found["unseen"] = self.unseen - (self.unseen_reference or 0.0)
        return found

    def worst(self) -> tuple[Check, float]:
        """The check most above training, and by how much."""
        check, value = max(self.excess().items(), key=lambda item: item[1])
        return check, value

    def describe(self) -> str:
        """The finding in words, worst first."""
        check, _ = self.worst()
        missing = (
            f"missing from every one of the last {self.events} events (it stopped arriving)"
            if self.missing >= 1.0
            else f"missing in {self.missing:.1%} of the last {self.events} events "
            f"(training: {self.missing_reference:.1%})"
        )
        words = {"missing": missing}
        if self.out_of_range is not None and self.range is not None:
            low, high = self.range
            words["out_of_range"] = (
                f"{self.out_of_range:.1%} of its values outside the training range "
                f"[{low:.4g}, {high:.4g}]"
            )
        if self.unseen is not None:
            listed = (self.unseen_reference or 0.0) == 0.0
            where = (
                "never seen in training" if listed else f"outside training's top {TOP_CATEGORIES}"
            )
            words["unseen"] = (
                f"{self.unseen:.1%} of its values are categories {where} "
                f"(training: {self.unseen_reference or 0.0:.1%})"
            )
        rest = [text for name, text in words.items() if name != check]
        return "; ".join([words[check], *rest])


def as_number(value: object) -> float:
    """A feature value as a number to measure: a number (or boolean) as a float, anything else
    (missing, a category another writer put where a number belongs) NaN.

    >>> as_number(2), as_number(True), as_number("x"), as_number(None)
    (2.0, 1.0, nan, nan)
    """
    return float(value) if isinstance(value, int | float) else float("nan")


def numeric_quality(
    name: str,
    present: np.ndarray,
    missing: np.ndarray,
    profile: DistributionProfile | None,
    missing_reference: float,
) -> FeatureQuality | None:
    """The quality of a number (or boolean): ``present`` are its last values, ``missing`` a flag
    per recent event; None when the window has no event."""
    if missing.size == 0:
        return None
    out, bounds = None, None
    if profile is not None and present.size and len(profile.quantiles) >= 2:
        low, high = float(profile.quantiles[0]), float(profile.quantiles[-1])
        out = float(np.count_nonzero((present < low) | (present > high)) / present.size)
        bounds = (low, high)
    return FeatureQuality(
        feature=name,
        events=int(missing.size),
        missing=float(np.count_nonzero(missing) / missing.size),
        missing_reference=missing_reference,
        out_of_range=out,
        range=bounds,
    )


def category_quality(
    name: str, values: list[str | None], profile: CategoryProfile
) -> FeatureQuality | None:
    """The quality of a category over its last values (None: missing)."""
    if not values:
        return None
    present = [value for value in values if value is not None]
    known = set(profile.categories)
    unseen = sum(1 for value in present if value not in known) / len(present) if present else 0.0
    share_present = 1.0 - profile.missing
    return FeatureQuality(
        feature=name,
        events=len(values),
        missing=1.0 - len(present) / len(values),
        missing_reference=profile.missing,
        unseen=unseen,
        unseen_reference=profile.other / share_present if share_present > 0 else 0.0,
    )
