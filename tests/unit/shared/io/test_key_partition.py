"""driftline's murmur2 is Kafka's: the monitor decides with it whether a label is misrouted."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from shared.io.kafka import key_partition, key_partitions, murmur2


def test_murmur2_agrees_with_kafka_python_on_random_keys_of_every_length() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        key = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))
        assert murmur2(key) & 0x7FFFFFFF == kafka_python_murmur2(key) & 0x7FFFFFFF, key


def test_java_reference_values() -> None:
    # Kafka's own UtilsTest.testMurmur2 pairs (Java ints, so compared as 32-bit patterns).
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for key, java in cases.items():
        assert murmur2(key) == java & 0xFFFFFFFF, key


def test_partitions_spread_over_all() -> None:
    found = {key_partition(f"event-{i}".encode(), 6) for i in range(600)}
    assert found == set(range(6))


def test_a_batch_of_keys_hashes_as_each_key_does() -> None:
    rng = random.Random(11)
    keys = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 70))) for _ in range(3_000)]
    keys += [f"e{i:08d}".encode() for i in range(500)] + [b"", "é-ü-日本".encode()]
    for partitions in (1, 3, 7, 64):
        assert key_partitions(keys, partitions) == [key_partition(k, partitions) for k in keys]
