"""What each kind of route is sent: Alertmanager alerts, a signed webhook notification, a Slack
message; one body per notification (some changes of one incident).

Every notification has an id that derives from the route, the incident and the changes it
carries, so the same notification sent again (a retry, a notifier that restarted) carries the same
id: a webhook receiver drops a repeated ``Idempotency-Key``, Alertmanager merges alerts with equal
labels by itself.

A webhook body is signed when the route has a secret: ``X-Driftline-Signature: sha256=HEX``, the
HMAC-SHA256 of the exact body bytes with the secret (as GitHub signs its webhooks). A receiver
checks it with ``hmac.compare_digest``:

>>> sign(b"s3cret", b'{"v":1}')
'sha256=eb6bf20f7e53305e057307c29823ebf873cdcf01f3b5ef6372541fbe48fd934a'
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from services.notify.incidents import Incident, Member, settles_when_sent
from services.notify.routes import Route
from shared.core.cloudevents import rfc3339
from shared.core.messages import DriftAlert

NAMESPACE = uuid.UUID("3d0a4c1e-8f77-4f8e-b1a2-5c9d8e6f7a20")
"""Of notification ids (uuid5 of the route, the incident and its changes)."""
SETTLED_FOR_MS = 3_600_000
"""How long Alertmanager shows an alert that never resolves (a failed model load) as firing."""
SLACK_LINES = 20
"""Changes listed one per line in a Slack message; the rest are counted."""
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}
SEVERITY_ICONS = {"info": ":large_blue_circle:", "warning": ":large_orange_circle:"}


@dataclass(frozen=True)
class Body:
    """A request body with its headers, ready to POST."""

    data: bytes
    headers: dict[str, str]


def notification_id(route: Route, incident: Incident, keys: Iterable[str]) -> str:
    joined = ",".join(sorted(keys))
    return str(uuid.uuid5(NAMESPACE, f"{route.name}/{incident.incident_id}/{joined}"))


def sign(secret: bytes, data: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``data`` with ``secret``."""
    return "sha256=" + hmac.new(secret, data, hashlib.sha256).hexdigest()


def render(
    route: Route,
    incident: Incident,
    changes: Sequence[Member],
    *,
    deployment: str,
    notification: str,
) -> Body:
    """The body ``route`` is sent for ``changes`` of ``incident``."""
    if route.kind == "alertmanager":
        return alertmanager_body(changes, incident, deployment)
    if route.kind == "slack":
        text = slack_text(incident, changes, deployment)
        return Body(_json({"text": text}), {"Content-Type": "application/json"})
    data = _json(webhook_notification(incident, changes, deployment, notification))
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": notification,
        "X-Driftline-Notification": notification,
        "X-Driftline-Incident": incident.incident_id,
    }
    if route.secret is not None:
        headers["X-Driftline-Signature"] = sign(route.secret, data)
    return Body(data, headers)


def alertmanager_body(changes: Iterable[Member], incident: Incident, deployment: str) -> Body:
    """Alertmanager's ``POST /api/v2/alerts`` body: one alert per member, labelled so that
    ``group_by: [incident]`` gathers an incident into one notification."""
    alerts = [alertmanager_alert(m, incident, deployment) for m in changes]
    return Body(_json(alerts), {"Content-Type": "application/json"})


def alertmanager_alert(member: Member, incident: Incident, deployment: str) -> dict[str, Any]:
    """One Alertmanager alert. Its times are the notifier's wall clock (Alertmanager compares
    them with its own): when the firing was read, and when the resolution was (``endsAt``); an
    alert that never resolves ends an hour after it fired."""
    alert = member.alert
    labels = {
        "alertname": "Driftline" + "".join(p.capitalize() for p in alert.kind.split("_")),
        "deployment": deployment,
        "model": alert.model,
        "version": str(alert.version),
        "kind": alert.kind,
        "severity": alert.severity,
        "detector": alert.detector,
        "incident": incident.incident_id,
    }
    if alert.feature is not None:
        labels["feature"] = alert.feature
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": alert.message,
            "description": evidence(alert),
            "alert_id": alert.alert_id,
            "event_time": rfc3339(alert.ts),
        },
        "startsAt": rfc3339(member.fired_ms),
    }
    if member.resolved_ms is not None:
        body["endsAt"] = rfc3339(max(member.resolved_ms, member.fired_ms))
    elif settles_when_sent(alert):
        body["endsAt"] = rfc3339(member.fired_ms + SETTLED_FOR_MS)
    return body


