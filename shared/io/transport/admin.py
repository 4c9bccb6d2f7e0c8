"""Topic administration through the Kafka boundary, on either client: the topics a deployment
needs (created once, their co-partitioning checked), the check every service makes at start, the
demo's clean-up, the cluster probe of ``driftline infra``, and SCRAM users.

Each function opens an admin client of the chosen implementation (confluent-kafka by default,
like every other client; ``DRIFTLINE_KAFKA_CLIENT`` picks), does its work and closes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from shared.core.errors import ConfigError, KafkaError
from shared.core.topics import CO_PARTITIONED, TopicSpec
from shared.io.kafka import Kafka, endpoint_of
from shared.io.transport.base import Admin, ClientName

log = logging.getLogger(__name__)

DEFAULT_CLIENT: ClientName = "confluent"


def open_admin(
    kafka_at: Kafka,
    *,
    client: ClientName = DEFAULT_CLIENT,
    timeout_s: float = 10.0,
    client_id: str = "driftline-admin",
) -> Admin:
    """An admin client of ``kafka_at`` on ``client`` (the caller closes it)."""
    endpoint = endpoint_of(kafka_at)
    if client == "confluent":
        from shared.io.transport.confluent import ConfluentAdmin  # noqa: PLC0415

        return ConfluentAdmin(
            endpoint.bootstrap, endpoint.security, client_id=client_id, timeout_s=timeout_s
        )
    from shared.io.transport.kafka_python import KafkaPythonAdmin  # noqa: PLC0415

    return KafkaPythonAdmin(endpoint, client_id=client_id, timeout_s=timeout_s)


def ensure_topics(
    kafka_at: Kafka,
    specs: Iterable[TopicSpec],
    timeout_s: float = 30.0,
    *,
    client: ClientName = DEFAULT_CLIENT,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created (idempotent).

    Existing topics are left as they are, but the co-partitioned ones (features, labels,
    predictions) must agree on their partition count, else the monitor's join would be wrong:
    that raises :class:`ConfigError`.
    """
    wanted = list(specs)
    admin = open_admin(kafka_at, client=client, timeout_s=timeout_s)
    try:
        existing = admin.topics()
        missing = [spec for spec in wanted if spec.name not in existing]
        # Another process may create a topic between list and create: that is the goal.
        admin.create({spec.name: spec.partitions for spec in missing})
        counts = _partition_counts(admin, [spec.name for spec in wanted], timeout_s)
    finally:
        admin.close()
    joined = {name: count for name, count in counts.items() if name.endswith(CO_PARTITIONED)}
    if len(set(joined.values())) > 1:
        raise ConfigError(
            "features, labels and predictions must have the same number of partitions for the "
            f"monitor's join, but the broker has {joined}. Recreate them with one count "
            "(DRIFTLINE_PARTITIONS) or use a new DRIFTLINE_TOPIC_PREFIX."
        )
    created = [spec.name for spec in missing]
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


def _partition_counts(admin: Admin, names: list[str], timeout_s: float) -> dict[str, int]:
    """Partition counts as the broker reports them, waiting for freshly created topics to appear."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = admin.partition_counts(names)
        if len(counts) == len(names) or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def require_topics(
    kafka_at: Kafka,
    names: Iterable[str],
    timeout_s: float = 10.0,
    *,
    client: ClientName = DEFAULT_CLIENT,
) -> None:
    """Raise :class:`ConfigError` naming each of ``names`` the broker does not have, and the
    command that creates them: at once, rather than after a client's 60 s wait for metadata."""
    wanted = list(names)
    admin = open_admin(kafka_at, client=client, timeout_s=timeout_s)
    try:
        existing = admin.topics()
    finally:
        admin.close()
    missing = [name for name in wanted if name not in existing]
    if missing:
        raise ConfigError(
            f"Kafka at {kafka_at} has no topic {', '.join(missing)}; create driftline's topics "
            "with `driftline infra up` (with the same DRIFTLINE_TOPIC_PREFIX, or --topic-prefix), "
            "or point DRIFTLINE_TOPIC_PREFIX at the deployment whose topics exist"
        )


def delete_topics(
    kafka_at: Kafka, prefix: str, timeout_s: float = 30.0, *, client: ClientName = DEFAULT_CLIENT
) -> list[str]:
    """Delete every topic whose name starts with ``prefix``; return the names deleted."""
    if not prefix:
        raise ValueError("an empty prefix would delete every topic")
    admin = open_admin(kafka_at, client=client, timeout_s=timeout_s)
    try:
        names = sorted(name for name in admin.topics() if name.startswith(prefix))
        admin.delete(names)
    finally:
        admin.close()
    return names


def cluster_id(
    kafka_at: Kafka, timeout_s: float = 5.0, *, client: ClientName = DEFAULT_CLIENT
) -> str:
    """The cluster id of the broker at ``kafka_at``: proof that it answers metadata requests."""
    admin = open_admin(kafka_at, client=client, timeout_s=timeout_s, client_id="driftline-probe")
    try:
        return admin.cluster_id()
    finally:
        admin.close()


def add_scram_user(
    kafka_at: Kafka,
    user: str,
    password: str,
    mechanisms: Iterable[str],
    *,
    client: ClientName = DEFAULT_CLIENT,
) -> None:
    """Create (or reset) ``user``'s SCRAM credentials through Kafka's admin API (the password
    goes to the broker over the connection, never on a command line)."""
    failed: dict[str, str] = {}
    admin = open_admin(kafka_at, client=client, timeout_s=30.0)
    try:  # one request per mechanism: Kafka refuses two alterations of a user in one
        for mechanism in mechanisms:
            error = admin.upsert_scram_user(user, password, mechanism)
            if error:
                failed[mechanism] = error
    finally:
        admin.close()
    if failed:
        raise KafkaError(f"Kafka did not create the SCRAM user {user}: {failed}")
