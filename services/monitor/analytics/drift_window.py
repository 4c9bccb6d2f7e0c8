"""The recent values of a version's features and scores, as arrays ready for the drift tests.

Each variable keeps its last ``size`` values, as a ``deque(maxlen=size)`` would (an event without a
value for a variable leaves that variable's window as it was). The monitor adds every scored event
and tests the windows every few hundred events; so :meth:`DriftWindows.add` only keeps a reference
to the event's feature dict, and the rows seen since the last test become one array per variable
when the windows are read: per event that is one list append instead of a dozen deque appends, and
a test no longer converts a thousand values per variable from Python floats.

>>> windows = DriftWindows(["a", "b"], size=3)
>>> for i in range(5):
...     windows.add({"a": float(i), "b": -float(i)} if i != 2 else {"a": 2.0}, score=i / 10)
>>> windows.values("a").tolist(), windows.values("b").tolist(), windows.scores().tolist()
([2.0, 3.0, 4.0], [-1.0, -3.0, -4.0], [0.2, 0.3, 0.4])
>>> windows.count("b")
3
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np

from shared.stats.quality import as_number

_EMPTY = np.empty(0, dtype=float)
_NONE = np.empty(0, dtype=bool)


class DriftWindows:
    """Sliding windows of the last ``size`` values of each named feature, and of the score."""

    def __init__(self, names: Iterable[str], size: int) -> None:
        if size < 1:
            raise ValueError(f"a drift window needs at least one value, got size {size}")
        self.names = list(names)
        self.size = size
        self._windows: dict[str, np.ndarray] = dict.fromkeys(self.names, _EMPTY)
        self._missing: dict[str, np.ndarray] = dict.fromkeys(self.names, _NONE)
        """Per variable, whether each of the last ``size`` events lacked a value (data quality)."""
        self._scores = _EMPTY
        self._rows: list[Mapping[str, Any]] = []
        self._new_scores: list[float | None] = []

    def add(self, features: Mapping[str, Any], score: float | None) -> None:
        """Keep one event's features (not copied: a decoded message's dict is not changed after)
        and its score (``None``: none to watch)."""
        self._rows.append(features)
        self._new_scores.append(score)
        if len(self._rows) >= self.size:  # bound what waits, however rarely the windows are read
            self._fold()

    def values(self, name: str) -> np.ndarray:
        """The last ``size`` values of feature ``name``, oldest first."""
        self._fold()
        return self._windows[name]

    def count(self, name: str) -> int:
        return self.values(name).size

    def missing(self, name: str) -> np.ndarray:
        """For each of the last ``size`` events (oldest first), whether it had no value of
        ``name``."""
        self._fold()
        return self._missing[name]

    def scores(self) -> np.ndarray:
        """The last ``size`` scores, oldest first."""
        self._fold()
        return self._scores

    def restore(self, features: Mapping[str, Iterable[float]], scores: Iterable[float]) -> None:
        """Set the windows from values per variable (oldest first)."""
        for name in self.names:
            self._windows[name] = self._slide(_EMPTY, np.fromiter(features.get(name, ()), float))
        self._scores = self._slide(_EMPTY, np.fromiter(scores, float))

    def state(self) -> WindowsState:
        """The windows as plain data (float64 bytes per variable), for a checkpoint."""
        self._fold()
        return WindowsState(
            self.names,
            self.size,
            {name: self._windows[name].astype("<f8").tobytes() for name in self.names},
            self._scores.astype("<f8").tobytes(),
            {name: self._missing[name].astype(np.uint8).tobytes() for name in self.names},
        )

    @classmethod
    def from_state(cls, state: WindowsState) -> DriftWindows:
        """The windows ``state`` describes.

        >>> windows = DriftWindows(["a"], size=2)
        >>> windows.add({"a": 1.0}, 0.5); windows.add({"a": 2.0}, None)
        >>> DriftWindows.from_state(windows.state()).values("a").tolist()
        [1.0, 2.0]
        """
        windows = cls(state.names, state.size)
        values = {name: _floats(data, state.size) for name, data in state.windows.items()}
        if set(values) != set(windows.names):
            raise ValueError("a drift window's variables do not match its names")
        windows.restore(values, _floats(state.scores, state.size))
        for name, flags in state.missing.items():
            if name not in windows._missing or len(flags) > state.size:
                raise ValueError("a drift window's missing flags do not match its names")
            windows._missing[name] = np.frombuffer(flags, dtype=np.uint8).astype(bool)
        return windows

    def _fold(self) -> None:
        """Move the rows added since the last read into the windows."""
        rows, self._rows = self._rows, []
        scores, self._new_scores = self._new_scores, []
        if not rows:
            return
        if self.names:
            block = _block(rows, self.names)
            for column, name in enumerate(self.names):
                self._windows[name] = self._slide(self._windows[name], block[:, column])
                flags = np.isnan(block[:, column])
                self._missing[name] = np.concatenate((self._missing[name], flags))[-self.size :]
        self._scores = self._slide(self._scores, np.array(scores, dtype=float))

    def _slide(self, window: np.ndarray, new: np.ndarray) -> np.ndarray:
        present: np.ndarray = new[~np.isnan(new)]  # NaN: no value (the monitor refuses NaN)
        if present.size >= self.size:
            return present[-self.size :].copy()
        return np.concatenate((window[-(self.size - present.size) :], present))


class WindowsState(msgspec.Struct, frozen=True):
    """:class:`DriftWindows` as plain data."""

    names: list[str]
    size: int
    windows: dict[str, bytes]
    """Each variable's values, oldest first, as little-endian float64."""
    scores: bytes
    missing: dict[str, bytes] = {}
    """Each variable's missing flags of the last events, one byte (0 or 1) each."""


