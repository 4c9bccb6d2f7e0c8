"""The monitor's state and its store in Redis (the protocol that saves it is ``checkpoint``).

Per partition, the join buffer and the next input offset of each of its input topics; per set of
partitions, the analytics (metrics, drift windows, detectors, gates) and the events the reorder
still holds. :meth:`MonitorStateStore.save` writes all of them in a single MULTI/EXEC, so a
restored monitor resumes from a consistent cut.

The state holds river's detectors and metrics, so it is pickled. Unpickling runs code, so
:func:`loads` only resolves classes from an allow-list of modules (driftline's, river's, numpy's
and the standard containers): bytes planted in Redis cannot name ``os.system``. Restrict who may
write the monitor's keys with Redis ACLs all the same (README, Security). Checkpoints written by
earlier driftline code are read through the shims at the end of this module (:func:`migrate`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from services.monitor.analytics.alerts import AlertBook
from services.monitor.analytics.config import MonitorConfig
from services.monitor.analytics.drift_window import DriftWindows
from services.monitor.analytics.version import CONCEPT, VersionWatch
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import JoinBuffer
from services.monitor.reorder import Reorder
from services.monitor.retrain import LocalClaim
from shared.core.errors import ConfigError
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, redis_errors
from shared.stats.rolling import _Window

ALLOWED_MODULES = (
    "shared",
    "services.monitor",
    "river",
    "numpy",
    "collections",
    "datetime",
    "copyreg",
    "msgspec",
)
ALLOWED_BUILTINS = frozenset(
    {
        "set",
        "frozenset",
        "dict",
        "list",
        "tuple",
        "int",
        "float",
        "str",
        "bytes",
        "bool",
        "slice",
        "complex",
        "bytearray",
        "range",
        "object",
    }
)
ALLOWED_EXTRA = frozenset({("functools", "partial")})


def _allowed_module(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in ALLOWED_MODULES)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        refused = pickle.UnpicklingError(
            f"monitor state names {module}.{name}, which is not allowed"
        )
        if module == "builtins":
            if name in ALLOWED_BUILTINS:
                return super().find_class(module, name)
            raise refused
        if (module, name) in ALLOWED_EXTRA:
            return super().find_class(module, name)
        # A dotted name could walk from an allowed module to anything it imported (os.system).
        if "." in name or not _allowed_module(module):
            raise refused
        module, name, old = _current(module, name)
        found = super().find_class(module, name)
        if not _allowed_module(getattr(found, "__module__", None) or module):
            raise refused
        return _legacy(found) if old and found in _MIGRATIONS else found


def dumps(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """Unpickle ``data``, refusing any class outside :data:`ALLOWED_MODULES`.

    >>> loads(dumps({"a": [1, 2]}))
    {'a': [1, 2]}
    >>> import os
    >>> loads(dumps(os.getcwd))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: monitor state names posix.getcwd, which is not allowed
    """
    return _RestrictedUnpickler(io.BytesIO(data)).load()


@dataclass
class PartitionState:
    """One partition's join buffer and the next offset to read of each input topic."""

    join: JoinBuffer
    offsets: dict[str, int]


@dataclass
class MonitorState:
    """Everything a checkpoint saves: the partitions this monitor owns, and its analytics."""

    partitions: dict[int, PartitionState] = field(default_factory=dict)
    watch: ModelWatch | None = None
    reorder: Reorder = field(default_factory=Reorder)
    """Completed events waiting for every partition to pass their event time."""


