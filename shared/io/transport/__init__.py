"""One Kafka boundary, two clients: confluent-kafka (librdkafka) and kafka-python.

:func:`open_consumer` and :func:`open_producer` make a client of the chosen implementation behind
the :class:`~shared.io.transport.base.Consumer` and :class:`~shared.io.transport.base.Producer`
protocols, with driftline's delivery guarantees in both (:mod:`shared.io.transport.base`);
:mod:`shared.io.transport.admin` administers topics through either.
The same contract tests run against both (``tests/integration/test_transport_contract.py``).
"""

from __future__ import annotations

from typing import get_args

from shared.core.errors import ConfigError
from shared.io.kafka import Kafka, endpoint_of
from shared.io.transport.base import (
    TP,
    Assignor,
    ClientName,
    Consumer,
    Flushed,
    Producer,
    Record,
    first_offsets,
    next_offsets,
)

__all__ = [
    "TP",
    "Assignor",
    "ClientName",
    "Consumer",
    "Flushed",
    "Producer",
    "Record",
    "client_name",
    "first_offsets",
    "next_offsets",
    "open_consumer",
    "open_producer",
]


def client_name(name: str) -> ClientName:
    """``name`` as a client this boundary has; :class:`ConfigError` naming the choices.

    >>> client_name("confluent")
    'confluent'
    """
    for known in get_args(ClientName):
        if name == known:
            return known  # type: ignore[no-any-return]
    raise ConfigError(
        f"unknown Kafka client {name!r}; DRIFTLINE_KAFKA_CLIENT is one of "
        f"{', '.join(get_args(ClientName))}"
    )


def open_consumer(
    client: ClientName,
    kafka_at: Kafka,
    *,
    group_id: str,
    client_id: str = "driftline",
    assignor: Assignor = "range",
    auto_offset_reset: str = "earliest",
    fetch_wait_ms: int = 500,
    partition_fetch_bytes: int | None = None,
) -> Consumer:
    """A group consumer with manual commits, ``read_committed``, on ``client``; a fetch waits
    at most ``fetch_wait_ms`` on the broker for records to arrive, and brings at most
    ``partition_fetch_bytes`` of a partition (the client's default: 1 MiB)."""
    endpoint = endpoint_of(kafka_at)
    if client == "confluent":
        from shared.io.transport.confluent import ConfluentConsumer  # noqa: PLC0415

        return ConfluentConsumer(
            endpoint.bootstrap,
            endpoint.security,
            group_id=group_id,
            client_id=client_id,
            assignor=assignor,
            auto_offset_reset=auto_offset_reset,
            fetch_wait_ms=fetch_wait_ms,
            partition_fetch_bytes=partition_fetch_bytes,
        )
    from shared.io.transport.kafka_python import KafkaPythonConsumer  # noqa: PLC0415

    return KafkaPythonConsumer(
        endpoint,
        group_id=group_id,
        client_id=client_id,
        assignor=assignor,
        auto_offset_reset=auto_offset_reset,
        fetch_wait_ms=fetch_wait_ms,
        partition_fetch_bytes=partition_fetch_bytes,
    )


def open_producer(
    client: ClientName,
    kafka_at: Kafka,
    *,
    client_id: str = "driftline",
    transactional_id: str | None = None,
    linger_ms: int = 5,
    batch_bytes: int = 64 * 1024,
) -> Producer:
    """An idempotent ``acks=all`` producer partitioning keys with murmur2, on ``client``; it
    waits up to ``linger_ms`` to fill a batch (kafka-python's batches hold at most
    ``batch_bytes`` per partition; librdkafka's are bounded by its own defaults)."""
    endpoint = endpoint_of(kafka_at)
    if client == "confluent":
        from shared.io.transport.confluent import ConfluentProducer  # noqa: PLC0415

        return ConfluentProducer(
            endpoint.bootstrap,
            endpoint.security,
            client_id=client_id,
            transactional_id=transactional_id,
            linger_ms=linger_ms,
        )
    from shared.io.transport.kafka_python import KafkaPythonProducer  # noqa: PLC0415

    return KafkaPythonProducer(
        endpoint,
        client_id=client_id,
        transactional_id=transactional_id,
        linger_ms=linger_ms,
        batch_bytes=batch_bytes,
    )