def _floats(data: bytes, size: int) -> np.ndarray:
    if len(data) % 8 or len(data) // 8 > size:
        raise ValueError("a drift window's values are not at most `size` float64s")
    return np.frombuffer(data, dtype="<f8").astype(float)


def _block(rows: list[Mapping[str, Any]], names: list[str]) -> np.ndarray:
    """``rows`` as a float array, one column per name; NaN where a row has no value (or one
    that is not a number: a string another writer put in a prediction is no number to test).

    >>> _block([{"a": 1, "b": True}, {"a": None}, {"a": "x", "b": 2.5}], ["a", "b"]).tolist()
    [[1.0, 1.0], [nan, nan], [nan, 2.5]]
    """
    if len(names) > 1:
        get = itemgetter(*names)
        try:
            return np.array([get(row) for row in rows], dtype=float)
        except (KeyError, TypeError, ValueError):
            pass  # a row without one of the names: the slow path fills in NaN
    try:
        return np.array([[row.get(name) for name in names] for row in rows], dtype=float)
    except (TypeError, ValueError):
        return np.array([[as_number(row.get(name)) for name in names] for row in rows])


class CategoryWindows:
    """The last ``size`` values of each named categorical feature (None: missing), oldest first.

    >>> windows = CategoryWindows(["c"], size=2)
    >>> for value in ("DE", None, "FR"):
    ...     windows.add({"c": value})
    >>> windows.values("c")
    [None, 'FR']
    """

    def __init__(self, names: Iterable[str], size: int) -> None:
        if size < 1:
            raise ValueError(f"a drift window needs at least one value, got size {size}")
        self.names = list(names)
        self.size = size
        self._windows: dict[str, deque[str | None]] = {
            name: deque(maxlen=size) for name in self.names
        }

    def add(self, features: Mapping[str, Any]) -> None:
        for name, window in self._windows.items():
            value = features.get(name)
            window.append(value if isinstance(value, str) else None)

    def values(self, name: str) -> list[str | None]:
        return list(self._windows[name])

    def count(self, name: str) -> int:
        return len(self._windows[name])

    def state(self) -> CategoryWindowsState:
        return CategoryWindowsState(self.size, {n: list(w) for n, w in self._windows.items()})

    @classmethod
    def from_state(cls, state: CategoryWindowsState) -> CategoryWindows:
        """The windows ``state`` describes.

        >>> windows = CategoryWindows(["c"], size=3)
        >>> windows.add({"c": "x"})
        >>> CategoryWindows.from_state(windows.state()).values("c")
        ['x']
        """
        windows = cls(state.windows, state.size)
        for name, values in state.windows.items():
            if len(values) > state.size:
                raise ValueError("a category window holds more than `size` values")
            windows._windows[name].extend(values)
        return windows


class CategoryWindowsState(msgspec.Struct, frozen=True):
    """:class:`CategoryWindows` as plain data."""

    size: int
    windows: dict[str, list[str | None]]
