"""The Kafka boundary's contract, the same tests against both clients on the real broker: round
trip with murmur2 partitioning, a group resuming from its commit, rebalance callbacks,
pause/resume, transactions seen through ``read_committed``, topic administration, and failures
surfaced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from shared.core.errors import ConfigError, KafkaError
from shared.core.topics import Topics, TopicSpec
from shared.io.kafka import key_partition
from shared.io.transport import TP, ClientName, Consumer, Producer, open_consumer, open_producer
from shared.io.transport.admin import (
    cluster_id,
    delete_topics,
    ensure_topics,
    open_admin,
    require_topics,
)
from tests.conftest import Servers

pytestmark = pytest.mark.integration

CLIENTS: list[ClientName] = ["confluent", "kafka-python"]
TIMEOUT_S = 30.0


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> ClientName:
    name: ClientName = request.param
    return name


@pytest.fixture
def topic(servers: Servers, unique: str) -> str:
    name = f"contract{unique}"
    ensure_topics(servers.bootstrap, [TopicSpec(name, 3)])
    return name


@pytest.fixture
def closing() -> Iterator[Callable[[Consumer | Producer], None]]:
    opened: list[Consumer | Producer] = []
    yield opened.append
    for each in opened:
        each.close()


def _consume(consumer: Consumer, count: int) -> list:
    found: list = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(found) < count:
        assert time.monotonic() < deadline, f"got {len(found)} of {count} records"
        found += consumer.poll(0.5)
    return found


def _produce(producer: Producer, topic: str, keys: list[str]) -> None:
    for key in keys:
        producer.send(topic, f"v-{key}".encode(), key=key.encode())
    flushed = producer.flush(TIMEOUT_S)
    assert flushed.ok, flushed


def test_round_trip_lands_each_key_where_java_and_kafka_python_put_it(
    servers: Servers, topic: str, unique: str, client: ClientName, closing: Callable
) -> None:
    producer = open_producer(client, servers.bootstrap)
    consumer = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    closing(producer), closing(consumer)
    keys = [f"event-{i}" for i in range(60)]
    _produce(producer, topic, keys)
    consumer.subscribe([topic])
    records = _consume(consumer, 60)
    assert sorted(r.key.decode() for r in records) == sorted(keys)
    assert all(r.value == b"v-" + r.key for r in records)
    assert all(r.partition == key_partition(r.key, 3) for r in records)  # murmur2, as Java
    assert all(r.timestamp > 1_600_000_000_000 for r in records)
    headers = [("ce_id", b"a1/firing"), ("content-type", b"application/json")]
    producer.send(topic, b"then", key=b"event-0", timestamp_ms=1_700_000_000_123, headers=headers)
    assert producer.flush(TIMEOUT_S).ok
    [then] = _consume(consumer, 1)
    assert (then.value, then.timestamp) == (b"then", 1_700_000_000_123)
    assert then.headers == tuple(headers)


def test_a_group_resumes_from_its_commit_and_nothing_is_auto_committed(
    servers: Servers, topic: str, unique: str, client: ClientName, closing: Callable
) -> None:
    producer = open_producer(client, servers.bootstrap)
    closing(producer)
    _produce(producer, topic, [f"a{i}" for i in range(30)])
    first = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    first.subscribe([topic])
    records = _consume(first, 30)
    by_partition: dict[TP, int] = {}
    for r in records[:10]:
        tp = TP(r.topic, r.partition)
        by_partition[tp] = max(by_partition.get(tp, 0), r.offset + 1)
    first.commit(by_partition)
    assert all(first.committed(tp) == o for tp, o in by_partition.items())
    first.close()
    first.close()  # safe twice
    second = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    closing(second)
    second.subscribe([topic])
    again = _consume(second, 30 - 10)
    resumed = {(r.partition, r.offset) for r in again}
    assert not resumed & {(r.partition, r.offset) for r in records[:10]}
    assert len(resumed) == 20


def test_rebalance_callbacks_pause_resume_seek_and_positions(
    servers: Servers, topic: str, unique: str, client: ClientName, closing: Callable
) -> None:
    producer = open_producer(client, servers.bootstrap)
    consumer = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    closing(producer), closing(consumer)
    _produce(producer, topic, [f"k{i}" for i in range(90)])
    assigned: list[TP] = []
    consumer.subscribe([topic], on_assign=assigned.extend)
    records = _consume(consumer, 90)
    assert sorted(assigned) == [TP(topic, p) for p in range(3)]
    assert consumer.assignment() == set(assigned)
    ends = consumer.end_offsets(assigned)
    assert sum(ends.values()) == 90
    assert all(consumer.position(tp) == ends[tp] for tp in assigned)
    paused = TP(topic, 0)
    consumer.pause([paused])
    before = ends[paused]
    _produce(producer, topic, [f"more{i}" for i in range(30)])
    quiet = [r for _ in range(6) for r in consumer.poll(0.5)]
    assert all(r.partition != 0 for r in quiet)
    consumer.resume([paused])
    consumer.seek(paused, 0)
    replay = []
    deadline = time.monotonic() + TIMEOUT_S
    while sum(1 for r in replay if r.partition == 0) < before:
        assert time.monotonic() < deadline
        replay += consumer.poll(0.5)
    assert min(r.offset for r in replay if r.partition == 0) == 0
    assert len(records) == 90


def test_an_aborted_transaction_is_never_read_and_a_committed_one_moves_the_group(
    servers: Servers, topic: str, unique: str, client: ClientName, closing: Callable
) -> None:
    source = f"{topic}src"
    ensure_topics(servers.bootstrap, [TopicSpec(source, 3)])
    feeder = open_producer(client, servers.bootstrap)
    closing(feeder)
    _produce(feeder, source, [f"s{i}" for i in range(10)])
    consumer = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    closing(consumer)
    consumer.subscribe([source])
    inputs = _consume(consumer, 10)
    offsets = {TP(r.topic, r.partition): r.offset + 1 for r in inputs}
    producer = open_producer(client, servers.bootstrap, transactional_id=f"tx{unique}")
    closing(producer)
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    producer.send(topic, b"aborted", key=b"a")
    assert producer.flush(TIMEOUT_S).ok  # on the broker, so that only the abort hides it
    producer.abort_transaction(TIMEOUT_S)
    producer.begin_transaction()
    producer.send(topic, b"committed", key=b"c")
    producer.send_offsets_to_transaction(offsets, consumer, TIMEOUT_S)
    producer.commit_transaction(TIMEOUT_S)
    reader = open_consumer(client, servers.bootstrap, group_id=f"r{unique}")
    closing(reader)
    reader.subscribe([topic])
    [seen] = _consume(reader, 1)
    assert seen.value == b"committed"
    assert [r.value for _ in range(4) for r in reader.poll(0.5)] == []  # the aborted one, never
    assert all(consumer.committed(tp) == o for tp, o in offsets.items())


def test_a_record_too_large_is_refused_with_a_driftline_error(
    servers: Servers, topic: str, client: ClientName, closing: Callable
) -> None:
    producer = open_producer(client, servers.bootstrap)
    closing(producer)
    with pytest.raises(KafkaError) as refused:
        producer.send(topic, b"x" * 3_000_000, key=b"big")
    assert not refused.value.retriable and topic in str(refused.value)
    producer.send(topic, b"fine", key=b"ok")  # the producer goes on
    assert producer.flush(TIMEOUT_S).ok


def test_seek_and_pause_inside_on_assign_unread_and_assign(
    servers: Servers, topic: str, unique: str, client: ClientName, closing: Callable
) -> None:
    """What the monitor and the trainer lean on: a seek and a pause asked for inside
    ``on_assign`` take effect as the partitions are assigned (librdkafka can do neither on a
    partition not assigned yet); unread() counts what is left; assign() reads chosen partitions
    from chosen offsets; the partitions and both ends of each are known."""
    producer = open_producer(client, servers.bootstrap)
    closing(producer)
    keys = [f"event-{i}" for i in range(90)]
    _produce(producer, topic, keys)
    assert producer.partitions_for(topic) == {0, 1, 2}
    per_partition = {p: sum(key_partition(k.encode(), 3) == p for k in keys) for p in range(3)}

    consumer = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    closing(consumer)
    assert consumer.partitions_for(topic) == {0, 1, 2}

    def on_assign(partitions: list[TP]) -> None:
        for tp in partitions:
            consumer.seek(tp, per_partition[tp.partition] - 2)  # the last two of each
        consumer.pause([TP(topic, 2)])

    consumer.subscribe([topic], on_assign=on_assign)
    records = _consume(consumer, 4)
    time.sleep(1.0)
    records += consumer.poll(0.5)
    # (a set: a second assignment, should the group rebalance, seeks and reads them again)
    assert sorted({(r.partition, r.offset) for r in records}) == [
        (p, per_partition[p] - n) for p in (0, 1) for n in (2, 1)
    ]
    assert consumer.unread(TP(topic, 0)) == 0
    assert consumer.unread(TP(topic, 2)) in (None, 2)  # paused: never fetched, or two left
    consumer.resume([TP(topic, 2)])
    assert sorted({(r.partition, r.offset) for r in _consume(consumer, 2)}) == [
        (2, per_partition[2] - 2),
        (2, per_partition[2] - 1),
    ]
    assert consumer.unread(TP("no-such-topic", 0)) == 0

    # A member that takes over partitions with nothing left to read knows it has nothing unread
    # (librdkafka knows no position until a record is handed over: the monitor's reorder held its
    # last events for good after an outage's rebalance).
    consumer.commit({TP(topic, p): n for p, n in per_partition.items()})
    consumer.close()
    again = open_consumer(client, servers.bootstrap, group_id=f"g{unique}")
    closing(again)

    def to_the_end(partitions: list[TP]) -> None:  # as the monitor does from its checkpoint
        for tp in partitions:
            if tp.partition != 2:  # 2 starts from the group's commit
                again.seek(tp, per_partition[tp.partition])

    again.subscribe([topic], on_assign=to_the_end)
    deadline = time.monotonic() + TIMEOUT_S
    while any(again.unread(TP(topic, p)) != 0 for p in range(3)):
        assert time.monotonic() < deadline, [again.unread(TP(topic, p)) for p in range(3)]
        assert again.poll(0.5) == []

    reader = open_consumer(client, servers.bootstrap, group_id=f"r{unique}")
    closing(reader)
    partitions = [TP(topic, p) for p in range(3)]
    assert reader.beginning_offsets(partitions) == dict.fromkeys(partitions, 0)
    assert reader.end_offsets(partitions) == {TP(topic, p): n for p, n in per_partition.items()}
    reader.assign({TP(topic, 1): per_partition[1] - 3})
    got = _consume(reader, 3)
    assert [(r.partition, r.offset) for r in got] == [
        (1, per_partition[1] - 3 + n) for n in range(3)
    ]


# ---- topic administration ------------------------------------------------------------------


def test_ensure_topics_creates_once_and_counts_partitions(
    servers: Servers, unique: str, client: ClientName
) -> None:
    names = Topics(f"t{unique}.")
    first = ensure_topics(servers.bootstrap, names.specs(partitions=4), client=client)
    second = ensure_topics(servers.bootstrap, names.specs(partitions=4), client=client)
    assert sorted(first) == sorted(spec.name for spec in names.specs(4))
    assert second == []
    admin = open_admin(servers.bootstrap, client=client)
    try:
        assert admin.partition_counts([names.features, names.labels]) == {
            names.features: 4,
            names.labels: 4,
        }
        assert admin.partition_counts([f"t{unique}.none"]) == {}
    finally:
        admin.close()
    require_topics(servers.bootstrap, [names.features], client=client)
    with pytest.raises(ConfigError, match=f"no topic t{unique}.none; create"):
        require_topics(servers.bootstrap, [names.features, f"t{unique}.none"], client=client)


def test_co_partitioned_topics_that_disagree_are_refused(
    servers: Servers, unique: str, client: ClientName
) -> None:
    names = Topics(f"t{unique}.")
    ensure_topics(servers.bootstrap, [TopicSpec(names.features, 2)], client=client)
    with pytest.raises(ConfigError, match="same number of partitions"):
        ensure_topics(servers.bootstrap, names.specs(partitions=3), client=client)


def test_delete_topics_deletes_the_prefix_and_nothing_else(
    servers: Servers, unique: str, client: ClientName
) -> None:
    ours, theirs = Topics(f"t{unique}.a."), Topics(f"t{unique}.b.")
    specs = [*ours.specs(partitions=1), *theirs.specs(partitions=1)]
    ensure_topics(servers.bootstrap, specs, client=client)
    deleted = delete_topics(servers.bootstrap, ours.prefix, client=client)
    assert deleted == sorted(spec.name for spec in ours.specs(1))
    admin = open_admin(servers.bootstrap, client=client)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while any(name in admin.topics() for name in deleted):
            assert time.monotonic() < deadline, "deleted topics still listed"
            time.sleep(0.2)
        left = admin.topics()
        admin.delete(deleted)  # gone already: no error
    finally:
        admin.close()
    assert {spec.name for spec in theirs.specs(1)} <= left
    with pytest.raises(ValueError, match="every topic"):
        delete_topics(servers.bootstrap, "", client=client)


def test_the_cluster_id_is_the_same_through_both_clients(servers: Servers) -> None:
    found = {client: cluster_id(servers.bootstrap, client=client) for client in CLIENTS}
    assert len(set(found.values())) == 1 and all(found.values()), found


def test_an_admin_without_a_broker_is_a_retriable_error_with_the_fix(client: ClientName) -> None:
    started = time.monotonic()
    with pytest.raises(KafkaError) as caught:
        cluster_id("127.0.0.1:1", timeout_s=1.5, client=client)
    assert caught.value.retriable is True
    assert "no Kafka broker answered at 127.0.0.1:1" in str(caught.value)
    assert "driftline infra up" in str(caught.value)
    assert time.monotonic() - started < 10  # bounded by the timeout, not librdkafka's minute
