"""The confluent-kafka producer's bounded transaction steps, against a librdkafka client that
never returns from a step (confluentinc/librdkafka#5511: ``send_offsets_to_transaction`` left
waiting for good after the broker came back). No broker is involved: what is tested is how the
boundary waits on a call that does not return, and replaces the client that made it."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest

from shared.core.errors import KafkaError
from shared.io.transport import TP, confluent
from shared.io.transport.confluent import ConfluentConsumer, ConfluentProducer


class _Client:
    """A librdkafka producer whose ``send_offsets_to_transaction`` blocks until released."""

    made: ClassVar[list[_Client]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.release = threading.Event()
        self.calls: list[str] = []
        self.closed = False
        _Client.made.append(self)

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self.calls.append("send_offsets")
        self.release.wait(30)

    def init_transactions(self, timeout_s: float) -> None:
        self.calls.append("init")

    def abort_transaction(self, timeout_s: float) -> None:
        self.calls.append("abort")

    def commit_transaction(self, timeout_s: float) -> None:
        self.calls.append("commit")

    def flush(self, timeout_s: float) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class _Consumer(ConfluentConsumer):
    def __init__(self) -> None:
        self._consumer = self

    def consumer_group_metadata(self) -> object:
        return object()


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> ConfluentProducer:
    _Client.made = []
    monkeypatch.setattr(confluent.confluent_kafka, "Producer", _Client)
    monkeypatch.setattr(confluent, "TRANSACTION_TIMEOUT_S", 0.3)
    return ConfluentProducer("127.0.0.1:1", {}, transactional_id="t")


def test_a_step_that_does_not_return_is_waited_on_in_slices_then_given_up(
    producer: ConfluentProducer,
) -> None:
    offsets = {TP("t", 0): 5}
    with pytest.raises(KafkaError) as first:
        producer.send_offsets_to_transaction(offsets, _Consumer(), 0.1)
    assert first.value.retriable  # not finished yet: calling again waits further
    with pytest.raises(KafkaError) as second:
        producer.send_offsets_to_transaction(offsets, _Consumer(), 0.1)
    assert second.value.retriable
    stuck = _Client.made[0]
    assert stuck.calls == ["send_offsets"]  # waited on, never called twice at once
    with pytest.raises(KafkaError) as given_up:
        producer.send_offsets_to_transaction(offsets, _Consumer(), 0.2)
    assert given_up.value.abortable and not given_up.value.retriable
    assert "given up" in str(given_up.value)

    producer.abort_transaction(1.0)  # a new client, whose initialisation fences the stuck one
    assert len(_Client.made) == 2
    fresh = _Client.made[1]
    assert fresh.calls == ["init"]
    assert fresh.config == stuck.config  # the same transactional id
    producer.commit_transaction(1.0)
    assert fresh.calls == ["init", "commit"]
    assert producer.abandoned == 1  # the stuck client is held while its call is inside it
    assert not stuck.closed
    stuck.release.set()
    deadline = time.monotonic() + 5
    while producer.abandoned and time.monotonic() < deadline:
        time.sleep(0.01)
    assert producer.abandoned == 0 and stuck.closed  # closed once its call returned
    assert not fresh.closed


def test_a_step_that_returns_in_time_is_not_given_up(producer: ConfluentProducer) -> None:
    client = _Client.made[0]
    client.release.set()
    producer.send_offsets_to_transaction({TP("t", 0): 5}, _Consumer(), 1.0)
    producer.abort_transaction(1.0)
    assert client.calls == ["send_offsets", "abort"]
    assert len(_Client.made) == 1


class _Event:
    """A consumed librdkafka event that carries only an error (as ``consume()`` hands them)."""

    def __init__(self, code: int) -> None:
        self._error = confluent.confluent_kafka.KafkaError(code)

    def error(self) -> Any:
        return self._error


class _Polled(ConfluentConsumer):
    """The boundary's poll over a librdkafka consumer that hands over ``events``."""

    def __init__(self, events: list[Any], *, cluster_answers: bool = False) -> None:
        self._consumer = self
        self._errors = confluent._Errors()
        self._next_probe = 0.0
        self.events = events
        self.cluster_answers = cluster_answers
        self.probes = 0

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return self.events

    def list_topics(self, timeout: float) -> object:
        self.probes += 1
        if not self.cluster_answers:
            raise confluent.KafkaException(
                confluent.confluent_kafka.KafkaError(
                    confluent.confluent_kafka.KafkaError._TRANSPORT
                )
            )
        return object()


class _Message:
    """A consumed record fetched before the brokers went."""

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000)

    def headers(self) -> None:
        return None


def test_a_poll_of_error_events_only_does_not_hide_a_lost_cluster() -> None:
    """A poll can hand over nothing but error events while the broker is away; those are not
    the cluster answering, and clearing the lost-cluster report on them hid the outage (the
    monitor, idle, never said Kafka was away)."""
    transport = confluent.confluent_kafka.KafkaError._TRANSPORT
    polled = _Polled([_Event(transport)])
    polled._errors.all_down = "all brokers down"
    with pytest.raises(KafkaError) as raised:
        polled.poll(0.1)
    assert raised.value.retriable and "all brokers down" in str(raised.value)
    # the lost cluster reported as an event of the poll itself counts too
    polled = _Polled([_Event(confluent.confluent_kafka.KafkaError._ALL_BROKERS_DOWN)])
    with pytest.raises(KafkaError, match="polling"):
        polled.poll(0.1)
    assert _Polled([_Event(transport)]).poll(0.1) == []  # a broker away alone is no outage yet


def test_records_fetched_before_the_brokers_went_do_not_hide_a_lost_cluster() -> None:
    """A consumer behind its stream drains what librdkafka fetched before the brokers went:
    those records cleared the lost-cluster report, and the monitor never said Kafka was away.
    Now records clear it only once a metadata request is answered."""
    polled = _Polled([_Message()])
    polled._errors.all_down = "all brokers down"
    assert len(polled.poll(0.1)) == 1  # the fetched records are handed over...
    assert len(polled.poll(0.1)) == 1  # (one probe a second, not one a poll)
    assert polled.probes == 1
    polled.events = []
    with pytest.raises(KafkaError, match="all brokers down"):  # ...and the outage is said
        polled.poll(0.1)

    back = _Polled([_Message()], cluster_answers=True)
    back._errors.all_down = "all brokers down"
    assert len(back.poll(0.1)) == 1
    back.events = []
    assert back.poll(0.1) == []  # the cluster answered: the report was cleared
