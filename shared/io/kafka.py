"""Kafka I/O on kafka-python: producers, consumers, the CLI's topic readers and the dead-letter
writer (topic administration, on either client, is :mod:`shared.io.transport.admin`).

The only module that imports kafka-python (``pyproject.toml``'s import contracts enforce it): the
client types services handle are re-exported here under kafka-python's names. Its errors leave it
translated into
:class:`shared.core.errors.KafkaError` (keeping ``retriable``). Delivery is at-least-once by default:
producers wait for ``acks=all`` with idempotence on, and consumers never auto-commit, so a service
commits only offsets whose outputs are flushed.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import kafka.errors
import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from shared.core.clock import now_ms
from shared.core.errors import BadMessage, ConfigError, KafkaError
from shared.core.messages import DEFAULT_MAX_BYTES, DeadLetter, Message

__all__ = [
    "AssignmentWatchdog",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "DeadLetterWriter",
    "FutureRecordMetadata",
    "Kafka",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaEndpoint",
    "KafkaProducer",
    "OffsetAndMetadata",
    "RangePartitionAssignor",
    "TopicPartition",
    "decode_or_dead_letter",
    "endpoint_of",
    "kafka_errors",
    "make_consumer",
    "make_producer",
    "no_broker",
    "plain_admin",
    "plain_consumer",
    "read_to_end",
    "restore_parked_records",
    "security_options",
    "unread",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_NO_BROKER = "Unable to bootstrap"
"""What kafka-python says (in a KafkaTimeoutError) when no bootstrap server answers."""


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where the brokers answer, and how a client authenticates to them: the bootstrap servers
    and kafka-python's security options (:func:`security_options`), which every consumer,
    producer and admin client here receives. Printed, it is the bootstrap only: no secret."""

    bootstrap: str
    security: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return self.bootstrap

    def config(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap, **self.security}

    @property
    def protocol(self) -> str:
        return str(self.security.get("security_protocol", "PLAINTEXT"))


Kafka = KafkaEndpoint | str
"""A broker to connect to: an endpoint, or a bare bootstrap string (plaintext)."""


def endpoint_of(kafka: Kafka) -> KafkaEndpoint:
    """``kafka`` as an endpoint (a bare bootstrap string is plaintext)."""
    return kafka if isinstance(kafka, KafkaEndpoint) else KafkaEndpoint(kafka)


def security_options(
    protocol: str = "PLAINTEXT",
    *,
    mechanism: str = "SCRAM-SHA-512",
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    key_password: str | None = None,
) -> dict[str, Any]:
    """kafka-python's options for ``protocol``; :class:`ConfigError` naming what is missing.

    >>> security_options("SASL_SSL", username="u", password="p")["sasl_mechanism"]
    'SCRAM-SHA-512'
    >>> security_options("SASL_SSL")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.core.errors.ConfigError: DRIFTLINE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs ...
    """
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        if not username or not password:
            raise ConfigError(
                f"DRIFTLINE_KAFKA_SECURITY_PROTOCOL={protocol} needs DRIFTLINE_KAFKA_SASL_USERNAME "
                "and DRIFTLINE_KAFKA_SASL_PASSWORD"
            )
        options.update(
            sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password
        )
    if protocol.endswith("SSL"):
        for name, path in (("ssl_cafile", ca_file), ("ssl_certfile", cert_file)):
            if path is not None:
                options[name] = str(path)
        if key_file is not None:
            options["ssl_keyfile"] = str(key_file)
        if key_password:
            options["ssl_password"] = key_password
    return options


def no_broker(action: str, bootstrap: object, *, secured: bool, detail: str = "") -> KafkaError:
    """The retriable error of ``action`` when no broker answered at ``bootstrap``, with the fix
    (and, on a secured connection, the settings a refused handshake points at)."""
    where = f" at {bootstrap}" if bootstrap else ""
    hint = (
        " If it runs, it refused this client's TLS or SASL handshake: check "
        "DRIFTLINE_KAFKA_SECURITY_PROTOCOL, DRIFTLINE_KAFKA_SASL_USERNAME/_PASSWORD/"
        "_MECHANISM and DRIFTLINE_KAFKA_SSL_CA_FILE."
        if secured
        else ""
    )
    return KafkaError(
        f"{action}: no Kafka broker answered{where}{detail}. Start one with `driftline infra up`, "
        f"or set DRIFTLINE_KAFKA_BOOTSTRAP to a running broker.{hint}",
        retriable=True,
    )