class MonitorStateStore:
    """Saves and restores one model's monitor checkpoints."""

    def __init__(self, client: Redis, keys: RedisKeys, model: str) -> None:
        self._client = client
        self._keys = keys
        self._model = model

    def save(
        self,
        partitions: dict[int, PartitionState],
        analytics: tuple[ModelWatch, Reorder] | None,
    ) -> int:
        """Write every partition's state and the analytics atomically; return the bytes written."""
        pipe = self._client.pipeline(transaction=True)
        written = 0
        for partition, state in partitions.items():
            data = dumps(state)
            written += len(data)
            pipe.set(self._keys.monitor_join(self._model, partition), data)
        if analytics is not None and partitions:
            data = dumps(analytics)
            written += len(data)
            pipe.set(self._keys.monitor_analytics(self._model, list(partitions)), data)
        with redis_errors("saving the monitor's checkpoint"):
            pipe.execute()
        return written

    def load_partition(self, partition: int) -> PartitionState | None:
        with redis_errors("reading the monitor's checkpoint"):
            data = self._client.get(self._keys.monitor_join(self._model, partition))
        if data is None:
            return None
        with self._readable(f"partition {partition}"):
            state: PartitionState = _expect(loads(data), PartitionState)  # type: ignore[arg-type]
        return state

    def load_analytics(self, partitions: list[int]) -> tuple[ModelWatch, Reorder] | None:
        """The analytics and the events they still hold, saved for exactly ``partitions``."""
        with redis_errors("reading the monitor's checkpoint"):
            data = self._client.get(self._keys.monitor_analytics(self._model, partitions))
        if data is None:
            return None
        with self._readable("analytics"):
            found = loads(data)  # type: ignore[arg-type]
            if not (isinstance(found, tuple) and len(found) == 2):
                raise pickle.UnpicklingError("the analytics checkpoint is not (watch, reorder)")
            return _expect(found[0], ModelWatch), _expect(found[1], Reorder)

    @contextlib.contextmanager
    def _readable(self, what: str) -> Iterator[None]:
        """A checkpoint that cannot be restored stops the monitor, saying how to start afresh:
        resuming without it would skip or recount events."""
        try:
            yield
        except Exception as exc:
            raise ConfigError(
                f"the {self._model} monitor's checkpoint ({what}) in Redis cannot be restored "
                f"({type(exc).__name__}: {exc}); it may come from another driftline version. "
                f"Start afresh with `driftline monitor --model {self._model} --reset` (counts, "
                "metrics and detectors restart from zero)"
            ) from exc

    def clear(self) -> int:
        """Delete this model's checkpoints (``driftline monitor --reset``); return how many."""
        pattern = self._keys.monitor_checkpoints(self._model)
        with redis_errors("deleting the monitor's checkpoints"):
            names = list(self._client.scan_iter(match=pattern))
            return int(self._client.delete(*names)) if names else 0


