"""The notifier's loop: read alerts, fold them into incidents, stage and send notifications.

Each round it

1. polls ``alerts``; an undecodable record is dead-lettered (reason ``bad_record``), each alert is
   folded into its incident (:class:`~services.notify.incidents.IncidentBook`), the changed
   incidents are written to Redis, the dead letters flushed, and only then the offsets committed;
2. collects what the route threads delivered or gave up on: delivered notifications leave the
   outbox, failed ones dead-letter each alert they carried with the reason;
3. stages what is due (group wait and interval) in the outbox and hands it to its route's thread;
4. forgets incidents that are over and told in full, and re-posts what fires to Alertmanager
   every ``resend_s`` (Alertmanager ends an alert nobody re-posts after its resolve timeout).

Redis away: the round's records are read again once it answers (folding is idempotent), nothing
is committed meanwhile, and readiness says so. Kafka away: polls wait it out.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import msgspec

from services.notify.delivery import Result, Sender
from services.notify.incidents import Due, Incident, IncidentBook, change_key
from services.notify.metrics import NotifyMetrics
from services.notify.outbox import Entry, NotifyStore
from services.notify.payloads import (
    alertmanager_body,
    notification_id,
    render,
)
from services.notify.routes import Route
from shared.core.clock import now_ms
from shared.core.errors import BadMessage, KafkaError, RedisError
from shared.core.messages import DEFAULT_MAX_BYTES, DriftAlert
from shared.io.kafka import DeadLetterWriter
from shared.io.transport import TP, Consumer, Producer, Record, first_offsets, next_offsets
from shared.runtime.outage import ATTEMPT_S, Outages, hand_over, poll_records

log = logging.getLogger(__name__)

STATUS_EVERY_S = 2.0
"""How often the notifier publishes its status for `driftline status`."""
RESEND_S = 60.0
"""How often what fires is re-posted to Alertmanager routes (Prometheus re-sends each minute)."""


class Notifier:
    """Alerts in, notifications out, for the ``alerts`` partitions this member owns."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        producer: Producer,
        topic: str,
        store: NotifyStore,
        routes: Sequence[Route],
        senders: dict[str, Sender],
        results: queue.Queue[Result],
        dead_letters: DeadLetterWriter,
        metrics: NotifyMetrics,
        deployment: str,
        group_wait_s: float,
        group_interval_s: float,
        resend_s: float = RESEND_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock_ms: Callable[[], int] = now_ms,
        publish_status: Callable[[Notifier], None] = lambda notifier: None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._topic = topic
        self._store = store
        self.routes = list(routes)
        self._senders = senders
        self._results = results
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._deployment = deployment
        self._group_interval_ms = int(group_interval_s * 1000)
        self._resend_s = resend_s
        self._max_bytes = max_bytes
        self._clock_ms = clock_ms
        self.book = IncidentBook(group_wait_ms=int(group_wait_s * 1000))
        self.outages = Outages()
        self.stopping = threading.Event()
        self.last_loop = time.monotonic()
        self.owned: set[int] = set()
        self._unfinished: list[Result] = []
        self._unsaved: dict[str, Incident] = {}
        """Incidents changed by records whose save failed: the records are read again, fold
        into nothing new, and these are saved before their offsets are committed."""
        self._resent_at = time.monotonic()
        self._subscribed = False
        self._publish_status = publish_status
        self._published_at = 0.0

    # ---- the loop -------------------------------------------------------------------------

    def run(self, timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._consumer.subscribe([self._topic], on_assign=self._assigned, on_revoke=self._revoked)
        self._subscribed = True
        while not self.stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.last_loop = time.monotonic()
            records = poll_records(
                self._consumer,
                self.outages,
                self.stopping,
                "polling alerts",
                timeout_s=0.2,
                max_records=500,
            )
            self._metrics.consumer_lag.update(self._consumer)
            if records:
                self._fold(records)
            try:
                self._collect()
                self._stage_due()
                self._finish()
                self._refresh_alertmanager()
            except RedisError as exc:
                self.outages.down("redis", exc)
                self.stopping.wait(1.0)
                continue
            self.outages.up("redis")
            self._gauges()
            if time.monotonic() - self._published_at >= STATUS_EVERY_S:
                self._published_at = time.monotonic()
                self._publish_status(self)

    def stop(self) -> None:
        self.stopping.set()

    def failing(self) -> dict[str, str]:
        """Why each failing route's last attempt failed."""
        return {n: s.failing for n, s in self._senders.items() if s.failing is not None}

    def backlog(self, route: str) -> int:
        return self._senders[route].backlog()

    def readiness(self) -> tuple[bool, str]:
        down = self.outages.readiness()
        if down is not None:
            return down
        if not self._subscribed:
            return False, "starting: not yet subscribed to alerts"
        failing = [f"{name}: {why}" for name, why in self.failing().items()]
        owned = (
            f"owns alerts partitions {sorted(self.owned)}"
            if self.owned
            else "standing by (another member owns the alerts partitions)"
        )
        routes = f"{len(self.routes)} route(s)"
        if failing:
            return True, f"{owned}, {routes}; failing, retrying: " + "; ".join(failing)
        return True, f"{owned}, {routes}"

    # ---- 1. alert records into incidents -------------------------------------------------

    def _fold(self, records: list[Record]) -> None:
        decoded: list[tuple[Record, DriftAlert]] = []
        bad: list[tuple[Record, str]] = []
        for record in records:
            try:
                alert = DriftAlert.decode(record.value or b"", max_bytes=self._max_bytes)
            except BadMessage as exc:
                bad.append((record, f"bad_record: {exc}"))
                continue
            decoded.append((record, alert))
        first = first_offsets(records)
        try:
            known = self._store.delivered_to(
                [r.name for r in self.routes], [change_key(a) for _, a in decoded]
            )
            changed = self._unsaved  # with what an earlier round folded and could not save
            now = self._clock_ms()
            for record, alert in decoded:
                key = change_key(alert)
                delivered = [r.name for r in self.routes if (r.name, key) in known]
                incident = self.book.apply(
                    alert,
                    partition=record.partition,
                    offset=record.offset,
                    now_ms=now,
                    delivered=delivered,
                )
                self._metrics.alerts.labels("applied" if incident else "duplicate").inc()
                if incident is not None:
                    changed[incident.incident_id] = incident
            self._store.save(changed.values())
            changed.clear()
        except RedisError as exc:
            # Nothing is committed: read the records again once Redis answers.
            self.outages.down("redis", exc)
            self._rewind(first)
            self.stopping.wait(1.0)
            return
        self.outages.up("redis")
        for record, reason in bad:
            if not self._dead_letter(record, reason, "bad_record"):
                self._rewind(first)  # stopping: read again by the next owner
                return
            self._metrics.alerts.labels("dead").inc()
        if not self._flush():
            self._rewind(first)
            return
        self._commit(next_offsets(records))

    def _rewind(self, first: dict[TP, int]) -> None:
        for tp, offset in first.items():
            if tp.partition in self.owned:
                try:
                    self._consumer.seek(tp, offset)
                except KafkaError as exc:
                    log.warning("cannot rewind %s[%d] (%s)", tp.topic, tp.partition, exc)

    def _flush(self) -> bool:
        """Wait until the dead letters are delivered; False when asked to stop first."""

        def attempt(timeout_s: float) -> bool | str:
            flushed = self._producer.flush(timeout_s)
            if flushed.ok:
                return True
            return "; ".join(why for _, why in flushed.failed) or "dead letters not delivered"

        return self.outages.wait("kafka", attempt, stopping=self.stopping.is_set, tick=self._tick)

    def _commit(self, offsets: dict[TP, int]) -> None:
        owned = {tp: o for tp, o in offsets.items() if tp.partition in self.owned}
        if not owned:
            return
        try:
            self._consumer.commit(owned)
        except KafkaError as exc:  # the incidents in Redis stand: a re-read changes nothing
            log.warning("alerts offset commit failed (%s); the incidents in Redis stand", exc)

    def _dead_letter(self, record: Record, reason: str, label: str) -> bool:
        """Hand a dead letter to the producer, waiting out Kafka; False when asked to stop
        first."""

        def send() -> None:
            self._dead_letters.write(record, reason)

        if hand_over(self.outages, send, stopping=self.stopping.is_set, tick=self._tick):
            self._metrics.dead.labels(label).inc()
            return True
        return False

    def _tick(self) -> None:
        self.last_loop = time.monotonic()

    # ---- 2. what the route threads achieved ----------------------------------------------

    def _collect(self) -> None:
        while True:
            try:
                self._unfinished.append(self._results.get_nowait())
            except queue.Empty:
                break
        while self._unfinished:
            # A RedisError, or a stop before the dead letters are out, leaves it for later (on
            # a stop: in the outbox, for the next owner).
            if not self._settle(self._unfinished[0]):
                return
            self._unfinished.pop(0)

    def _settle(self, result: Result) -> bool:
        """Record what became of a notification; False when its dead letters could not be
        written before a stop (nothing recorded: it stays in the outbox)."""
        entry = result.entry
        route = entry.route
        if not entry.changes:  # an Alertmanager refresh: nothing staged, nothing to settle
            if result.outcome == "failed":
                log.warning("route %s: refresh failed (%s)", route, result.reason)
            return True
        if result.attempts > 1:
            self._metrics.attempts.labels(route).inc(result.attempts - 1)
        if result.outcome == "delivered":
            self._store.delivered(entry)
            self._metrics.delivery_seconds.labels(route).observe(result.seconds)
            log.info(
                "route %s: delivered %d change(s) of incident %s (%d attempt(s))",
                route,
                len(entry.changes),
                entry.incident_id,
                result.attempts,
                extra={"route": route, "incident": entry.incident_id},
            )
        else:
            for offset, alert in entry.alerts:
                record = Record(self._topic, entry.partition, offset, None, alert.encode(), 0)
                if not self._dead_letter(record, f"undelivered: {result.reason}", "undelivered"):
                    return False
            if not self._flush():
                return False
            incident = self.book.incidents.get(entry.incident_id)
            if incident is not None:
                incident.give_up(route, entry.changes)
                self._store.save([incident])
            self._store.given_up(entry)
            log.error(
                "route %s: gave up on %d change(s) of incident %s; dead-lettered: %s",
                route,
                len(entry.changes),
                entry.incident_id,
                result.reason,
            )
        self._metrics.notifications.labels(route, result.outcome).inc()
        return True

    # ---- 3. what is due, staged and sent -------------------------------------------------

    def _stage_due(self) -> None:
        now = self._clock_ms()
        for due in self.book.due(
            self.routes, now_ms=now, group_interval_ms=self._group_interval_ms
        ):
            entry = self._entry(due, now)
            self.book.mark_sent(due, now)
            try:
                self._store.stage(entry, due.incident)
            except RedisError:
                sent = due.incident.sent[due.route.name]
                del sent[len(sent) - len(due.changes) :]  # not staged: due again next round
                raise
            self._send(entry)

    def _entry(self, due: Due, now: int) -> Entry:
        keys = [m.key for m in due.changes]
        notification = notification_id(due.route, due.incident, keys)
        body = render(
            due.route,
            due.incident,
            due.changes,
            deployment=self._deployment,
            notification=notification,
        )
        return Entry(
            notification_id=notification,
            route=due.route.name,
            incident_id=due.incident.incident_id,
            partition=due.incident.partition,
            changes=keys,
            alerts=[(m.offset, msgspec.json.encode(m.alert).decode()) for m in due.changes],
            body=body.data.decode(),
            headers=body.headers,
            created_ms=now,
        )

    def _send(self, entry: Entry) -> None:
        sender = self._senders.get(entry.route)
        if sender is None:  # a route no longer configured: its staged entries fail over to DLQ
            self._results.put(
                Result(entry, "failed", 0, 0.0, f"route {entry.route} is no longer configured")
            )
            return
        sender.submit(entry)

    # ---- 4. finished incidents, Alertmanager's refresh -----------------------------------

    def _finish(self) -> None:
        done = self.book.finished(self.routes, self._clock_ms())
        if not done:
            return
        self._store.save((), gone=done)
        for incident in done:
            self.book.forget(incident)
            log.info(
                "incident %s of %s v%d is over and told",
                incident.incident_id,
                incident.model,
                incident.version,
            )

    def _refresh_alertmanager(self) -> None:
        if time.monotonic() - self._resent_at < self._resend_s:
            return
        self._resent_at = time.monotonic()
        for route in self.routes:
            if route.kind != "alertmanager":
                continue
            for incident in self.book.incidents.values():
                given = set(incident.sent.get(route.name, ()))
                firing = [m for m in incident.firing if m.key in given]
                if not firing:
                    continue
                body = alertmanager_body(firing, incident, self._deployment)
                self._senders[route.name].submit(
                    Entry(
                        notification_id=f"refresh/{incident.incident_id}/{self._resent_at}",
                        route=route.name,
                        incident_id=incident.incident_id,
                        partition=incident.partition,
                        changes=[],
                        alerts=[],
                        body=body.data.decode(),
                        headers=body.headers,
                        created_ms=self._clock_ms(),
                    )
                )

    def _gauges(self) -> None:
        self._metrics.incidents.set(len(self.book.incidents))
        for route in self.routes:
            self._metrics.outbox.labels(route.name).set(self._senders[route.name].backlog())

    # ---- partitions ------------------------------------------------------------------------

    def _assigned(self, partitions: list[TP]) -> None:
        for tp in partitions:
            while True:
                try:
                    incidents, entries = self._store.load(tp.partition)
                    break
                except RedisError as exc:
                    self.outages.down("redis", exc)
                    if self.stopping.wait(ATTEMPT_S / 5):
                        return
            self.outages.up("redis")
            self.owned.add(tp.partition)
            self.book.adopt(incidents)
            for entry in entries:
                self._send(entry)
            log.info(
                "alerts partition %d assigned: %d incident(s), %d notification(s) to deliver",
                tp.partition,
                len(incidents),
                len(entries),
            )

    def _revoked(self, partitions: list[TP]) -> None:
        gone = {tp.partition for tp in partitions}
        self.owned -= gone
        self.book.drop(gone)
        self._unsaved = {k: i for k, i in self._unsaved.items() if i.partition not in gone}
        log.info("alerts partitions %s revoked", sorted(gone))
