"""The boundary on confluent-kafka (librdkafka): a C client, about ten times cheaper per record
than kafka-python.

librdkafka's own defaults differ from driftline's where it matters, so each is set on purpose:
``partitioner=murmur2_random`` (its default, ``consistent_random``, hashes keys with crc32 and
would put a key on another partition than Java's and kafka-python's clients),
``enable.idempotence`` with ``acks=all``, no auto-commit, ``read_committed``, and the assignor
asked for. Errors are translated here, with librdkafka's ``retriable`` flag.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from shared.core.errors import KafkaError
from shared.io.kafka import no_broker
from shared.io.transport.base import TP, Assignor, Consumer, Flushed, Partitions, Record

_SECURITY = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanisms",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
}
"""kafka-python's security options (what ``KafkaEndpoint`` holds) under librdkafka's names."""


def librdkafka_config(bootstrap: str, security: Mapping[str, Any]) -> dict[str, Any]:
    """The connection settings of a client in librdkafka's names.

    >>> librdkafka_config("h:9092", {"security_protocol": "SASL_SSL", "sasl_plain_username": "u"})
    {'bootstrap.servers': 'h:9092', 'security.protocol': 'SASL_SSL', 'sasl.username': 'u'}
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap}
    for name, value in security.items():
        if name not in _SECURITY:
            raise KafkaError(f"the Kafka security option {name!r} has no librdkafka equivalent")
        config[_SECURITY[name]] = value
    return config


SCRAM_ITERATIONS = 8192
"""PBKDF2 iterations of a SCRAM credential this admin creates (Kafka takes 4,096 at least)."""

_LOG = logging.getLogger(__name__)
_LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
"""librdkafka's own log lines, through Python's logging (structured like every other line)."""


def _translated(action: str, exc: KafkaException) -> KafkaError:
    error = exc.args[0] if exc.args else None
    if isinstance(error, confluent_kafka.KafkaError):
        abortable = bool(error.txn_requires_abort())
        hint = ""
        if error.fatal():
            hint = (
                "; the producer cannot go on (another instance with the same transactional id "
                "took over, or the broker fenced it): restart it with a unique --instance-id"
            )
        return KafkaError(
            f"{action}: {error.str()}{hint}",
            retriable=bool(error.retriable()) and not abortable,
            abortable=abortable,
        )
    return KafkaError(f"{action}: {exc}")


class _Errors:
    """librdkafka reports a lost cluster through a callback, not from a call: kept here, so that
    the next poll that returns nothing raises it as a retriable outage."""

    def __init__(self) -> None:
        self.all_down: str | None = None

    def __call__(self, error: Any) -> None:
        if error.code() == confluent_kafka.KafkaError._ALL_BROKERS_DOWN:
            self.all_down = error.str()
        _LIBRDKAFKA_LOG.warning("kafka: %s", error.str())


def _partitions(client: Any, topic: str) -> set[int]:
    try:
        metadata = client.list_topics(topic, timeout=10.0)
    except KafkaException as exc:
        raise _translated(f"reading the metadata of {topic}", exc) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return set()
    return set(found.partitions)