def _expect(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise pickle.UnpicklingError(f"expected a {kind.__name__}, found {type(value).__name__}")
    return value


# ---- checkpoints written by earlier driftline code ---------------------------------------------
#
# Until the monitor's modules moved into services/monitor/, its checkpoints named classes in
# shared.*; some formats also changed since. An old checkpoint is read through these shims, so
# the domain classes know only their current state: each shim names where a class lives now, and
# for the classes whose fields changed, how the old fields become the new ones.

_MOVED = {
    "shared.monitoring": "services.monitor.analytics.watch",
    "shared.monitor_state": "services.monitor.state",
    "shared.join": "services.monitor.join",
    "shared.reorder": "services.monitor.reorder",
    "shared.drift_window": "services.monitor.analytics.drift_window",
    "shared.rolling": "shared.stats.rolling",
    "shared.concept": "shared.stats.concept",
    "shared.alert_gate": "shared.stats.alert_gate",
    "shared.profile": "shared.stats.profile",
    "shared.drift": "shared.stats.drift",
    "shared.messages": "shared.core.messages",
}
"""Old module -> the module it became."""

_CLASS_MOVED = {
    ("services.monitor.analytics.watch", "VersionWatch"): "services.monitor.analytics.version",
    ("services.monitor.analytics.watch", "MonitorConfig"): "services.monitor.analytics.config",
    ("services.monitor.analytics.watch", "VersionInfo"): "services.monitor.analytics.config",
    ("services.monitor.analytics.watch", "Retrain"): "services.monitor.analytics.version",
}
"""Classes that left the module they moved to with it."""


def _old_version_watch(state: dict[str, Any]) -> dict[str, Any]:
    state.pop("_sorted", None)  # what older checkpoints cached instead
    if "features" in state:  # older checkpoints kept a deque per variable
        features, scores = state.pop("features"), state.pop("scores")
        windows = DriftWindows(features, state["config"].drift_window)
        windows.restore(features, scores)
        state["windows"] = windows
    state.setdefault("scored_ts", 0)  # older checkpoints stamped alerts with each event's time
    state.setdefault("learned_ts", state.get("_concept_last") or 0)
    if "alerts" not in state:  # gates and firing alerts lived on the version before the book
        config: MonitorConfig = state["config"]
        book = AlertBook(
            state["model"],
            state["info"].version,
            hysteresis=config.hysteresis,
            cooldown_ms=config.cooldown_ms,
        )
        book.gates = state.pop("_gates")
        book.firing = state.pop("firing")
        book.episodes = state.pop("_episodes")
        if CONCEPT in book.firing:  # concept drift had no gate: give it one that is firing
            gate = book.gate(*CONCEPT, 0.5, min_samples=config.concept_min_labels, cooldown_ms=0)
            gate.update(1.0, samples=config.concept_min_labels, ts_ms=0)
        state["alerts"] = book
    return state


def _old_model_watch(state: dict[str, Any]) -> dict[str, Any]:
    if "claim" not in state:  # the outstanding request was a field before the claim
        claim = LocalClaim(state["config"].retrain_timeout_ms)
        outstanding = state.pop("outstanding", None)
        if outstanding is not None:
            claim.try_claim(*outstanding)
        state["claim"] = claim
    return state


def _old_window(state: dict[str, Any]) -> dict[str, Any]:
    if "_cm" in state:  # older checkpoints updated river's confusion matrix per event
        cm, metrics_ = state.pop("_cm"), state.pop("metrics")
        state["names"] = list(metrics_)
        state["_kinds"] = {n: type(m) for n, m in metrics_.items() if n != "log_loss"}
        state["_pairs"] = (
            None if cm is None else dict(Counter((y, p) for _, y, p, _ in state["events"]))
        )
        state["metrics"] = (
            {} if cm is not None else {n: m for n, m in metrics_.items() if n != "log_loss"}
        )
        state["_read"] = None
    return state


def _old_reorder(state: dict[str, Any]) -> dict[str, Any]:
    if "_heap" in state:  # older checkpoints held a heap of (ts, arrival, item)
        heap = state.pop("_heap")
        del state["_arrival"]
        state["_held"] = [(ts, item) for ts, _, item in sorted(heap, key=itemgetter(0, 1))]
    if "_held" in state:  # then a list in arrival order, sorted at each release
        held = sorted(state.pop("_held"), key=itemgetter(0))
        state.update(_new=[], _runs=[held] if held else [], _size=len(held))
    return state


_MIGRATIONS: dict[type[Any], Callable[[dict[str, Any]], dict[str, Any]]] = {
    VersionWatch: _old_version_watch,
    ModelWatch: _old_model_watch,
    _Window: _old_window,
    Reorder: _old_reorder,
}
"""Classes whose fields changed: how an old checkpoint's fields become today's."""


def migrate(cls: type[Any], state: dict[str, Any]) -> Any:
    """An instance of ``cls`` from the state an old checkpoint saved for it."""
    restored = object.__new__(cls)
    state = _MIGRATIONS[cls](dict(state))
    setstate = getattr(cls, "__setstate__", None)
    if setstate is not None:
        setstate(restored, state)
    else:
        restored.__dict__.update(state)
    return restored


@functools.cache
def _legacy(cls: type[Any]) -> type[Any]:
    """A stand-in that an old pickle builds, and that becomes ``cls`` once its state is read."""

    class Old(cls):  # type: ignore[misc]
        def __setstate__(self, state: dict[str, Any]) -> None:
            current = migrate(cls, state)
            self.__class__ = cls
            self.__dict__.clear()
            self.__dict__.update(current.__dict__)

    Old.__name__ = Old.__qualname__ = f"Old{cls.__name__}"
    return Old


def _current(module: str, name: str) -> tuple[str, str, bool]:
    """Where ``module.name`` of an old checkpoint lives now, and whether it was renamed."""
    moved = _MOVED.get(module)
    if moved is None:
        return module, name, False
    return _CLASS_MOVED.get((moved, name), moved), name, True
