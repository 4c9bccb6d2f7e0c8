"""Delivery: one thread per route POSTs its notifications in order, retrying with backoff.

A route's thread never blocks another route's: an endpoint that is down, slow or refusing holds
up only its own queue. Each attempt waits at most the HTTP timeout; a failed attempt that may
succeed later (no answer, a timeout, 408, 429, 5xx) is retried after a doubling pause (from 1 s,
at most 60 s) until the notification is ``retry_for_s`` old; an answer that will not change
(another 4xx: the endpoint refuses the body or the URL is wrong) fails at once. Either way the
loop is told (:class:`Result`), and dead-letters what could not be delivered.

The HTTP client is the standard library's ``urllib.request``: one small POST per notification
needs no connection pool, and it keeps driftline's dependencies to what it must have.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Literal

from services.notify.outbox import Entry
from services.notify.routes import Route
from shared.runtime.outage import backoff_s

log = logging.getLogger(__name__)

USER_AGENT = "driftline-notify"
RETRIABLE_STATUS = {408, 425, 429}


@dataclass(frozen=True)
class Attempt:
    """What one POST achieved."""

    ok: bool
    reason: str
    retriable: bool
    status: int | None = None


@dataclass(frozen=True)
class Result:
    """What became of a notification: delivered, or failed for good, with why."""

    entry: Entry
    outcome: Literal["delivered", "failed"]
    attempts: int
    seconds: float
    reason: str = ""


def post(url: str, data: bytes, headers: dict[str, str], timeout_s: float) -> Attempt:
    """One POST of ``data``; never raises."""
    request = urllib.request.Request(  # noqa: S310 (http or https: the routes check their URLs)
        url, data=data, method="POST", headers={"User-Agent": USER_AGENT, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            answer.read(65_536)
            return Attempt(True, f"HTTP {answer.status}", False, answer.status)
    except urllib.error.HTTPError as exc:
        said = exc.read(300).decode("utf-8", "replace").strip()
        reason = f"HTTP {exc.code} {exc.reason}" + (f": {said}" if said else "")
        retriable = exc.code >= 500 or exc.code in RETRIABLE_STATUS
        return Attempt(False, reason, retriable, exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        return Attempt(False, f"no answer: {why}", True)


class Sender:
    """The delivery thread of one route."""

    def __init__(
        self,
        route: Route,
        results: queue.Queue[Result],
        *,
        timeout_s: float,
        retry_for_s: float,
        stopping: threading.Event,
    ) -> None:
        self.route = route
        self._results = results
        self._timeout_s = timeout_s
        self._retry_for_s = retry_for_s
        self._stopping = stopping
        self._queue: queue.Queue[Entry | None] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self.failing: str | None = None
        """Why the last attempt failed, while the route is failing (for readiness and status)."""
        self._thread = threading.Thread(target=self._run, name=f"notify-{route.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, entry: Entry) -> None:
        """Queue ``entry`` (once: an entry queued already is not queued again)."""
        with self._lock:
            if entry.notification_id in self._queued:
                return
            self._queued.add(entry.notification_id)
        self._queue.put(entry)

    def backlog(self) -> int:
        with self._lock:
            return len(self._queued)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the attempt in hand (what is left stays in the outbox)."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stopping.is_set():
            entry = self._queue.get()
            if entry is None:
                return
            result = self._deliver(entry)
            with self._lock:
                self._queued.discard(entry.notification_id)
            if result is not None:
                self._results.put(result)

    def _deliver(self, entry: Entry) -> Result | None:
        """POST until delivered or given up; None when asked to stop first (it stays queued in
        the outbox for whoever runs next)."""
        started = time.monotonic()
        attempt = 0
        data = entry.body.encode()
        while True:
            attempt += 1
            headers = {**entry.headers, "X-Driftline-Attempt": str(attempt)}
            said = post(self.route.endpoint, data, headers, self._timeout_s)
            elapsed = time.monotonic() - started
            if said.ok:
                if self.failing is not None:
                    log.info("route %s delivers again (%s)", self.route.describe(), said.reason)
                self.failing = None
                return Result(entry, "delivered", attempt, elapsed)
            self.failing = said.reason
            age_s = time.time() - entry.created_ms / 1000
            pause = backoff_s(attempt - 1, first_s=1.0, most_s=60.0)
            if not entry.changes:  # Alertmanager's refresh of what fires: the next one retries
                return Result(entry, "failed", attempt, elapsed, said.reason)
            if not said.retriable or age_s + pause > self._retry_for_s:
                why = (
                    f"route {self.route.describe()}: {attempt} attempt(s) over {elapsed:.0f} s, "
                    f"{'the endpoint refused it' if not said.retriable else 'retries exhausted'}; "
                    f"last: {said.reason}"
                )
                return Result(entry, "failed", attempt, elapsed, why)
            log.warning(
                "route %s: attempt %d failed (%s); retrying in %.0f s",
                self.route.describe(),
                attempt,
                said.reason,
                pause,
            )
            if self._stopping.wait(pause):
                return None