@contextmanager
def kafka_errors(action: str, bootstrap: object = None) -> Iterator[None]:
    """Translate kafka-python errors raised inside the block into :class:`KafkaError`.

    ``action`` says what was being done ("creating topics"), so the message reads as a sentence.
    """
    try:
        yield
    except kafka.errors.SaslAuthenticationFailedError as exc:
        raise KafkaError(
            f"{action}: Kafka refused the credentials ({exc}). Check DRIFTLINE_KAFKA_SASL_USERNAME, "
            "DRIFTLINE_KAFKA_SASL_PASSWORD and DRIFTLINE_KAFKA_SASL_MECHANISM.",
            retriable=False,
        ) from None
    except kafka.errors.KafkaError as exc:
        if _NO_BROKER in str(exc):
            secured = isinstance(bootstrap, KafkaEndpoint) and bootstrap.protocol != "PLAINTEXT"
            raise no_broker(action, bootstrap, secured=secured) from None
        raise KafkaError(f"{action}: {exc}", retriable=bool(exc.retriable)) from exc


def make_producer(
    kafka_at: Kafka,
    *,
    client_id: str = "driftline",
    transactional_id: str | None = None,
    **overrides: Any,
) -> KafkaProducer:
    """A producer that waits for all in-sync replicas, with idempotence set explicitly.

    Idempotence makes the producer's own retries duplicate-free; ``transactional_id`` turns on
    transactions (exactly-once with ``send_offsets_to_transaction``).
    """
    endpoint = endpoint_of(kafka_at)
    config: dict[str, Any] = {
        **endpoint.config(),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 64 * 1024,
        "max_in_flight_requests_per_connection": 5,
        # A send is never given up while the broker is away (the client's default fails it after
        # 2 minutes, and the service would have to replay): flushes are bounded instead
        # (in bounded attempts), and a send blocks at most 10 s for metadata or buffer space.
        "delivery_timeout_ms": 7 * 24 * 3_600_000,
        "max_block_ms": 10_000,
    }
    if transactional_id is not None:
        config["transactional_id"] = transactional_id
    config.update(overrides)
    with kafka_errors("connecting a producer", endpoint):
        return KafkaProducer(**config)


