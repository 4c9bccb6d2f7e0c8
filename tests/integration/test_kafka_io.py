"""Kafka I/O on the real broker: group round trip, resume after restart, dead letters, topics."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer

from shared.core.errors import KafkaError
from shared.core.messages import DeadLetter, FeatureEvent
from shared.core.topics import Topics
from shared.io.kafka import (
    AssignmentWatchdog,
    DeadLetterWriter,
    decode_or_dead_letter,
    make_consumer,
    make_producer,
)
from shared.io.transport.admin import ensure_topics
from tests.conftest import Servers

pytestmark = pytest.mark.integration

POLL_TIMEOUT_S = 30.0


@pytest.fixture
def topics(servers: Servers, unique: str) -> Topics:
    """driftline's topics under a prefix of this test's own."""
    names = Topics(f"t{unique}.")
    ensure_topics(servers.bootstrap, names.specs(partitions=3))
    return names


@pytest.fixture
def producer(servers: Servers) -> Iterator[KafkaProducer]:
    made = make_producer(servers.bootstrap, client_id="test")
    yield made
    made.close()


def _consume(consumer: KafkaConsumer, count: int, timeout_s: float = POLL_TIMEOUT_S) -> list:
    """Poll until ``count`` records arrived; fail with how many did when time runs out.

    Like the services, it re-joins when kafka-python leaves the member with no partition.
    """
    records: list = []
    deadline = time.monotonic() + timeout_s
    subscribed = sorted(consumer.subscription() or [])
    watchdog = AssignmentWatchdog(consumer, lambda: consumer.subscribe(subscribed), after_s=5.0)
    while len(records) < count:
        if subscribed:
            watchdog.check(bool(consumer.assignment()))
        assert time.monotonic() < deadline, (
            f"got {len(records)} of {count} records in {timeout_s} s"
        )
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def _events(start: int, stop: int) -> list[FeatureEvent]:
    return [
        FeatureEvent(event_id=f"e{i}", ts=1_700_000_000_000 + i, features={"x": float(i)})
        for i in range(start, stop)
    ]


def _send(producer: KafkaProducer, topic: str, events: list[FeatureEvent]) -> None:
    for event in events:
        producer.send(topic, key=event.event_id.encode(), value=event.encode())
    producer.flush()


def test_producer_is_idempotent_and_waits_for_all_replicas(producer: KafkaProducer) -> None:
    assert producer.config["acks"] == -1  # kafka-python stores "all" as -1
    assert producer.config["enable_idempotence"] is True


def test_round_trip_through_a_consumer_group_with_manual_commit(
    servers: Servers, topics: Topics, producer: KafkaProducer, unique: str
) -> None:
    sent = _events(0, 60)
    _send(producer, topics.features, sent)
    consumer = make_consumer(servers.bootstrap, group_id=f"g{unique}", topics=[topics.features])
    try:
        assert consumer.config["enable_auto_commit"] is False
        records = _consume(consumer, len(sent))
        consumer.commit()
        received = [FeatureEvent.decode(record.value) for record in records]
        assert sorted(received, key=lambda e: e.ts or 0) == sent
        assert {record.partition for record in records} == {0, 1, 2}  # keyed across partitions
        # Every partition's committed offset is its end: nothing is left to read.
        ends = consumer.end_offsets(list(consumer.assignment()))
        assert {tp: consumer.committed(tp) for tp in ends} == ends
    finally:
        consumer.close()


def test_restarted_consumer_resumes_from_its_committed_offset(
    servers: Servers, topics: Topics, producer: KafkaProducer, unique: str
) -> None:
    group = f"g{unique}"
    _send(producer, topics.labels, _events(0, 30))
    first = make_consumer(servers.bootstrap, group_id=group, topics=[topics.labels])
    try:
        seen_first = {FeatureEvent.decode(r.value).event_id for r in _consume(first, 30)}
        first.commit()
    finally:
        first.close()
    # Records after the commit, plus records the first consumer read but never committed would
    # reappear; here everything read was committed, so the second reader sees only the new ones.
    _send(producer, topics.labels, _events(30, 50))
    second = make_consumer(servers.bootstrap, group_id=group, topics=[topics.labels])
    try:
        records = _consume(second, 20)
        assert second.poll(timeout_ms=2000) == {}  # and nothing more
        seen_second = {FeatureEvent.decode(r.value).event_id for r in records}
    finally:
        second.close()
    assert seen_first == {f"e{i}" for i in range(30)}
    assert seen_second == {f"e{i}" for i in range(30, 50)}


def test_uncommitted_records_are_read_again_after_a_restart(
    servers: Servers, topics: Topics, producer: KafkaProducer, unique: str
) -> None:
    group = f"g{unique}"
    _send(producer, topics.predictions, _events(0, 10))
    first = make_consumer(servers.bootstrap, group_id=group, topics=[topics.predictions])
    try:
        _consume(first, 10)  # read, never committed: at-least-once means they come back
    finally:
        first.close(autocommit=False)
    second = make_consumer(servers.bootstrap, group_id=group, topics=[topics.predictions])
    try:
        again = {FeatureEvent.decode(r.value).event_id for r in _consume(second, 10)}
    finally:
        second.close()
    assert again == {f"e{i}" for i in range(10)}


def test_bad_record_goes_to_the_dead_letter_topic_with_its_origin(
    servers: Servers, topics: Topics, producer: KafkaProducer, unique: str
) -> None:
    bad = b'{"event_id": "e-bad", "features": ["x", "high"]}'
    good = FeatureEvent(event_id="e-good", ts=5, features={"x": 1.0})
    producer.send(topics.features, key=b"e-bad", value=bad, partition=1)
    producer.send(topics.features, key=b"e-good", value=good.encode(), partition=1)
    producer.flush()

    consumer = make_consumer(servers.bootstrap, group_id=f"g{unique}", topics=[topics.features])
    dead_letters = DeadLetterWriter(producer, topics.dlq, service="test")
    try:
        records = _consume(consumer, 2)
        decoded = [decode_or_dead_letter(r, FeatureEvent, dead_letters) for r in records]
        producer.flush()
        consumer.commit()
    finally:
        consumer.close()
    assert decoded == [None, good]  # the bad one is set aside, the partition moves on

    reader = make_consumer(servers.bootstrap, group_id=f"dlq{unique}", topics=[topics.dlq])
    try:
        (record,) = _consume(reader, 1)
        assert reader.poll(timeout_ms=1000) == {}
    finally:
        reader.close()
    letter = DeadLetter.decode(record.value)
    assert record.key == b"e-bad"
    assert (letter.source_topic, letter.partition, letter.offset) == (
        topics.features,
        1,
        records[0].offset,
    )
    assert letter.error == "features: expected object, got array"
    assert letter.service == "test"
    assert letter.original == bad
    assert base64.b64decode(letter.payload) == bad


def test_oversized_and_empty_records_are_dead_lettered(
    servers: Servers, topics: Topics, producer: KafkaProducer, unique: str
) -> None:
    producer.send(topics.labels, key=b"big", value=b"{" + b" " * 5000 + b"}", partition=0)
    producer.send(topics.labels, key=b"tomb", value=None, partition=0)
    producer.flush()
    consumer = make_consumer(servers.bootstrap, group_id=f"g{unique}", topics=[topics.labels])
    dead_letters = DeadLetterWriter(producer, topics.dlq, service="test")
    try:
        records = _consume(consumer, 2)
        results = [
            decode_or_dead_letter(r, FeatureEvent, dead_letters, max_bytes=1000) for r in records
        ]
        producer.flush()
    finally:
        consumer.close()
    assert results == [None, None]
    reader = make_consumer(servers.bootstrap, group_id=f"dlq{unique}", topics=[topics.dlq])
    try:
        letters = {r.key: DeadLetter.decode(r.value) for r in _consume(reader, 2)}
    finally:
        reader.close()
    assert letters[b"big"].error == "$: payload is 5002 bytes, over the 1000 byte limit"
    assert letters[b"tomb"].error.startswith("$: empty record")


def test_unreachable_broker_is_a_translated_retriable_error() -> None:
    with pytest.raises(KafkaError) as caught:
        make_producer("127.0.0.1:1", bootstrap_timeout_ms=1500)
    assert caught.value.retriable is True
    assert "no Kafka broker answered at 127.0.0.1:1" in str(caught.value)
    assert "driftline infra up" in str(caught.value)
