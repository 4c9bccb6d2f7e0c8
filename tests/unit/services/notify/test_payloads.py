"""What each kind of route is sent: Alertmanager's alerts, a signed webhook body, a Slack text."""

from __future__ import annotations

import hashlib
import hmac
import json

from services.notify.incidents import IncidentBook, _alert
from services.notify.payloads import notification_id, render
from services.notify.routes import Route

AM = Route("am", "alertmanager", "http://am:9093")
HOOK = Route("hook", "webhook", "http://hook", secret=b"key")
SLACK = Route("chat", "slack", "http://chat")


def _incident(resolved: bool = False):  # type: ignore[no-untyped-def]
    book = IncidentBook(group_wait_ms=0)
    incident = book.apply(_alert("a1", "amount"), partition=0, offset=4, now_ms=1_000)
    book.apply(_alert("a2", "<b>&"), partition=0, offset=5, now_ms=1_500)
    if resolved:
        book.apply(_alert("a1", "amount", state="resolved"), partition=0, offset=6, now_ms=9_000)
    assert incident is not None
    return incident


def test_alertmanager_gets_labelled_alerts_with_wall_clock_times_and_ends_on_resolution() -> None:
    incident = _incident(resolved=True)
    body = render(
        AM, incident, list(incident.members.values()), deployment="prod", notification="n"
    )
    sent = {a["annotations"]["alert_id"]: a for a in json.loads(body.data)}
    resolved, firing = sent["a1"], sent["a2"]
    assert resolved["labels"] == {
        "alertname": "DriftlineDataDrift",
        "deployment": "prod",
        "model": "churn",
        "version": "3",
        "kind": "data_drift",
        "severity": "warning",
        "detector": "psi",
        "incident": incident.incident_id,
        "feature": "amount",
    }
    assert resolved["startsAt"] == "1970-01-01T00:00:01.000Z"
    assert resolved["endsAt"] == "1970-01-01T00:00:09.000Z"
    assert "endsAt" not in firing
    assert resolved["annotations"]["summary"] == "amount drifted"


def test_a_webhook_body_is_signed_and_its_id_is_the_same_for_the_same_changes() -> None:
    incident = _incident()
    changes = list(incident.members.values())
    keys = [m.key for m in changes]
    ident = notification_id(HOOK, incident, keys)
    assert ident == notification_id(HOOK, incident, list(reversed(keys)))
    assert ident != notification_id(SLACK, incident, keys)
    assert ident != notification_id(HOOK, incident, keys[:1])
    body = render(HOOK, incident, changes, deployment="prod", notification=ident)
    mac = hmac.new(b"key", body.data, hashlib.sha256).hexdigest()
    assert body.headers["X-Driftline-Signature"] == f"sha256={mac}"
    assert body.headers["Idempotency-Key"] == ident
    data = json.loads(body.data)
    assert data["state"] == "firing" and data["features"] == ["<b>&", "amount"]
    assert [c["change"] for c in data["changes"]] == ["a1/firing", "a2/firing"]
    unsigned = render(
        Route("h", "webhook", "http://h"), incident, changes, deployment="p", notification=ident
    )
    assert "X-Driftline-Signature" not in unsigned.headers


def test_slack_text_escapes_its_control_characters_and_says_resolved() -> None:
    incident = _incident()
    text = json.loads(
        render(
            SLACK, incident, list(incident.members.values()), deployment="prod", notification="n"
        ).data
    )["text"]
    assert "&lt;b&gt;&amp;" in text and "<b>" not in text
    assert text.startswith(":large_orange_circle: *prod: churn v3, 2 alerts firing")
    over = _incident(resolved=True)
    book = IncidentBook(group_wait_ms=0)
    book.adopt([over])
    book.apply(_alert("a2", "<b>&", state="resolved"), partition=0, offset=7, now_ms=9_500)
    text = json.loads(render(SLACK, over, [], deployment="prod", notification="n").data)["text"]
    assert text.startswith(":white_check_mark: *prod: churn v3, resolved")