class ConfluentConsumer:
    """:class:`~shared.io.transport.base.Consumer` on librdkafka."""

    def __init__(
        self,
        bootstrap: str,
        security: Mapping[str, Any],
        *,
        group_id: str,
        client_id: str = "driftline",
        assignor: Assignor = "range",
        auto_offset_reset: str = "earliest",
        fetch_wait_ms: int = 500,
        partition_fetch_bytes: int | None = None,
    ) -> None:
        config = {
            **librdkafka_config(bootstrap, security),
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": auto_offset_reset,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": fetch_wait_ms,
            "partition.assignment.strategy": assignor,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
            "max.poll.interval.ms": 30_000,
            "logger": _LIBRDKAFKA_LOG,
        }
        if partition_fetch_bytes is not None:
            config["max.partition.fetch.bytes"] = partition_fetch_bytes
        self._errors = _Errors()
        self._next_probe = 0.0
        config["error_cb"] = self._errors
        self._cooperative = assignor == "cooperative-sticky"
        try:
            self._consumer = confluent_kafka.Consumer(config)
        except KafkaException as exc:
            raise _translated(f"connecting consumer group {group_id}", exc) from None
        self._closed = False
        self._owned: set[TP] = set()
        self._starts: dict[TP, int] = {}
        """Where each partition was assigned or sought to: its position until a record of it
        is handed over (librdkafka knows a position only from then on)."""
        self._assigning: dict[TP, TopicPartition] | None = None
        """While ``on_assign`` runs: the partitions being assigned, with a seek's offset."""
        self._pausing: list[TopicPartition] = []

    @property
    def client(self) -> Any:
        """The librdkafka consumer (for a producer's transaction: its group metadata)."""
        return self._consumer

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: Partitions | None = None,
        on_revoke: Partitions | None = None,
    ) -> None:
        def assigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            gained = [TP(p.topic, p.partition) for p in partitions]
            self._assigning = {TP(p.topic, p.partition): p for p in partitions}
            try:
                if on_assign is not None:
                    on_assign(gained)
            finally:
                chosen = list(self._assigning.values())
                self._assigning = None
            # Assigned here, with the offsets sought inside the callback (librdkafka can seek
            # only an assigned partition), then paused as the callback asked.
            if self._cooperative:
                consumer.incremental_assign(chosen)
            else:
                consumer.assign(chosen)
            self._owned |= set(gained)
            self._learn_starts(chosen)
            pausing, self._pausing = self._pausing, []
            # librdkafka keeps a partition paused by the application across a rebalance; a new
            # assignment starts unpaused here (as in kafka-python) unless the callback paused it.
            held = {(p.topic, p.partition) for p in pausing}
            running = [p for p in chosen if (p.topic, p.partition) not in held]
            if running:
                consumer.resume(running)
            if pausing:
                consumer.pause(pausing)

        def revoked(consumer: Any, partitions: list[TopicPartition]) -> None:
            lost = [TP(p.topic, p.partition) for p in partitions]
            self._owned -= set(lost)
            for tp in lost:
                self._starts.pop(tp, None)
            if on_revoke is not None:
                on_revoke(lost)

        try:
            self._consumer.subscribe(
                list(topics), on_assign=assigned, on_revoke=revoked, on_lost=revoked
            )
        except KafkaException as exc:
            raise _translated(f"subscribing to {', '.join(topics)}", exc) from None

    def assign(self, offsets: Mapping[TP, int]) -> None:
        try:
            self._consumer.assign([TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        except KafkaException as exc:
            raise _translated("assigning partitions", exc) from None
        self._owned = set(offsets)
        self._starts = dict(offsets)

    def _learn_starts(self, partitions: list[TopicPartition]) -> None:
        """Where newly assigned partitions start: the offset sought, else the group's commit,
        else (auto.offset.reset earliest) the partition's first offset. Best effort: what the
        broker does not say now stays unknown."""
        unknown = []
        for p in partitions:
            if p.offset >= 0:
                self._starts[TP(p.topic, p.partition)] = int(p.offset)
            else:
                unknown.append(TopicPartition(p.topic, p.partition))
        if not unknown:
            return
        try:
            for found in self._consumer.committed(unknown, 10.0):
                tp = TP(found.topic, found.partition)
                if found.offset >= 0:
                    self._starts[tp] = int(found.offset)
                else:
                    low, _ = self._consumer.get_watermark_offsets(found, timeout=5.0)
                    self._starts[tp] = int(low)
        except KafkaException as exc:
            _LOG.warning("could not learn where the assigned partitions start: %s", exc)

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        try:
            # Any: a message with no error always has its topic, partition and offset.
            messages: list[Any] = self._consumer.consume(
                num_messages=max_records, timeout=timeout_s
            )
        except KafkaException as exc:
            raise _translated("polling", exc) from None
        records: list[Record] = []
        append = records.append
        for message in messages:
            if message.error() is not None:
                self._message_error(message.error())
                continue
            pairs = message.headers()
            append(
                Record(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.key(),
                    message.value(),
                    message.timestamp()[1],
                    _headers(pairs) if pairs else (),
                )
            )
        if self._errors.all_down is not None:
            self._check_lost_cluster(bool(records))
        return records

    def _check_lost_cluster(self, handed_over: bool) -> None:
        """After librdkafka said every broker is down: raise it as an outage on a poll that hands
        over nothing; on one that hands over records, clear it only once the cluster answers.

        Error events are not the cluster answering (a poll of those alone hid the outage for
        good), and neither are records: librdkafka hands over what it fetched before the brokers
        went, and a consumer behind its stream drained those for a minute while the outage
        went unsaid. A metadata request (at most one a second, half a second each) tells."""
        if handed_over:
            now = time.monotonic()
            if now < self._next_probe:
                return
            self._next_probe = now + 1.0
            try:
                self._consumer.list_topics(timeout=0.5)
            except KafkaException:
                return  # still away: said once the fetched records are drained
            self._errors.all_down = None
            return
        down, self._errors.all_down = self._errors.all_down, None
        raise KafkaError(f"polling: {down}", retriable=True)

    def _message_error(self, error: Any) -> None:
        if error.code() == confluent_kafka.KafkaError._ALL_BROKERS_DOWN:
            self._errors.all_down = error.str()
        if error.fatal():
            raise KafkaError(f"polling: {error.str()}", retriable=False)
        # Anything else is news the consumer recovers from by itself: a poll interval exceeded
        # while the service waited out an outage (it re-joins the group in this poll), a
        # partition's end, a broker away.
        if error.code() != confluent_kafka.KafkaError._PARTITION_EOF:
            _LIBRDKAFKA_LOG.warning("consumer: %s", error.str())

    def assignment(self) -> set[TP]:
        return {TP(p.topic, p.partition) for p in self._consumer.assignment()}

    def pause(self, partitions: Iterable[TP]) -> None:
        chosen = [TopicPartition(t, p) for t, p in partitions]
        if self._assigning is not None:
            self._pausing.extend(chosen)
            return
        self._consumer.pause(chosen)

    def resume(self, partitions: Iterable[TP]) -> None:
        self._consumer.resume([TopicPartition(t, p) for t, p in partitions])

    def seek(self, tp: TP, offset: int) -> None:
        if self._assigning is not None and tp in self._assigning:
            self._assigning[tp] = TopicPartition(tp.topic, tp.partition, offset)
            return
        self._starts[tp] = offset
        try:
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        except KafkaException as exc:
            raise _translated(f"seeking {tp.topic}[{tp.partition}] to {offset}", exc) from None

    def position(self, tp: TP) -> int:
        [found] = self._consumer.position([TopicPartition(tp.topic, tp.partition)])
        if found.offset >= 0:
            return int(found.offset)
        committed = self.committed(tp)
        if committed is not None:
            return committed
        low, _ = self._consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition))
        return int(low)

    def _watermarks(self, partitions: Iterable[TP], which: int) -> dict[TP, int]:
        found = {}
        for tp in partitions:
            try:
                marks = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=10.0, cached=False
                )
            except KafkaException as exc:
                raise _translated(f"reading the ends of {tp.topic}[{tp.partition}]", exc) from None
            if marks is None:
                raise KafkaError(f"reading the ends of {tp.topic}[{tp.partition}]: no answer")
            found[tp] = int(marks[which])
        return found

    def beginning_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return self._watermarks(partitions, 0)

    def end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return self._watermarks(partitions, 1)

    def committed(self, tp: TP) -> int | None:
        try:
            [found] = self._consumer.committed([TopicPartition(tp.topic, tp.partition)], 10.0)
        except KafkaException as exc:
            raise _translated(f"reading the commit of {tp.topic}[{tp.partition}]", exc) from None
        return int(found.offset) if found.offset >= 0 else None

    def unread(self, tp: TP) -> int | None:
        if tp not in self._owned:
            return 0
        partition = TopicPartition(tp.topic, tp.partition)
        try:
            _, high = self._consumer.get_watermark_offsets(partition, cached=True)
            [found] = self._consumer.position([partition])
        except KafkaException:
            return None
        at = int(found.offset) if found.offset >= 0 else self._starts.get(tp)
        if high < 0 or at is None:
            return None
        return max(0, int(high) - at)

    def partitions_for(self, topic: str) -> set[int]:
        return _partitions(self._consumer, topic)

    def commit(self, offsets: Mapping[TP, int]) -> None:
        if not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            raise _translated("committing offsets", exc) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing commits nothing; if it fails, the group times the member out.
        with contextlib.suppress(KafkaException, RuntimeError):
            self._consumer.close()