class BoundedTransactions:
    """kafka-python's transaction calls wait without a timeout (``result.wait()``), so a broker
    outage in the middle of a commit hung the predictor for good and it ignored SIGTERM. These
    do the same steps with the waiting in bounded slices: a call returns False when the slice
    passed and can be called again to wait on, until it returns True."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer
        self._pending: Any = None

    def _wait(self, start: Callable[[], Any], timeout_s: float) -> bool:
        if self._pending is None:
            self._pending = start()
            self._producer._sender.wakeup()
        done = bool(self._pending.wait(timeout_ms=timeout_s * 1000))
        if done:
            self._pending = None
        return done

    def send_offsets(self, offsets: Any, group_id: str, timeout_s: float) -> bool:
        manager = self._producer._transaction_manager
        return self._wait(lambda: manager.send_offsets_to_transaction(offsets, group_id), timeout_s)

    def commit(self, timeout_s: float) -> bool:
        manager = self._producer._transaction_manager
        return self._wait(manager.begin_commit, timeout_s)

    def abort(self, timeout_s: float) -> bool:
        manager = self._producer._transaction_manager
        return self._wait(manager.begin_abort, timeout_s)

    def forget(self) -> None:
        """Stop waiting on the call in progress (the service is stopping)."""
        self._pending = None


def make_consumer(
    kafka_at: Kafka,
    *,
    group_id: str,
    topics: Iterable[str] = (),
    client_id: str = "driftline",
    auto_offset_reset: str = "earliest",
    isolation_level: str = "read_committed",
    max_poll_records: int = 500,
    **overrides: Any,
) -> KafkaConsumer:
    """A group consumer with manual commits: offsets move only when the service commits them.

    It reads committed records only (``read_committed``): what an exactly-once predictor (or any
    transactional producer) wrote in a transaction that aborted, or has not committed yet, never
    reaches a service; for records written without transactions it changes nothing.
    """
    endpoint = endpoint_of(kafka_at)
    config: dict[str, Any] = {
        **endpoint.config(),
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": auto_offset_reset,
        "isolation_level": isolation_level,
        "max_poll_records": max_poll_records,
        # A member that dies without leaving (SIGKILL, lost host) holds its partitions until its
        # session expires: 10 s instead of the client's 45 s lets the group take over quickly.
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 2_000,
        # Also the rebalance timeout: how long a join waits for a member slow to rejoin. The
        # client's 300 s let one slow member stall its whole group for minutes; services poll
        # every few milliseconds, so 30 s is ample.
        "max_poll_interval_ms": 30_000,
    }
    config.update(overrides)
    with kafka_errors(f"connecting consumer group {group_id}", endpoint):
        consumer = KafkaConsumer(**config)
        names = list(topics)
        if names:
            consumer.subscribe(names)
        return consumer


def _admin(
    kafka_at: Kafka, timeout_s: float, client_id: str = "driftline-admin"
) -> KafkaAdminClient:
    return KafkaAdminClient(
        **endpoint_of(kafka_at).config(),
        client_id=client_id,
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
    )


class DeadLetterWriter:
    """Writes messages a service could not process to the dead-letter topic.

    The dead letter keeps the original key and bytes, the reason, the service, and the source
    topic/partition/offset, so that it can be inspected and replayed; the partition moves on.
    """

    def __init__(self, producer: Any, topic: str, service: str) -> None:
        self._producer = producer
        self._topic = topic
        self._service = service

    @property
    def topic(self) -> str:
        return self._topic

    def write(self, record: _Consumed, error: str) -> Any:
        """Send ``record`` to the dead-letter topic with ``error``; returns what the producer's
        send returns (kafka-python's future, or None)."""
        letter = DeadLetter.of(
            ts=now_ms(),
            service=self._service,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error,
            original=record.value or b"",
        )
        log.warning(
            "dead letter %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            error,
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
        with kafka_errors(f"writing a dead letter to {self._topic}"):
            return self._producer.send(
                self._topic, key=_dead_letter_key(record.key), value=letter.encode()
            )


def _dead_letter_key(key: bytes | None) -> bytes | None:
    """The original key, or its first KiB: a key counts toward Kafka's record limit too."""
    return key if key is None or len(key) <= 1024 else key[:1024]


def decode_or_dead_letter(
    record: ConsumerRecord,
    message_type: type[M],
    dead_letters: DeadLetterWriter,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> M | None:
    """Decode ``record.value`` as ``message_type``; on failure dead-letter it and return None.

    An absent ``ts`` takes the Kafka record's timestamp.
    """
    try:
        value = record_value(record)
        return message_type.decode(value, max_bytes=max_bytes, default_ts=record.timestamp)
    except BadMessage as exc:
        dead_letters.write(record, str(exc))
        return None


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I") for n in range(64)]


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 of ``key`` (Java's ``Utils.murmur2``, as 32 unsigned bits).

    The same function as kafka-python's ``kafka.partitioner.default.murmur2``, written to cost a
    third of it (the monitor hashes every label): the words are unpacked at once.
    """
    length = len(key)
    h = (0x9747B28C ^ length) & _MASK
    count = length >> 2
    words = _WORDS[count].unpack_from(key) if count < 64 else struct.unpack_from(f"<{count}I", key)
    for word in words:
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        at = count << 2
        if tail == 3:
            h ^= key[at + 2] << 16
        if tail >= 2:
            h ^= key[at + 1] << 8
        h = ((h ^ key[at]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Java's and kafka-python's default partitioner give ``key`` (murmur2), which
    driftline's producers use. librdkafka's default (``consistent_random``, crc32) gives another
    for most keys: its clients need ``partitioner=murmur2_random``.

    >>> [key_partition(f"e{i}".encode(), 3) for i in range(6)]  # kafka-python agrees
    [0, 0, 0, 0, 1, 0]
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def key_partitions(keys: list[bytes], partitions: int) -> list[int]:
    """:func:`key_partition` of each of ``keys``, computed a column of bytes at a time with numpy
    over the keys of each length (the monitor checks a poll's labels at once: a Python murmur2 per
    label was 5% of its CPU).

    >>> keys = [f"e{i}".encode() for i in range(6)] + [b"", "é-ü".encode()]
    >>> key_partitions(keys, 3) == [key_partition(key, 3) for key in keys]
    True
    """
    out = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    m = np.uint32(_M)
    for length, indices in by_length.items():
        rows = np.frombuffer(b"".join(keys[i] for i in indices), dtype=np.uint8)
        rows = rows.reshape(len(indices), length)
        h = np.full(len(indices), (0x9747B28C ^ length) & _MASK, dtype=np.uint32)
        count = length >> 2
        if count:
            words = np.ascontiguousarray(rows[:, : count * 4]).view("<u4")
            for column in range(count):
                k = words[:, column] * m
                k ^= k >> np.uint32(24)
                h = (h * m) ^ (k * m)
        tail = length & 3
        at = count << 2
        if tail == 3:
            h ^= rows[:, at + 2].astype(np.uint32) << np.uint32(16)
        if tail >= 2:
            h ^= rows[:, at + 1].astype(np.uint32) << np.uint32(8)
        if tail:
            h = (h ^ rows[:, at].astype(np.uint32)) * m
        h ^= h >> np.uint32(13)
        h = h * m
        h ^= h >> np.uint32(15)
        found = ((h & np.uint32(0x7FFFFFFF)) % np.uint32(partitions)).tolist()
        for index, partition in zip(indices, found, strict=True):
            out[index] = partition
    return out


class _Consumed(Protocol):
    """What every consumed record has, from either client."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def record_value(record: _Consumed, expected: str = "a message") -> bytes:
    """A record's value; :class:`BadMessage` for a tombstone (no value) where ``expected`` was.

    >>> tombstone = ConsumerRecord("t", 0, -1, 7, 0, 0, b"k", None, [], None, 1, -1, -1)
    >>> record_value(tombstone)
    Traceback (most recent call last):
    ...
    shared.core.errors.BadMessage: $: empty record (a tombstone) where a message was expected
    """
    if record.value is None:
        raise BadMessage("$", f"empty record (a tombstone) where {expected} was expected")
    return bytes(record.value)


def unread(consumer: KafkaConsumer, tp: TopicPartition) -> int | None:
    """How many records of ``tp`` this consumer has not been handed yet, as of the partition's last
    known high watermark; None while either is unknown (no fetch answered yet), 0 for a partition
    not assigned here. No request goes out."""
    try:
        highwater = consumer.highwater(tp)
        position = None if highwater is None else consumer.position(tp, timeout_ms=0)
    except kafka.errors.IllegalStateError:  # revoked in the meantime
        return 0
    if highwater is None or position is None:
        return None
    return max(0, int(highwater) - int(position))


def restore_parked_records(consumer: KafkaConsumer) -> None:
    """Work around kafka-python 3.0.12 never reading a resumed partition again; call before each
    poll of a consumer that pauses partitions.

    Records it fetched for a partition that was paused before they were handed over are parked,
    to be put back in line once the partition is resumed; but only while the in-line slot is
    ``None``, and a drained slot keeps its (empty, falsy) records object, so parked records were
    almost never put back, and a partition with parked records is not fetched: the monitor stalled
    on such partitions. The client treats a drained slot and ``None`` alike everywhere else, so
    emptying the slot lets the next poll put parked records back. Does nothing on a client without
    such a slot.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    in_line = getattr(fetcher, "_next_partition_records", None)
    if in_line is not None and not in_line:
        fetcher._next_partition_records = None  # type: ignore[union-attr]


def read_to_end(
    kafka_at: Kafka,
    topic: str,
    timeout_s: float = 60.0,
    *,
    committed_only: bool = False,
    last: int | None = None,
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from its beginning up to its end as of now (no group); with
    ``committed_only``, up to its last stable offset, without aborted or open transactions; with
    ``last``, only the newest ``last`` records of each partition."""
    with kafka_errors(f"reading {topic}", kafka_at):
        consumer = plain_consumer(
            kafka_at, isolation_level="read_committed" if committed_only else "read_uncommitted"
        )
    try:
        with kafka_errors(f"reading {topic}", kafka_at):
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
            if not partitions:
                return []
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            if last is not None:
                starts = consumer.beginning_offsets(partitions)
                for tp in partitions:
                    consumer.seek(tp, max(starts[tp], ends[tp] - last))
            records: list[ConsumerRecord] = []
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise KafkaError(f"could not read {topic} to its end in {timeout_s:.0f} s")
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
            return records
    finally:
        consumer.close()


def plain_consumer(kafka_at: Kafka, **options: Any) -> KafkaConsumer:
    """A consumer in no group and without commits (for reading a topic, or its ends)."""
    return KafkaConsumer(**endpoint_of(kafka_at).config(), enable_auto_commit=False, **options)


def plain_admin(kafka_at: Kafka, timeout_s: float = 10.0) -> KafkaAdminClient:
    """An admin client of ``kafka_at`` (the caller closes it)."""
    return _admin(kafka_at, timeout_s)


class AssignmentWatchdog:
    """Re-joins the group when this member has held no partition for too long.

    kafka-python 3.0 sometimes completes a group join with an empty assignment (its metadata for
    the topics was not in yet, or a broker restarted) and then never re-joins by itself, so a
    service sits idle while its partitions go unread. When the assignment stays empty for
    ``after_s``, the watchdog unsubscribes and subscribes again, which forces a new join; it then
    waits twice as long before the next try (up to ``max_s``), so a member that is idle for a
    good reason (more members than partitions) causes a rebalance only rarely.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        resubscribe: Callable[[], None],
        *,
        after_s: float = 15.0,
        max_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._resubscribe = resubscribe
        self._wait = after_s
        self._max = max_s
        self._clock = clock
        self._empty_since: float | None = None
        self.rejoins = 0

    def check(self, assigned: bool) -> bool:
        """Call once per loop; return True when it forced a re-join."""
        now = self._clock()
        if assigned:
            self._empty_since = None
            return False
        if self._empty_since is None:
            self._empty_since = now
            return False
        if now - self._empty_since < self._wait:
            return False
        log.warning(
            "no partition assigned for %.0f s; re-joining the consumer group",
            now - self._empty_since,
        )
        with kafka_errors("re-joining the consumer group"):
            self._consumer.unsubscribe()
            self._resubscribe()
        self.rejoins += 1
        self._empty_since = now
        self._wait = min(self._wait * 2, self._max)
        return True
