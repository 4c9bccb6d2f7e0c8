"""The monitor's checkpoints in Redis: what makes a restart or a rebalance lose nothing.

Per partition, the join buffer and the next input offset of each of its input topics; per set of
partitions, the analytics (metrics, drift windows, detectors, gates). One checkpoint writes all of
them in a single MULTI/EXEC, so a restored monitor resumes from a consistent cut: it seeks to the
saved offsets and replays only what came after, counting nothing twice.

The state holds river's detectors and metrics, so it is pickled. Unpickling runs code, so
:func:`loads` only resolves classes from an allow-list of modules (driftline's, river's, numpy's and
the standard containers): bytes planted in Redis cannot name ``os.system``. Restrict who may write
the monitor's keys with Redis ACLs all the same (README, Security).
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import JoinBuffer
from services.monitor.reorder import Reorder
from shared.core.errors import ConfigError
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, redis_errors

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
        found = super().find_class(module, name)
        if not _allowed_module(getattr(found, "__module__", None) or module):
            raise refused
        return found


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
