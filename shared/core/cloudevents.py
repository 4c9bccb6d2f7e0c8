"""CloudEvents 1.0 attributes of driftline's alert records, as Kafka headers (binary content mode).

The CloudEvents Kafka protocol binding carries an event's attributes as ``ce_``-prefixed headers
and its data as the record's value, with ``content-type`` for the data's media type. Every alert
record driftline writes carries them, so any CloudEvents-aware consumer (Knative, Argo Events, an
SDK's Kafka binding) reads ``alerts`` without knowing driftline's schema first:

>>> alert = DriftAlert(alert_id="a1", ts=0, model="churn", version=3, kind="data_drift",
...                    detector="psi", feature="amount", statistic=0.4, threshold=0.2, window=500,
...                    severity="warning", message="amount drifted")
>>> dict(alert_headers(alert, deployment="driftline", service="monitor"))  # doctest: +NORMALIZE_WHITESPACE
{'ce_specversion': b'1.0', 'ce_id': b'a1/firing', 'ce_source': b'/driftline/driftline/monitor/churn',
 'ce_type': b'io.driftline.alert.firing', 'ce_time': b'1970-01-01T00:00:00.000Z',
 'ce_subject': b'churn/v3/data_drift/amount', 'content-type': b'application/json'}

``ce_id`` is unique per source: an alert's id with its state, since one alert fires and later
resolves under the same ``alert_id``; a replayed alert keeps its ``ce_id``, so it can be dropped
as a duplicate.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.messages import DriftAlert

SPEC_VERSION = "1.0"
TYPE_PREFIX = "io.driftline.alert."

LAST_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last time RFC 3339 (four-digit years) can write."""

Headers = tuple[tuple[str, bytes], ...]


def alert_headers(alert: DriftAlert, *, deployment: str, service: str) -> Headers:
    """The CloudEvents headers of ``alert``, written by ``service`` of ``deployment``."""
    subject = f"{alert.model}/v{alert.version}/{alert.kind}"
    if alert.feature is not None:
        subject += f"/{alert.feature}"
    return (
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", f"{alert.alert_id}/{alert.state}".encode()),
        ("ce_source", f"/driftline/{deployment}/{service}/{alert.model}".encode()),
        ("ce_type", f"{TYPE_PREFIX}{alert.state}".encode()),
        ("ce_time", rfc3339(alert.ts).encode()),
        ("ce_subject", subject.encode()),
        ("content-type", b"application/json"),
    )


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as an RFC 3339 UTC time with milliseconds.

    >>> rfc3339(1_700_000_000_123)
    '2023-11-14T22:13:20.123Z'
    >>> rfc3339(10**18)  # past what RFC 3339 can write (a hostile record): its last moment
    '9999-12-31T23:59:59.999Z'
    """
    ts_ms = min(ts_ms, LAST_MS)
    moment = datetime.fromtimestamp(ts_ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
