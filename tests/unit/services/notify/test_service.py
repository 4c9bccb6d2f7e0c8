"""The notifier's loop steps with stand-ins for the consumer, the producer and the store (the
real ones are tested with a broker and Redis in tests/integration/test_notify.py): the order of
saving and committing when Redis fails mid-round."""

from __future__ import annotations

import queue
from typing import Any

from services.notify.incidents import _alert
from services.notify.metrics import NotifyMetrics
from services.notify.routes import Route
from services.notify.service import Notifier
from shared.core.errors import RedisError
from shared.io.transport import TP, Flushed, Record


class Consumer:
    def __init__(self) -> None:
        self.commits: list[dict[TP, int]] = []
        self.seeks: list[tuple[TP, int]] = []

    def commit(self, offsets: dict[TP, int]) -> None:
        self.commits.append(dict(offsets))

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class Producer:
    def flush(self, timeout_s: float) -> Flushed:
        return Flushed(0)


class Store:
    """Fails the first save, as a Redis that went away would."""

    def __init__(self) -> None:
        self.saved: list[list[str]] = []
        self.fail = 1

    def delivered_to(self, routes: Any, changes: Any) -> set[tuple[str, str]]:
        return set()

    def save(self, incidents: Any, gone: Any = ()) -> None:
        if self.fail:
            self.fail -= 1
            raise RedisError("Redis did not answer")
        self.saved.append(sorted(m for i in incidents for m in i.members))


def _notifier(consumer: Consumer, store: Store) -> Notifier:
    notifier = Notifier(
        consumer=consumer,  # type: ignore[arg-type]
        producer=Producer(),  # type: ignore[arg-type]
        topic="alerts",
        store=store,  # type: ignore[arg-type]
        routes=[Route("hook", "webhook", "http://hook")],
        senders={},
        results=queue.Queue(),
        dead_letters=None,  # type: ignore[arg-type]
        metrics=NotifyMetrics.create(),
        deployment="d",
        group_wait_s=1.0,
        group_interval_s=1.0,
    )
    notifier.owned = {0}
    notifier.stopping.wait = lambda timeout=None: False  # type: ignore[method-assign]
    return notifier


def test_what_was_folded_but_not_saved_is_saved_before_its_records_are_committed() -> None:
    consumer, store = Consumer(), Store()
    notifier = _notifier(consumer, store)
    records = [Record("alerts", 0, 7, b"m", _alert("a1", "x").encode(), 0)]
    notifier._fold(records)  # Redis fails: nothing committed, the records are read again
    assert consumer.commits == [] and consumer.seeks == [(TP("alerts", 0), 7)]
    assert "redis" in notifier.readiness()[1]
    notifier._fold(records)  # read again: it folds into nothing new, yet is saved now
    assert store.saved == [["a1"]]
    assert consumer.commits == [{TP("alerts", 0): 8}]
