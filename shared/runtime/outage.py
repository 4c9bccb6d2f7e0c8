"""Outages of Kafka or Redis, waited out: what is down, since when, why; said once per interval.

A service that cannot reach a server keeps its place and waits: every call that can block has a
bounded timeout, and a wait is a loop of bounded attempts (:meth:`Outages.wait`) that keeps the
service's loop alive for ``/healthz``, reports not-ready with the reason on ``/readyz``, and gives
up only when the service is asked to stop. When the server answers again the service resumes
where it was, and says how long it waited.

>>> now = [0.0]
>>> outages = Outages(log_every_s=30.0, clock=lambda: now[0])
>>> outages.readiness() is None
True
>>> outages.down("kafka", "flush timed out"); now[0] = 12.0
>>> outages.readiness()
(False, 'kafka unreachable for 12 s: flush timed out; waiting, nothing is lost')
>>> outages.up("kafka"); outages.readiness() is None
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from shared.core.errors import KafkaError
from shared.io.transport import Consumer, Record

log = logging.getLogger(__name__)

ATTEMPT_S = 5.0
"""How long one attempt of a wait (a flush, a transaction's commit) may block: a stop asked for
meanwhile is seen within this."""
LOG_EVERY_S = 30.0


def backoff_s(attempt: int, *, first_s: float = 0.5, most_s: float = 30.0) -> float:
    """The pause before retry ``attempt`` (0-based): doubling from ``first_s`` up to ``most_s``.

    >>> [backoff_s(n) for n in range(8)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    """
    return float(min(most_s, first_s * 2 ** min(attempt, 30)))


class Outages:
    """The servers a service cannot reach now. Thread-safe enough for its use: the loop writes,
    the HTTP thread reads a snapshot."""

    def __init__(
        self, log_every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log_every_s = log_every_s
        self._clock = clock
        self._down: dict[str, tuple[float, str]] = {}
        self._logged: dict[str, float] = {}

    def down(self, what: str, why: object) -> None:
        """``what`` (``kafka``, ``redis``) did not answer, because of ``why``; logged at most once
        per interval while it lasts."""
        now = self._clock()
        since = self._down.get(what, (now, ""))[0]
        reason = str(why) or type(why).__name__
        self._down[what] = (since, reason)
        if now - self._logged.get(what, -float("inf")) >= self._log_every_s:
            self._logged[what] = now
            log.warning(
                "%s unreachable for %.0f s: %s; waiting, nothing is lost", what, now - since, reason
            )

    def up(self, what: str) -> None:
        """``what`` answered again."""
        found = self._down.pop(what, None)
        self._logged.pop(what, None)
        if found is not None:
            log.info("%s answers again after %.0f s; carrying on", what, self._clock() - found[0])

    def is_down(self, what: str) -> bool:
        return what in self._down

    def readiness(self) -> tuple[bool, str] | None:
        """Not ready, with the reason, while anything is down; None when all is well."""
        down = dict(self._down)
        if not down:
            return None
        now = self._clock()
        said = "; ".join(
            f"{what} unreachable for {now - since:.0f} s: {why}"
            for what, (since, why) in sorted(down.items())
        )
        return False, f"{said}; waiting, nothing is lost"

    def wait(
        self,
        what: str,
        attempt: Callable[[float], bool | str],
        *,
        stopping: Callable[[], bool],
        tick: Callable[[], None] = lambda: None,
        why: str = "not answering",
    ) -> bool:
        """Call ``attempt(ATTEMPT_S)`` until it returns True (True), or until ``stopping()`` after
        a failed attempt (False). An attempt fails with False, or with a string saying why
        (said instead of ``why``). ``tick`` runs between attempts (the loop's liveness stamp)."""
        while True:
            result = attempt(ATTEMPT_S)
            if result is True:
                self.up(what)
                return True
            self.down(what, result if isinstance(result, str) and result else why)
            tick()
            if stopping():
                return False


def hand_over(
    outages: Outages,
    send: Callable[[], object],
    *,
    stopping: Callable[[], bool],
    tick: Callable[[], None] = lambda: None,
    why: str = "a send timed out",
) -> bool:
    """``send()`` until the producer takes it: a retriable Kafka error (the queue full, no
    metadata) is an outage, waited out in bounded attempts (:meth:`Outages.wait`); any other is
    raised. False when ``stopping()`` first."""

    def attempt(_: float) -> bool:
        try:
            send()
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return False
        return True

    return outages.wait("kafka", attempt, stopping=stopping, tick=tick, why=why)


def poll_records(
    consumer: Consumer,
    outages: Outages,
    stop: threading.Event,
    action: str,
    *,
    timeout_s: float,
    max_records: int,
) -> list[Record] | None:
    """One ``consumer.poll``. A retriable Kafka error is an outage (said, then a pause of a
    second, or less when ``stop`` is set): None, and the caller goes round again. Records mean
    the broker answers: a Kafka outage is over. Any other error is raised."""
    try:
        records = consumer.poll(timeout_s, max_records)
    except KafkaError as exc:
        if not exc.retriable:
            raise KafkaError(f"{action}: {exc}", retriable=False) from exc
        outages.down("kafka", exc)
        stop.wait(1.0)
        return None
    if records and outages.is_down("kafka"):
        outages.up("kafka")
    return records
