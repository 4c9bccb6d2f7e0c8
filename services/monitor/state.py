"""The monitor's state and its store in Redis (the protocol that saves it is ``checkpoint``).

Per partition, the join buffer and the next input offset of each of its input topics; per set of
partitions, the analytics (metrics, drift windows, detectors, gates) and the events the reorder
still holds. :meth:`MonitorStateStore.save` writes all of them in a single MULTI/EXEC, so a
restored monitor resumes from a consistent cut.

A checkpoint is data only: msgpack of the typed structs below (:class:`PartitionCheckpoint`,
:class:`AnalyticsCheckpoint`), with a format number. msgpack can name no class and no function,
so bytes planted in Redis can at most be refused: they are decoded into the schema's own types,
checked, and the objects are rebuilt by their constructors from the values (river's detectors
from their parameters and state fields, river's metrics by replaying the events of their
windows). A checkpoint of another format, or one that does not fit the schema, stops the monitor
with the ``--reset`` hint.

>>> store_bytes = encode_partition(PartitionState(JoinBuffer(), {"t": 3}))
>>> decode_partition(store_bytes).offsets
{'t': 3}
>>> import pickle, os
>>> decode_partition(pickle.dumps(os.getcwd))  # a pickle is refused, never unpickled
Traceback (most recent call last):
...
msgspec.ValidationError: Object missing required field `format`
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from services.monitor.analytics.watch import ModelWatch, WatchState
from services.monitor.join import JoinBuffer, Joined, JoinState, Scored
from services.monitor.reorder import Reorder, ReorderState
from shared.core.errors import ConfigError
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, redis_errors

FORMAT: Literal[2] = 2
"""The checkpoint format; 1 was pickle (earlier driftline), which is never read."""


class PartitionCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What a checkpoint saves of one partition."""

    format: Literal[2]
    join: JoinState
    offsets: dict[str, int]


class AnalyticsCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What a checkpoint saves of the analytics of a set of partitions."""

    format: Literal[2]
    watch: WatchState
    reorder: ReorderState[Scored | Joined]


_ENCODER = msgspec.msgpack.Encoder()
_PARTITION = msgspec.msgpack.Decoder(PartitionCheckpoint)
_ANALYTICS = msgspec.msgpack.Decoder(AnalyticsCheckpoint)


def encode_partition(state: PartitionState) -> bytes:
    return _ENCODER.encode(
        PartitionCheckpoint(format=FORMAT, join=state.join.state(), offsets=dict(state.offsets))
    )


def decode_partition(data: bytes) -> PartitionState:
    saved = _PARTITION.decode(data)
    return PartitionState(JoinBuffer.from_state(saved.join), dict(saved.offsets))


def encode_analytics(watch: ModelWatch, reorder: Reorder) -> bytes:
    return _ENCODER.encode(
        AnalyticsCheckpoint(format=FORMAT, watch=watch.state(), reorder=reorder.state())
    )


def decode_analytics(data: bytes) -> tuple[ModelWatch, Reorder]:
    saved = _ANALYTICS.decode(data)
    return ModelWatch.from_state(saved.watch), Reorder.from_state(saved.reorder)


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
            data = encode_partition(state)
            written += len(data)
            pipe.set(self._keys.monitor_join(self._model, partition), data)
        if analytics is not None and partitions:
            data = encode_analytics(*analytics)
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
            return decode_partition(data)  # type: ignore[arg-type]

    def load_analytics(self, partitions: list[int]) -> tuple[ModelWatch, Reorder] | None:
        """The analytics and the events they still hold, saved for exactly ``partitions``."""
        with redis_errors("reading the monitor's checkpoint"):
            data = self._client.get(self._keys.monitor_analytics(self._model, partitions))
        if data is None:
            return None
        with self._readable("analytics"):
            return decode_analytics(data)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def _readable(self, what: str) -> Iterator[None]:
        """A checkpoint that cannot be restored stops the monitor, saying how to start afresh:
        resuming without it would skip or recount events."""
        try:
            yield
        except Exception as exc:
            raise ConfigError(
                f"the {self._model} monitor's checkpoint ({what}) in Redis cannot be restored "
                f"({type(exc).__name__}: {exc}); it may come from another driftline version, "
                "or was not written by a monitor. "
                f"Start afresh with `driftline monitor --model {self._model} --reset` (counts, "
                "metrics and detectors restart from zero)"
            ) from exc

    def clear(self) -> int:
        """Delete this model's checkpoints (``driftline monitor --reset``); return how many."""
        pattern = self._keys.monitor_checkpoints(self._model)
        with redis_errors("deleting the monitor's checkpoints"):
            names = list(self._client.scan_iter(match=pattern))
            return int(self._client.delete(*names)) if names else 0
