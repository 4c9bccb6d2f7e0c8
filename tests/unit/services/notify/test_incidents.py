"""Incidents: one cause is one incident, each change is told once, in the order of the timers."""

from __future__ import annotations

import msgspec

from services.notify.incidents import IncidentBook, _alert
from services.notify.routes import Route
from shared.core.messages import DriftAlert

HOOK = Route("hook", "webhook", "http://hook")
CRITICAL = Route("pager", "slack", "http://pager", severities=frozenset({"critical"}))
WAIT, INTERVAL = 1_000, 5_000


def _keys(book: IncidentBook, now: int, routes: list[Route] | None = None) -> dict[str, list[str]]:
    """What each route is due now, marked sent as the notifier does."""
    told: dict[str, list[str]] = {}
    for due in book.due(routes or [HOOK], now_ms=now, group_interval_ms=INTERVAL):
        told.setdefault(due.route.name, []).extend(m.key for m in due.changes)
        book.mark_sent(due, now)
    return told


def test_a_burst_is_one_incident_told_after_the_wait_then_its_changes_after_the_interval() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    for n in range(10):
        book.apply(_alert(f"a{n}", f"f{n}"), partition=0, offset=n, now_ms=n * 10)
    assert len(book.incidents) == 1
    assert _keys(book, 999) == {}
    assert _keys(book, 1_000) == {"hook": [f"a{n}/firing" for n in range(10)]}
    book.apply(_alert("a0", "f0", state="resolved"), partition=0, offset=20, now_ms=1_100)
    book.apply(_alert("a10", None, kind="concept_drift"), partition=0, offset=21, now_ms=1_200)
    assert _keys(book, 5_999) == {}  # the interval since the last notification
    assert _keys(book, 6_000) == {"hook": ["a0/resolved", "a10/firing"]}
    assert _keys(book, 20_000) == {}  # nothing new


def test_replays_change_nothing_and_resolved_is_final() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    assert book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=0) is not None
    assert book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=5) is None
    assert book.apply(_alert("a1", "x", state="resolved"), partition=0, offset=1, now_ms=6)
    assert book.apply(_alert("a1", "x", state="resolved"), partition=0, offset=1, now_ms=7) is None
    assert book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=8) is None


def test_a_firing_after_everything_resolved_opens_a_new_incident() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    first = book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=0)
    book.apply(_alert("a1", "x", state="resolved"), partition=0, offset=1, now_ms=2_000)
    later = book.apply(_alert("a2", "x"), partition=0, offset=2, now_ms=3_000)
    assert first is not None and later is not None and first is not later
    assert first.incident_id != later.incident_id


def test_an_alert_that_never_resolves_keeps_no_incident_open() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    book.apply(_alert("load", None, kind="model_load"), partition=0, offset=0, now_ms=0)
    assert book.finished([HOOK], 2_000) == []  # not yet told
    _keys(book, 2_000)
    [done] = book.finished([HOOK], 2_000)
    book.forget(done)
    assert book.incidents == {}


def test_each_route_is_told_what_it_wants_and_a_delivered_change_is_not_told_again() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=0)  # a warning
    # a critical one, told to the webhook before a restart
    book.apply(_critical("a2"), partition=0, offset=1, now_ms=0, delivered=["hook"])
    assert _keys(book, 1_000, [HOOK, CRITICAL]) == {"hook": ["a1/firing"], "pager": ["a2/firing"]}


def test_partitions_revoked_are_forgotten_and_adopted_ones_kept() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=0)
    kept = list(book.incidents.values())
    book.drop([0])
    assert book.incidents == {}
    book.adopt(kept)
    assert book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=1) is None


def _critical(alert_id: str) -> DriftAlert:
    return msgspec.structs.replace(
        _alert(alert_id, None, kind="concept_drift"), severity="critical"
    )


def test_a_change_that_failed_is_sent_again_only_when_its_record_is_read_again() -> None:
    book = IncidentBook(group_wait_ms=WAIT)
    incident = book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=0)
    assert incident is not None
    assert _keys(book, 1_000) == {"hook": ["a1/firing"]}
    incident.give_up("hook", ["a1/firing"])  # its notification was dead-lettered
    assert _keys(book, 60_000) == {}
    assert book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=61_000) is incident
    assert _keys(book, 70_000) == {"hook": ["a1/firing"]}
    assert book.apply(_alert("a1", "x"), partition=0, offset=0, now_ms=71_000) is None
