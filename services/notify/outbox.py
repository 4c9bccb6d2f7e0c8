"""The notifier's state in Redis: incidents, the outbox of notifications not yet delivered, and
which changes each route has been told of.

The order of writes is what makes delivery exactly-once from the notifier's side:

1. alert records are folded into incidents, the changed incidents written, and only then the
   ``alerts`` offsets committed: a notifier killed before the commit reads the records again, and
   folding a change twice changes nothing;
2. a notification is written to the outbox, together with its incident's "sent" marks, before it
   is POSTed: a notifier killed before the POST (or during its retries) sends that same
   notification, same id and same bytes, when it or another member takes over;
3. once delivered, the outbox entry goes and each change is marked delivered to the route (kept
   for ``DELIVERED_TTL_S``): a replay of the alert records (``driftline dlq replay``, an offset
   reset) tells no route twice.

Only a kill between a 2xx answer and step 3 sends a notification twice, with the same
``Idempotency-Key``: the receiver drops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from services.notify.incidents import Incident
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, redis_errors

DELIVERED_TTL_S = 7 * 24 * 3600
"""How long a delivered change is remembered: replays older than this are delivered again."""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One notification in the outbox: the exact body to POST, for whom, carrying what."""

    notification_id: str
    route: str
    incident_id: str
    partition: int
    changes: list[str]
    """The ``ALERT_ID/STATE`` changes it tells of."""
    alerts: list[tuple[int, str]]
    """``(offset, alert JSON)`` of each change's record, for dead letters if it fails."""
    body: str
    headers: dict[str, str]
    created_ms: int


_INCIDENT = msgspec.json.Decoder(Incident)
_ENTRY = msgspec.json.Decoder(Entry)


class NotifyStore:
    """Reads and writes the notifier's keys (:class:`~shared.io.keys.RedisKeys`)."""

    def __init__(self, client: Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys

    def load(self, partition: int) -> tuple[list[Incident], list[Entry]]:
        """What an earlier owner of ``partition`` left: its incidents, its undelivered outbox."""
        with redis_errors(f"reading the notifier's state of partition {partition}"):
            incidents = self._client.hvals(self._keys.notify_incidents(partition))
            entries = self._client.hvals(self._keys.notify_outbox(partition))
        loaded = [_ENTRY.decode(e) for e in entries]
        return [_INCIDENT.decode(i) for i in incidents], sorted(loaded, key=lambda e: e.created_ms)

    def save(self, incidents: Iterable[Incident], gone: Iterable[Incident] = ()) -> None:
        """Write changed incidents and delete finished ones, in one transaction."""
        pipe = self._client.pipeline(transaction=True)
        for incident in incidents:
            pipe.hset(
                self._keys.notify_incidents(incident.partition),
                incident.incident_id,
                msgspec.json.encode(incident),
            )
        for incident in gone:
            pipe.hdel(self._keys.notify_incidents(incident.partition), incident.incident_id)
        with redis_errors("writing the notifier's incidents"):
            pipe.execute()

    def stage(self, entry: Entry, incident: Incident) -> None:
        """Put ``entry`` in the outbox and its incident's sent marks, in one transaction."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(
            self._keys.notify_outbox(entry.partition),
            entry.notification_id,
            msgspec.json.encode(entry),
        )
        pipe.hset(
            self._keys.notify_incidents(incident.partition),
            incident.incident_id,
            msgspec.json.encode(incident),
        )
        with redis_errors("writing a notification to the outbox"):
            pipe.execute()

    def delivered(self, entry: Entry) -> None:
        """``entry`` reached its route: out of the outbox, its changes marked delivered."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(self._keys.notify_outbox(entry.partition), entry.notification_id)
        for change in entry.changes:
            pipe.set(self._keys.notify_delivered(entry.route, change), 1, ex=DELIVERED_TTL_S)
        with redis_errors("recording a delivered notification"):
            pipe.execute()

    def given_up(self, entry: Entry) -> None:
        """``entry`` failed for good (its alerts were dead-lettered): out of the outbox."""
        with redis_errors("removing a failed notification from the outbox"):
            self._client.hdel(self._keys.notify_outbox(entry.partition), entry.notification_id)

    def delivered_to(self, routes: Sequence[str], changes: Sequence[str]) -> set[tuple[str, str]]:
        """Which ``(route, change)`` pairs were delivered already (one round trip)."""
        pairs = [(route, change) for change in changes for route in routes]
        if not pairs:
            return set()
        with redis_errors("reading which alerts were delivered"):
            found = self._client.mget([self._keys.notify_delivered(r, c) for r, c in pairs])
        return {pair for pair, mark in zip(pairs, found, strict=True) if mark is not None}
