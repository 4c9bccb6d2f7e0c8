"""Incidents: the alerts of one cause, grouped, and what each route has been told of them.

One upstream change makes many alerts at once (ten drifting features, the predictions drifting
with them, then the error): paging each is twelve pages for one cause. An incident groups the
alerts of one model version that fire together. The first firing alert of a version opens one;
every alert of that version joins it while any of its members still fires (or within the group
wait of its opening); it is over when all have resolved. A route hears of an incident once its
group wait has passed (so the first notification carries the burst), then of its changes at most
once per group interval, each change (an alert firing, an alert resolving) exactly once.

A change is named by its alert's id and state, ``ALERT_ID/STATE`` (the alert record's CloudEvents
``ce_id``): what a route was given is a set of those, so a replayed alert changes nothing.

>>> book = IncidentBook(group_wait_ms=1_000)
>>> first = book.apply(_alert("a1", "amount"), partition=0, offset=0, now_ms=0)
>>> second = book.apply(_alert("a2", "age"), partition=0, offset=1, now_ms=10)
>>> first is second, sorted(first.members)
(True, ['a1', 'a2'])
>>> book.apply(_alert("a2", "age"), partition=0, offset=1, now_ms=20) is None  # a replay
True
>>> route = Route("hook", "webhook", "http://hook")
>>> book.due([route], now_ms=500, group_interval_ms=5_000)  # within the group wait
[]
>>> [(d.route.name, [m.key for m in d.changes]) for d in book.due([route], now_ms=1_000, group_interval_ms=5_000)]
[('hook', ['a1/firing', 'a2/firing'])]
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from services.notify.routes import Route
from shared.core.messages import DriftAlert

NAMESPACE = uuid.UUID("0b8f5a5e-4d2b-4f57-9a38-8a1e3c2b7d41")
"""Of incident ids (uuid5 of the model, version and first alert id): a replay rebuilds the same."""


def change_key(alert: DriftAlert) -> str:
    """The change an alert record is: its id and state (its CloudEvents ``ce_id``)."""
    return f"{alert.alert_id}/{alert.state}"


def settles_when_sent(alert: DriftAlert) -> bool:
    """Whether a firing alert is news only (it never resolves): a model version that failed to
    load, a feature no schema knows, a misrouted record. Such an alert keeps no incident open.

    >>> settles_when_sent(_alert("a", None, kind="model_load"))
    True
    """
    return alert.kind == "model_load" or alert.detector in ("predictor:unknown", "partitioner")


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """One alert of an incident, in its latest state, with where its record is (for a dead
    letter) and when the notifier read it (Alertmanager's times are wall-clock times)."""

    alert: DriftAlert
    partition: int
    offset: int
    fired_ms: int
    """When its firing (or, never seen firing, its resolution) was read: wall-clock ms."""
    resolved_ms: int | None = None

    @property
    def key(self) -> str:
        return change_key(self.alert)

    @property
    def firing(self) -> bool:
        return self.alert.state == "firing" and not settles_when_sent(self.alert)


class Incident(msgspec.Struct, kw_only=True):
    """The alerts of one cause; ``sent`` holds, per route, the changes handed to the outbox (or
    found delivered already), ``sent_ms`` when the route was last sent one."""

    incident_id: str
    partition: int
    model: str
    version: int
    opened_ms: int
    members: dict[str, Member] = {}
    sent: dict[str, list[str]] = {}
    sent_ms: dict[str, int] = {}
    failed: dict[str, list[str]] = {}
    """Per route, changes whose notification failed for good (dead-lettered): not sent again
    until their alert record is read again (``driftline dlq replay``)."""

    @property
    def firing(self) -> list[Member]:
        return [m for m in self.members.values() if m.firing]

    def accepting(self, now_ms: int, group_wait_ms: int) -> bool:
        """Whether a new alert of its version joins it: a member fires, or it opened within the
        group wait."""
        return bool(self.firing) or now_ms - self.opened_ms < group_wait_ms

    def give_up(self, route: str, changes: Iterable[str]) -> None:
        """Their notification to ``route`` failed for good: not sent, not sent again for now."""
        gone = set(changes)
        self.sent[route] = [c for c in self.sent.get(route, ()) if c not in gone]
        self.failed.setdefault(route, []).extend(sorted(gone))

    def retry(self, change: str) -> bool:
        """``change`` was read again: a route it failed for is to be sent it again. Whether
        any was."""
        again = False
        for failed in self.failed.values():
            if change in failed:
                failed.remove(change)
                again = True
        return again

    def unsent(self, route: Route) -> list[Member]:
        """The changes ``route`` wants and has not been given, oldest alert first."""
        given = set(self.sent.get(route.name, ())) | set(self.failed.get(route.name, ()))
        return [
            m
            for m in sorted(self.members.values(), key=lambda m: (m.offset, m.alert.alert_id))
            if m.key not in given and route.wants_alert(m.alert)
        ]


@dataclass(frozen=True)
class Due:
    """Changes of one incident that one route is to be told now."""

    route: Route
    incident: Incident
    changes: list[Member]


class IncidentBook:
    """The incidents of the partitions this notifier owns."""

    def __init__(self, *, group_wait_ms: int) -> None:
        self.group_wait_ms = group_wait_ms
        self.incidents: dict[str, Incident] = {}

    def adopt(self, incidents: Iterable[Incident]) -> None:
        """Take over incidents saved by an earlier owner of their partitions."""
        for incident in incidents:
            self.incidents[incident.incident_id] = incident

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the incidents of partitions this notifier no longer owns."""
        gone = set(partitions)
        self.incidents = {k: i for k, i in self.incidents.items() if i.partition not in gone}

    def apply(
        self,
        alert: DriftAlert,
        *,
        partition: int,
        offset: int,
        now_ms: int,
        delivered: Iterable[str] = (),
    ) -> Incident | None:
        """Fold one alert record in; the incident it changed, None for a record that changes
        nothing (a replay, a firing after its resolution). ``delivered`` names the routes that
        were given this change already (before a restart): they are not given it again."""
        found = self._holding(alert.alert_id)
        if found is not None:
            member = found.members[alert.alert_id]
            if member.alert.state == alert.state:
                return found if found.retry(change_key(alert)) else None  # read again
            if member.alert.state == "resolved":
                return None  # resolved is final: ids are per episode
            found.members[alert.alert_id] = Member(
                alert=alert,
                partition=partition,
                offset=offset,
                fired_ms=member.fired_ms,
                resolved_ms=now_ms,
            )
            incident = found
        else:
            incident = self._open_for(alert, partition, now_ms)
            incident.members[alert.alert_id] = Member(
                alert=alert,
                partition=partition,
                offset=offset,
                fired_ms=now_ms,
                resolved_ms=now_ms if alert.state == "resolved" else None,
            )
        for route in delivered:
            incident.sent.setdefault(route, []).append(change_key(alert))
        return incident

    def _holding(self, alert_id: str) -> Incident | None:
        for incident in self.incidents.values():
            if alert_id in incident.members:
                return incident
        return None

    def _open_for(self, alert: DriftAlert, partition: int, now_ms: int) -> Incident:
        if alert.state == "firing":
            for incident in self.incidents.values():
                if (
                    (incident.model, incident.version) == (alert.model, alert.version)
                    and incident.partition == partition
                    and incident.accepting(now_ms, self.group_wait_ms)
                ):
                    return incident
        incident_id = str(uuid.uuid5(NAMESPACE, f"{alert.model}/{alert.version}/{alert.alert_id}"))
        incident = Incident(
            incident_id=incident_id,
            partition=partition,
            model=alert.model,
            version=alert.version,
            opened_ms=now_ms,
        )
        self.incidents[incident_id] = incident
        return incident

    def due(self, routes: Iterable[Route], *, now_ms: int, group_interval_ms: int) -> list[Due]:
        """What each route is to be told now: an incident's first changes once its group wait
        has passed, later ones once the group interval has passed since the route's last."""
        found = []
        for incident in self.incidents.values():
            for route in routes:
                changes = incident.unsent(route)
                if not changes:
                    continue
                last = incident.sent_ms.get(route.name)
                waited = (
                    now_ms - incident.opened_ms >= self.group_wait_ms
                    if last is None
                    else now_ms - last >= group_interval_ms
                )
                if waited:
                    found.append(Due(route, incident, changes))
        return found

    def mark_sent(self, due: Due, now_ms: int) -> None:
        given = due.incident.sent.setdefault(due.route.name, [])
        given.extend(m.key for m in due.changes)
        due.incident.sent_ms[due.route.name] = now_ms

    def finished(self, routes: Iterable[Route], now_ms: int) -> list[Incident]:
        """Incidents over and told in full to every route: nothing fires, nothing is unsent."""
        routes = list(routes)
        return [
            incident
            for incident in self.incidents.values()
            if not incident.accepting(now_ms, self.group_wait_ms)
            and not any(incident.unsent(route) for route in routes)
        ]

    def forget(self, incident: Incident) -> None:
        self.incidents.pop(incident.incident_id, None)


def _alert(
    alert_id: str, feature: str | None, *, state: str = "firing", kind: str = "data_drift"
) -> DriftAlert:
    """An alert for the examples above."""
    return msgspec.convert(
        {
            "alert_id": alert_id,
            "ts": 0,
            "model": "churn",
            "version": 3,
            "kind": kind,
            "state": state,
            "detector": "psi",
            "feature": feature,
            "statistic": 0.4,
            "threshold": 0.2,
            "window": 500,
            "severity": "warning",
            "message": f"{feature} drifted",
        },
        DriftAlert,
    )
