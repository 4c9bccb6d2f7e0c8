"""The boundary on kafka-python: pure Python, for environments without librdkafka wheels.

It is built on the clients of :mod:`shared.io.kafka` (the same settings the services have always
had). kafka-python's transaction calls wait without a timeout, so they go through
:class:`~shared.io.kafka.BoundedTransactions`; one that does not finish in time is a retriable
:class:`~shared.core.errors.KafkaError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kafka.errors
from kafka import KafkaAdminClient, TopicPartition
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from shared.core.errors import KafkaError
from shared.io.kafka import (
    AssignmentWatchdog,
    BoundedTransactions,
    ConsumerRebalanceListener,
    KafkaEndpoint,
    kafka_errors,
    make_consumer,
    make_producer,
    restore_parked_records,
    unread,
)
from shared.io.transport.base import TP, Assignor, Consumer, Flushed, Partitions, Record

_ASSIGNORS = {"range": RangePartitionAssignor, "cooperative-sticky": CooperativeStickyAssignor}


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assign: Partitions | None, on_revoke: Partitions | None) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self._on_assign is not None:
            self._on_assign([TP(p.topic, p.partition) for p in assigned])

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self._on_revoke is not None:
            self._on_revoke([TP(p.topic, p.partition) for p in revoked])


class KafkaPythonConsumer:
    """:class:`~shared.io.transport.base.Consumer` on kafka-python.

    kafka-python 3.0 sometimes finishes a group join with no partition and never joins again by
    itself; :class:`~shared.io.kafka.AssignmentWatchdog` re-joins from :meth:`poll` when the
    assignment has stayed empty for too long.
    """

    def __init__(
        self,
        endpoint: KafkaEndpoint,
        *,
        group_id: str,
        client_id: str = "driftline",
        assignor: Assignor = "range",
        auto_offset_reset: str = "earliest",
        fetch_wait_ms: int = 500,
        partition_fetch_bytes: int | None = None,
    ) -> None:
        self.group_id = group_id
        fetch: dict[str, Any] = {}
        if partition_fetch_bytes is not None:
            fetch["max_partition_fetch_bytes"] = partition_fetch_bytes
        self._consumer = make_consumer(
            endpoint,
            group_id=group_id,
            client_id=client_id,
            auto_offset_reset=auto_offset_reset,
            partition_assignment_strategy=(_ASSIGNORS[assignor],),
            fetch_max_wait_ms=fetch_wait_ms,
            **fetch,
        )
        self._closed = False
        self._subscribed: tuple[list[str], _Listener] | None = None
        self._watchdog = AssignmentWatchdog(self._consumer, self._resubscribe)

    def _resubscribe(self) -> None:
        if self._subscribed is not None:
            topics, listener = self._subscribed
            self._consumer.subscribe(topics, listener=listener)

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: Partitions | None = None,
        on_revoke: Partitions | None = None,
    ) -> None:
        self._subscribed = (list(topics), _Listener(on_assign, on_revoke))
        with kafka_errors(f"subscribing to {', '.join(topics)}"):
            self._resubscribe()

    def assign(self, offsets: Mapping[TP, int]) -> None:
        self._subscribed = None
        with kafka_errors("assigning partitions"):
            self._consumer.assign([TopicPartition(*tp) for tp in offsets])
            for tp, offset in offsets.items():
                self._consumer.seek(TopicPartition(*tp), offset)

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        if self._subscribed is not None:
            self._watchdog.check(bool(self._consumer.assignment()))
        restore_parked_records(self._consumer)  # of partitions resumed since the last poll
        with kafka_errors("polling"):
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [
            Record(
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value,
                r.timestamp,
                tuple((k, v or b"") for k, v in (r.headers or ())),
            )
            for records in batches.values()
            for r in records
        ]

    def assignment(self) -> set[TP]:
        return {TP(p.topic, p.partition) for p in self._consumer.assignment()}

    def pause(self, partitions: Iterable[TP]) -> None:
        self._consumer.pause(*[TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: Iterable[TP]) -> None:
        self._consumer.resume(*[TopicPartition(t, p) for t, p in partitions])

    def seek(self, tp: TP, offset: int) -> None:
        self._consumer.seek(TopicPartition(*tp), offset)

    def position(self, tp: TP) -> int:
        with kafka_errors(f"reading the position of {tp.topic}[{tp.partition}]"):
            return int(self._consumer.position(TopicPartition(*tp)))

    def beginning_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        wanted = [TopicPartition(*tp) for tp in partitions]
        with kafka_errors("reading the start of partitions"):
            found = self._consumer.beginning_offsets(wanted)
        return {TP(p.topic, p.partition): int(o) for p, o in found.items()}

    def end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        wanted = [TopicPartition(*tp) for tp in partitions]
        with kafka_errors("reading the end of partitions"):
            found = self._consumer.end_offsets(wanted)
        return {TP(p.topic, p.partition): int(o) for p, o in found.items()}

    def committed(self, tp: TP) -> int | None:
        with kafka_errors(f"reading the commit of {tp.topic}[{tp.partition}]"):
            found = self._consumer.committed(TopicPartition(*tp))
        return None if found is None else int(found)

    def unread(self, tp: TP) -> int | None:
        return unread(self._consumer, TopicPartition(*tp))

    def partitions_for(self, topic: str) -> set[int]:
        with kafka_errors(f"reading the metadata of {topic}"):
            return set(self._consumer.partitions_for_topic(topic) or ())

    def commit(self, offsets: Mapping[TP, int]) -> None:
        if not offsets:
            return
        with kafka_errors("committing offsets"):
            self._consumer.commit(
                {TopicPartition(*tp): OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing: the group times the member out
            self._consumer.close(autocommit=False, timeout_ms=5_000)


class KafkaPythonProducer:
    """:class:`~shared.io.transport.base.Producer` on kafka-python."""

    def __init__(
        self,
        endpoint: KafkaEndpoint,
        *,
        client_id: str = "driftline",
        transactional_id: str | None = None,
        linger_ms: int = 5,
        batch_bytes: int = 64 * 1024,
    ) -> None:
        self._producer = make_producer(
            endpoint,
            client_id=client_id,
            transactional_id=transactional_id,
            linger_ms=linger_ms,
            batch_size=batch_bytes,
        )
        self._transactions = BoundedTransactions(self._producer)
        self._futures: list[tuple[str, Any]] = []
        self._closed = False

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        with kafka_errors(f"producing to {topic}"):
            future = self._producer.send(
                topic,
                value=value,
                key=key,
                partition=partition,
                timestamp_ms=timestamp_ms,
                headers=list(headers) if headers else None,
            )
        self._futures.append((topic, future))

    def flush(self, timeout_s: float) -> Flushed:
        with contextlib.suppress(KafkaTimeoutError):  # what is left is counted as pending
            self._producer.flush(timeout=timeout_s)
        waiting = [(t, f) for t, f in self._futures if not f.is_done]
        failed = [(t, str(f.exception)) for t, f in self._futures if f.is_done and f.failed()]
        self._futures = waiting
        return Flushed(len(waiting), failed)

    def partitions_for(self, topic: str) -> set[int]:
        with kafka_errors(f"reading the metadata of {topic}"):
            return set(self._producer.partitions_for(topic) or ())

    def _bounded(self, action: str, step: Any, timeout_s: float) -> None:
        try:
            with kafka_errors(action):
                done = step(timeout_s)
        except KafkaError:
            self._transactions.forget()  # the step failed: the next one starts afresh
            raise
        if not done:
            raise KafkaError(f"{action}: no answer in {timeout_s:g} s", retriable=True)

    def init_transactions(self, timeout_s: float) -> None:
        with kafka_errors("initialising transactions"):
            self._producer.init_transactions()

    def begin_transaction(self) -> None:
        with kafka_errors("beginning a transaction"):
            self._producer.begin_transaction()

    def send_offsets_to_transaction(
        self, offsets: Mapping[TP, int], consumer: Consumer, timeout_s: float
    ) -> None:
        if not isinstance(consumer, KafkaPythonConsumer):
            raise TypeError("a kafka-python transaction needs a kafka-python consumer")
        committed = {TopicPartition(*tp): OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
        group = consumer.group_id
        self._bounded(
            "adding offsets to the transaction",
            lambda t: self._transactions.send_offsets(committed, group, t),
            timeout_s,
        )

    def commit_transaction(self, timeout_s: float) -> None:
        self._bounded("committing the transaction", self._transactions.commit, timeout_s)

    def abort_transaction(self, timeout_s: float) -> None:
        self._bounded("aborting the transaction", self._transactions.abort, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing: what was not flushed was never committed
            self._producer.close(timeout=timeout_s)


class KafkaPythonAdmin:
    """:class:`~shared.io.transport.base.Admin` on kafka-python's ``KafkaAdminClient``."""

    def __init__(self, endpoint: KafkaEndpoint, *, client_id: str, timeout_s: float) -> None:
        self._endpoint = endpoint
        self._timeout_ms = int(timeout_s * 1000)
        with kafka_errors("connecting to Kafka", endpoint):
            self._admin = KafkaAdminClient(
                **endpoint.config(),
                client_id=client_id,
                request_timeout_ms=self._timeout_ms,
                bootstrap_timeout_ms=self._timeout_ms,
            )

    def topics(self) -> set[str]:
        with kafka_errors("listing topics", self._endpoint):
            return set(self._admin.list_topics())

    def create(self, partitions: Mapping[str, int]) -> None:
        if not partitions:
            return
        with (
            kafka_errors("creating topics", self._endpoint),
            contextlib.suppress(kafka.errors.TopicAlreadyExistsError),
        ):
            self._admin.create_topics(
                {
                    name: {"num_partitions": count, "replication_factor": -1}
                    for name, count in partitions.items()
                },
                timeout_ms=self._timeout_ms,
                wait_for_metadata=True,
            )

    def partition_counts(self, names: Sequence[str]) -> dict[str, int]:
        with kafka_errors("describing topics", self._endpoint):
            described = self._admin.describe_topics(list(names))
        return {
            item["name"]: len(item["partitions"])
            for item in described
            if item.get("error_code", 0) == 0 and item["partitions"]
        }

    def delete(self, names: Sequence[str]) -> None:
        if not names:
            return
        with (
            kafka_errors("deleting topics", self._endpoint),
            contextlib.suppress(kafka.errors.UnknownTopicOrPartitionError),
        ):
            self._admin.delete_topics(list(names), timeout_ms=self._timeout_ms)

    def cluster_id(self) -> str:
        with kafka_errors("asking Kafka for metadata", self._endpoint):
            return str(self._admin.describe_cluster()["cluster_id"])

    def upsert_scram_user(self, user: str, password: str, mechanism: str) -> str | None:
        from kafka.admin import UserScramCredentialUpsertion  # noqa: PLC0415

        with kafka_errors(f"creating the SCRAM user {user}", self._endpoint):
            errors = self._admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(user, mechanism, password)]
            )
        failed = [str(error) for error in (errors or {}).values() if error]
        return "; ".join(failed) or None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._admin.close()
