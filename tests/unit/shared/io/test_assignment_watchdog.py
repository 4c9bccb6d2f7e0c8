"""The watchdog's timing: re-join after the wait, back off, reset once partitions come."""

from __future__ import annotations

from typing import Any

from shared.io.kafka import AssignmentWatchdog


class _Recorder:
    """Stands in for the consumer's unsubscribe; the watchdog's Kafka calls are tested live."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")


def test_rejoins_after_the_wait_and_backs_off() -> None:
    now = [0.0]
    consumer = _Recorder()
    watchdog = AssignmentWatchdog(
        consumer,  # type: ignore[arg-type]
        lambda: consumer.calls.append("subscribe"),
        after_s=15.0,
        max_s=40.0,
        clock=lambda: now[0],
    )
    fired: list[Any] = []
    for t in range(0, 120):
        now[0] = float(t)
        if watchdog.check(assigned=False):
            fired.append(t)
    assert fired == [15, 45, 85]  # waits of 15, then 30, then 40 (the cap)
    assert consumer.calls[:2] == ["unsubscribe", "subscribe"]
    now[0] = 200.0
    assert watchdog.check(assigned=True) is False
    now[0] = 230.0
    assert watchdog.check(assigned=False) is False  # empty again: the clock starts afresh