def evidence(alert: DriftAlert) -> str:
    """The statistic against its threshold, in a few words.

    >>> from services.notify.incidents import _alert
    >>> evidence(_alert("a", "amount"))
    'psi 0.4 against 0.2 over 500'
    """
    return (
        f"{alert.detector} {alert.statistic:.4g} against {alert.threshold:.4g} over {alert.window}"
    )


def headline(incident: Incident, deployment: str) -> str:
    """What the incident is, in one line: its version, how many alerts fire, of what.

    >>> from services.notify.incidents import IncidentBook, _alert
    >>> book = IncidentBook(group_wait_ms=0)
    >>> for n, name in enumerate(["amount", "age", "zip"]):
    ...     incident = book.apply(_alert(f"a{n}", name), partition=0, offset=n, now_ms=0)
    >>> headline(incident, "prod")
    'prod: churn v3, 3 alerts firing: data drift on 3 features (age, amount, zip)'
    """
    firing = incident.firing
    where = f"{deployment}: {incident.model} v{incident.version}"
    if not firing:
        return f"{where}, resolved: all {len(incident.members)} alerts are over"
    kinds: dict[str, list[str]] = {}
    for member in firing:
        kinds.setdefault(member.alert.kind, []).append(member.alert.feature or "")
    parts = []
    for kind, features in sorted(kinds.items()):
        named = sorted(f for f in features if f)
        words = kind.replace("_", " ")
        if named:
            shown = ", ".join(named[:8]) + (
                f", and {len(named) - 8} more" if len(named) > 8 else ""
            )
            noun = "feature" if len(named) == 1 else "features"
            parts.append(f"{words} on {len(named)} {noun} ({shown})")
        else:
            parts.append(words)
    count = f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing"
    return f"{where}, {count}: " + "; ".join(parts)


def slack_text(incident: Incident, changes: Sequence[Member], deployment: str) -> str:
    """A Slack (or Mattermost, Rocket.Chat) message: the headline, then a line per change."""
    worst = max(
        (m.alert.severity for m in incident.firing),
        key=lambda severity: SEVERITY_ORDER[severity],
        default=None,
    )
    icon = ":white_check_mark:" if worst is None else SEVERITY_ICONS.get(worst, ":red_circle:")
    lines = [f"{icon} *{_escape(headline(incident, deployment))}*"]
    for member in changes[:SLACK_LINES]:
        alert = member.alert
        about = alert.kind + (f" `{_escape(alert.feature)}`" if alert.feature else "")
        lines.append(
            f"• {alert.state} {alert.severity} {about}: {_escape(alert.message[:300])} "
            f"({_escape(evidence(alert))})"
        )
    if len(changes) > SLACK_LINES:
        lines.append(f"… and {len(changes) - SLACK_LINES} more changes")
    lines.append(f"incident `{incident.incident_id}`")
    return "\n".join(lines)


def webhook_notification(
    incident: Incident, changes: Sequence[Member], deployment: str, notification: str
) -> dict[str, Any]:
    """A webhook's JSON body: the incident now, and the changes this notification carries."""
    firing = incident.firing
    return {
        "v": 1,
        "notification_id": notification,
        "incident_id": incident.incident_id,
        "deployment": deployment,
        "model": incident.model,
        "version": incident.version,
        "state": "firing" if firing else "resolved",
        "opened": rfc3339(incident.opened_ms),
        "summary": headline(incident, deployment),
        "firing": sorted(m.alert.alert_id for m in firing),
        "features": sorted({m.alert.feature for m in firing if m.alert.feature is not None}),
        "changes": [{"change": m.key, **msgspec.to_builtins(m.alert)} for m in changes],
    }


def _escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)