QUEUE_FULL_S = 5.0
"""How long a send waits for room in a full queue before it fails (retriable)."""
TRANSACTION_TIMEOUT_S = 60.0
"""How long the broker lets a transaction stay open before aborting it itself."""


class _Step:
    """One transaction call running in its own thread, so that its caller waits on it in bounded
    slices: librdkafka's calls can block for ``socket.timeout.ms`` (a minute) past the timeout
    given while the broker is away, and a service must see a stop asked for meanwhile."""

    def __init__(self, action: str, call: Callable[[], None]) -> None:
        self.action = action
        self.started = time.monotonic()
        self.error: BaseException | None = None
        self._done = threading.Event()
        threading.Thread(
            target=self._run, args=(call,), name="kafka-transaction", daemon=True
        ).start()

    def _run(self, call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as exc:  # handed to the waiting caller
            self.error = exc
        finally:
            self._done.set()

    def wait(self, timeout_s: float) -> bool:
        return self._done.wait(timeout_s)


def _headers(pairs: Any) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs)


class ConfluentProducer:
    """:class:`~shared.io.transport.base.Producer` on librdkafka.

    A transaction step that has not finished within its timeout raises a retriable
    :class:`~shared.core.errors.KafkaError` and goes on in the background: calling the same step
    again waits on it further (as kafka-python's bounded steps do), and a different step first
    waits for it to end.
    """

    def __init__(
        self,
        bootstrap: str,
        security: Mapping[str, Any],
        *,
        client_id: str = "driftline",
        transactional_id: str | None = None,
        linger_ms: int = 5,
    ) -> None:
        config = {
            **librdkafka_config(bootstrap, security),
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            # A send is never given up while the broker is away; flushes are bounded instead.
            "message.timeout.ms": 0,
            "logger": _LIBRDKAFKA_LOG,
            # Only failed deliveries call back into Python: a callback per record delivered
            # was a fifth of the pass-through's CPU; success is what flush() waiting says.
            "on_delivery": self._delivered,
            "delivery.report.only.error": True,
        }
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
            config["transaction.timeout.ms"] = int(TRANSACTION_TIMEOUT_S * 1000)
        self._config = config
        try:
            self._producer = confluent_kafka.Producer(config)
        except KafkaException as exc:
            raise _translated("connecting a producer", exc) from None
        self._stuck = False
        self._initialising = False
        self._abandoned: list[tuple[Any, _Step]] = []
        """Clients replaced while one of their calls had not returned, with that call: each is
        closed once its call returns (before, closing it would wait on the same stuck call)."""
        self._failed: list[tuple[str, str]] = []
        self._closed = False
        self._step: _Step | None = None

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failed.append((message.topic(), error.str()))

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        options: dict[str, Any] = {}
        if partition is not None:
            options["partition"] = partition
        if timestamp_ms is not None:
            options["timestamp"] = timestamp_ms
        if headers:
            options["headers"] = list(headers)
        try:
            if options:
                self._producer.produce(topic, value, key, **options)
            else:
                self._producer.produce(topic, value, key)
        except BufferError:
            self._wait_for_room(topic, value, key, options)
        except KafkaException as exc:
            raise _translated(f"producing to {topic}", exc) from None

    def _wait_for_room(
        self, topic: str, value: bytes | None, key: bytes | None, options: dict[str, Any]
    ) -> None:
        """The queue is full: let deliveries drain it for a few seconds, then say so."""
        deadline = time.monotonic() + QUEUE_FULL_S
        while time.monotonic() < deadline:
            self._producer.poll(0.1)
            try:
                self._producer.produce(topic, value, key, **options)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                raise _translated(f"producing to {topic}", exc) from None
        raise KafkaError(
            f"producing to {topic}: the producer's queue stayed full for {QUEUE_FULL_S:g} s "
            "(the broker is away or slow)",
            retriable=True,
        )

    def partitions_for(self, topic: str) -> set[int]:
        return _partitions(self._producer, topic)

    def flush(self, timeout_s: float) -> Flushed:
        pending = int(self._producer.flush(timeout_s))
        failed, self._failed = self._failed, []
        return Flushed(pending, failed)

    def _call(self, action: str, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except KafkaException as exc:
            raise _translated(action, exc) from None

    def _bounded(self, action: str, call: Callable[[float], None], timeout_s: float) -> None:
        """Run ``call`` (given its own timeout) as the transaction step ``action``, waiting for
        it at most ``timeout_s``.

        librdkafka can leave a step waiting for good after the broker comes back (a stale group
        coordinator: confluentinc/librdkafka#5511, #5456). A step still waiting after the
        transaction timeout is given up: its transaction is abortable, and
        :meth:`abort_transaction` replaces the client with a new one of the same transactional
        id, whose initialisation fences the old one and aborts what it left open."""
        step = self._step
        if step is not None and step.action != action:
            if not step.wait(timeout_s):
                self._give_up_if_stuck(step)
                raise KafkaError(
                    f"{action}: still waiting for {step.action} to end", retriable=True
                )
            step = self._step = None
        if step is None:
            step = self._step = _Step(action, lambda: call(timeout_s))
        if not step.wait(timeout_s):
            self._give_up_if_stuck(step)
            raise KafkaError(f"{action}: no answer in {timeout_s:g} s", retriable=True)
        self._step = None
        if isinstance(step.error, KafkaException):
            raise _translated(action, step.error) from None
        if step.error is not None:
            raise step.error

    def _give_up_if_stuck(self, step: _Step) -> None:
        waited = time.monotonic() - step.started
        if waited < TRANSACTION_TIMEOUT_S:
            return
        self._stuck = True
        raise KafkaError(
            f"{step.action}: librdkafka has not returned in {waited:.0f} s, past the transaction "
            "timeout; the transaction is given up and the client replaced",
            abortable=True,
        )

    def _replace(self) -> None:
        """A new librdkafka client in place of one stuck in a transaction step (kept until that
        step returns: its thread is still inside it)."""
        step = self._step
        _LOG.warning("replacing the transactional producer stuck in %s", step and step.action)
        self._release_abandoned()
        if step is not None:
            self._abandoned.append((self._producer, step))
        if len(self._abandoned) > 1:
            _LOG.warning(
                "%d replaced transactional producers are still inside librdkafka calls; each is "
                "closed when its call returns (restart the service if this count keeps rising)",
                len(self._abandoned),
            )
        self._step = None
        self._producer = confluent_kafka.Producer(self._config)
        self._stuck = False
        self._initialising = True

    def init_transactions(self, timeout_s: float) -> None:
        self._call("initialising transactions", self._producer.init_transactions, timeout_s)

    @property
    def abandoned(self) -> int:
        """Replaced clients whose stuck call has not returned yet."""
        self._release_abandoned()
        return len(self._abandoned)

    def _release_abandoned(self) -> None:
        """Close each replaced client whose stuck call has returned since (its threads and
        sockets go with it); say how many are still held."""
        if not self._abandoned:
            return
        held = []
        for client, step in self._abandoned:
            if not step.wait(0):
                held.append((client, step))
                continue
            close = getattr(client, "close", None)  # confluent-kafka 2.6 and later
            if close is not None:
                with contextlib.suppress(KafkaException, RuntimeError):
                    close()
        if len(held) != len(self._abandoned):
            _LOG.info("closed %d replaced producers", len(self._abandoned) - len(held))
        self._abandoned = held

    def begin_transaction(self) -> None:
        if self._abandoned:
            self._release_abandoned()
        self._call("beginning a transaction", self._producer.begin_transaction)

    def send_offsets_to_transaction(
        self, offsets: Mapping[TP, int], consumer: Consumer, timeout_s: float
    ) -> None:
        if not isinstance(consumer, ConfluentConsumer):
            raise TypeError("a confluent-kafka transaction needs a confluent-kafka consumer")
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        metadata = consumer.client.consumer_group_metadata()
        self._bounded(
            "adding offsets to the transaction",
            lambda t: self._producer.send_offsets_to_transaction(partitions, metadata, t),
            timeout_s,
        )

    def commit_transaction(self, timeout_s: float) -> None:
        self._bounded("committing the transaction", self._producer.commit_transaction, timeout_s)

    def abort_transaction(self, timeout_s: float) -> None:
        if self._stuck:
            self._replace()
        if self._initialising:  # a replaced client: its initialisation aborts the transaction
            self._bounded("initialising transactions", self._producer.init_transactions, timeout_s)
            self._initialising = False
            return
        self._bounded("aborting the transaction", self._producer.abort_transaction, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._release_abandoned()  # those still stuck go with the process
        self._producer.flush(timeout_s)
        close = getattr(self._producer, "close", None)  # confluent-kafka 2.6 and later
        if close is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                close()


_UNANSWERED = (
    confluent_kafka.KafkaError._TRANSPORT,
    confluent_kafka.KafkaError._TIMED_OUT,
    confluent_kafka.KafkaError._ALL_BROKERS_DOWN,
)
"""librdkafka's errors for a broker that did not answer (absent, or refusing the handshake)."""


class ConfluentAdmin:
    """:class:`~shared.io.transport.base.Admin` on librdkafka's ``AdminClient``. Each request
    waits at most ``timeout_s``; its future, at most as long again (librdkafka answers every
    request by its timeout, so the second bound only guards against one that never does)."""

    def __init__(
        self, bootstrap: str, security: Mapping[str, Any], *, client_id: str, timeout_s: float
    ) -> None:
        self._bootstrap = bootstrap
        self._secured = security.get("security_protocol", "PLAINTEXT") != "PLAINTEXT"
        self._timeout_s = timeout_s
        config = librdkafka_config(bootstrap, security)
        config.update({"client.id": client_id, "error_cb": self._error, "logger": _LIBRDKAFKA_LOG})
        self._seen_error: str | None = None
        try:
            self._admin = AdminClient(config)
        except KafkaException as exc:
            raise _translated("connecting to Kafka", exc) from None

    def _error(self, error: Any) -> None:
        self._seen_error = error.str()  # the last connection error, for a timeout's message

    def _failed(self, action: str, exc: BaseException) -> KafkaError:
        error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        unanswered = isinstance(exc, concurrent.futures.TimeoutError) or (
            isinstance(error, confluent_kafka.KafkaError) and error.code() in _UNANSWERED
        )
        if unanswered:
            seen = f" (librdkafka: {self._seen_error})" if self._seen_error else ""
            detail = f" in {self._timeout_s:g} s{seen}"
            return no_broker(action, self._bootstrap, secured=self._secured, detail=detail)
        if isinstance(exc, KafkaException):
            return _translated(action, exc)
        return KafkaError(f"{action}: {exc}")

    def _result(self, action: str, future: Any, ignore: tuple[int, ...] = ()) -> Any:
        try:
            return future.result(timeout=2 * self._timeout_s + 1)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, confluent_kafka.KafkaError) and error.code() in ignore:
                return None
            raise self._failed(action, exc) from None
        except concurrent.futures.TimeoutError as exc:
            raise self._failed(action, exc) from None

    def _metadata(self, action: str) -> Any:
        try:
            return self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            raise self._failed(action, exc) from None

    def topics(self) -> set[str]:
        return set(self._metadata("listing topics").topics)

    def create(self, partitions: Mapping[str, int]) -> None:
        if not partitions:
            return
        new = [NewTopic(name, num_partitions=count) for name, count in partitions.items()]
        try:
            futures = self._admin.create_topics(
                new, operation_timeout=self._timeout_s, request_timeout=self._timeout_s
            )
        except KafkaException as exc:
            raise self._failed("creating topics", exc) from None
        exists = (confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS,)
        for name, future in futures.items():
            self._result(f"creating the topic {name}", future, ignore=exists)

    def partition_counts(self, names: Sequence[str]) -> dict[str, int]:
        found = self._metadata("describing topics").topics
        counts = {}
        for name in names:
            topic = found.get(name)
            if topic is not None and topic.error is None and topic.partitions:
                counts[name] = len(topic.partitions)
        return counts

    def delete(self, names: Sequence[str]) -> None:
        if not names:
            return
        try:
            futures = self._admin.delete_topics(
                list(names), operation_timeout=self._timeout_s, request_timeout=self._timeout_s
            )
        except KafkaException as exc:
            raise self._failed("deleting topics", exc) from None
        gone = (confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,)
        for name, future in futures.items():
            self._result(f"deleting the topic {name}", future, ignore=gone)

    def cluster_id(self) -> str:
        try:
            future = self._admin.describe_cluster(request_timeout=self._timeout_s)
        except KafkaException as exc:
            raise self._failed("asking Kafka for metadata", exc) from None
        return str(self._result("asking Kafka for metadata", future).cluster_id)

    def upsert_scram_user(self, user: str, password: str, mechanism: str) -> str | None:
        kinds = {
            "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
            "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
        }
        if mechanism not in kinds:
            raise KafkaError(f"unknown SCRAM mechanism {mechanism!r}; one of {', '.join(kinds)}")
        upsert = UserScramCredentialUpsertion(
            user, ScramCredentialInfo(kinds[mechanism], SCRAM_ITERATIONS), password.encode()
        )
        action = f"creating the SCRAM user {user}"
        try:
            futures = self._admin.alter_user_scram_credentials(
                [upsert], request_timeout=self._timeout_s
            )
        except KafkaException as exc:
            raise self._failed(action, exc) from None
        try:
            for future in futures.values():
                self._result(action, future)
        except KafkaError as exc:
            if exc.retriable:
                raise
            return str(exc)  # the broker's refusal, for the caller to report
        return None

    def close(self) -> None:
        """An admin client has nothing to flush; librdkafka frees it with the last reference."""
