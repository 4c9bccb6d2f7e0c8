"""The Kafka boundary both client implementations meet: records, partitions, and the consumer
and producer operations driftline's services use, with driftline's guarantees.

Every implementation gives the same guarantees:

- producers are idempotent with ``acks=all``, partition keyed records with Java's and
  kafka-python's murmur2 (so a deployment can switch clients without moving a key), and report a
  failed delivery from :meth:`Producer.flush`;
- consumers never commit by themselves, read committed records only (``read_committed``), start
  from the earliest offset of a new group, and use the assignor asked for: ``range`` where the
  monitor's join needs two topics' partitions co-assigned, ``cooperative-sticky`` elsewhere;
- errors leave an implementation as :class:`~shared.core.errors.KafkaError` (with ``retriable``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

ClientName = Literal["confluent", "kafka-python"]
Assignor = Literal["range", "cooperative-sticky"]


class TP(NamedTuple):
    """A topic partition (equal to kafka-python's ``TopicPartition`` of the same values)."""

    topic: str
    partition: int


class Record(NamedTuple):
    """One consumed record: where it was, its key and value, and its timestamp (epoch ms).

    A named tuple: made for every record consumed, it costs a fifth of a frozen dataclass."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes], ...] = ()


def first_offsets(records: Iterable[Record]) -> dict[TP, int]:
    """Each partition's first offset among ``records``: where to seek back to read them again.

    >>> first_offsets([Record("t", 0, 7, None, b"", 0), Record("t", 0, 5, None, b"", 0)])
    {TP(topic='t', partition=0): 5}
    """
    first: dict[TP, int] = {}
    for record in records:
        tp = TP(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    return first


def next_offsets(records: Iterable[Record]) -> dict[TP, int]:
    """The offsets to commit after ``records``: one past the last record of each partition.

    >>> next_offsets([Record("t", 1, 7, None, b"", 0), Record("t", 1, 5, None, b"", 0)])
    {TP(topic='t', partition=1): 8}
    """
    last: dict[tuple[str, int], int] = {}
    get = last.get
    for record in records:
        tp = record.topic, record.partition
        last[tp] = max(get(tp, -1), record.offset)
    return {TP(*tp): offset + 1 for tp, offset in last.items()}


@dataclass
class Flushed:
    """What a flush achieved: records still waiting (0: all delivered or failed) and the
    deliveries that failed since the last flush, with the broker's reason."""

    pending: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(topic, reason)`` per failed delivery."""

    @property
    def ok(self) -> bool:
        return self.pending == 0 and not self.failed


Partitions = Callable[[list[TP]], None]


class Consumer(Protocol):
    """A group member with manual commits."""

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: Partitions | None = None,
        on_revoke: Partitions | None = None,
    ) -> None:
        """Join the group for ``topics``; the callbacks run inside :meth:`poll` with the
        partitions gained or lost (with ``cooperative-sticky``, only those that moved).
        Inside ``on_assign``, :meth:`seek` and :meth:`pause` of the partitions being assigned
        take effect as they are assigned."""
        ...

    def assign(self, offsets: Mapping[TP, int]) -> None:
        """Read exactly these partitions, each from its offset, outside the group's rebalancing
        (the group id still holds commits); replaces any assignment."""
        ...

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        """Up to ``max_records`` records, oldest first within each partition."""
        ...

    def assignment(self) -> set[TP]: ...

    def pause(self, partitions: Iterable[TP]) -> None: ...

    def resume(self, partitions: Iterable[TP]) -> None: ...

    def seek(self, tp: TP, offset: int) -> None:
        """Read ``tp`` from ``offset`` next (an assigned partition)."""
        ...

    def position(self, tp: TP) -> int:
        """The offset the next record of ``tp`` will have."""
        ...

    def beginning_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Each partition's first offset still stored."""
        ...

    def end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Each partition's high-water mark (the offset after its last record)."""
        ...

    def committed(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp``, None when it has none."""
        ...

    def unread(self, tp: TP) -> int | None:
        """How many records of ``tp`` this consumer has not been handed yet, as of the last high
        watermark a fetch reported; None while either is unknown, 0 for a partition not
        assigned here. No request goes out."""
        ...

    def partitions_for(self, topic: str) -> set[int]:
        """The partitions of ``topic`` (empty when the broker does not know it)."""
        ...

    def commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit these next-to-read offsets, and wait until the group has them."""
        ...

    def close(self) -> None:
        """Leave the group without committing; safe twice."""
        ...


class Producer(Protocol):
    """An idempotent producer, transactional when made with a transactional id."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue one record, with ``headers`` if given; its timestamp is ``timestamp_ms``, else now. A queue that stays
        full (the broker away) is a retriable :class:`~shared.core.errors.KafkaError` after a
        few seconds: the caller waits in bounded attempts."""
        ...

    def flush(self, timeout_s: float) -> Flushed: ...

    def partitions_for(self, topic: str) -> set[int]:
        """The partitions of ``topic``, from the broker's metadata (learnt now if not yet)."""
        ...

    def init_transactions(self, timeout_s: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, offsets: Mapping[TP, int], consumer: Consumer, timeout_s: float
    ) -> None: ...

    def commit_transaction(self, timeout_s: float) -> None: ...

    def abort_transaction(self, timeout_s: float) -> None: ...

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush what it can within ``timeout_s`` and release the client; safe twice."""
        ...


class Admin(Protocol):
    """Topic administration: what ``driftline infra up`` and every service's start ask of the
    cluster. Each call waits at most the timeout the admin was opened with; errors are
    :class:`~shared.core.errors.KafkaError`, a broker that does not answer a retriable one."""

    def topics(self) -> set[str]:
        """The names of the cluster's topics."""
        ...

    def create(self, partitions: Mapping[str, int]) -> None:
        """Create each topic with its partition count and the broker's replication factor; a
        topic that exists already (another process made it meanwhile) is no error."""
        ...

    def partition_counts(self, names: Sequence[str]) -> dict[str, int]:
        """Each topic's partition count as the broker reports it; a topic the broker does not
        (yet) report is left out."""
        ...

    def delete(self, names: Sequence[str]) -> None:
        """Delete the topics; one already gone is no error."""
        ...

    def cluster_id(self) -> str:
        """The cluster's id: proof that a broker answers metadata requests."""
        ...

    def upsert_scram_user(self, user: str, password: str, mechanism: str) -> str | None:
        """Create or reset ``user``'s SCRAM credentials for ``mechanism`` (``SCRAM-SHA-256`` or
        ``SCRAM-SHA-512``); the broker's error, None when it took them."""
        ...

    def close(self) -> None: ...
