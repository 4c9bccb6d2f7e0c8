"""The model's one outstanding retrain request, in Redis: taken by monitors, released by the
trainer when it answers a request without a new version.

A monitor takes the claim (a key set only if absent, expiring after the retrain timeout) before it
sends a retrain request, so that monitors of one model, each seeing its own partitions, ask once.
A newer version served releases it (the monitor sees that); a rejected candidate or a failed
training releases it at once (the trainer, :func:`release_claim`), so the next change is asked
about as soon as it is found.
"""

from __future__ import annotations

import logging

from shared.core.errors import RedisError
from shared.io.redis import Redis, redis_errors

log = logging.getLogger(__name__)

_RELEASE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedClaim:
    """In Redis, shared by every monitor of the model: a key set only if absent, expiring after
    the retrain timeout in case no new version ever comes."""

    def __init__(self, client: Redis, key: str, timeout_s: float) -> None:
        self._client = client
        self._key = key
        self._timeout_ms = int(timeout_s * 1000)
        self._holder: str | None = None

    @property
    def holder(self) -> str | None:
        """The request that holds the claim now (the trainer may have released it); the last one
        known while Redis does not answer."""
        try:
            with redis_errors("reading the retrain claim"):
                current = self._client.get(self._key)
        except RedisError:
            return self._holder
        self._holder = None if current is None else _text(current)
        return self._holder

    def try_claim(self, request_id: str, ts: int) -> bool:
        """Take the claim if it is free or already ``request_id``'s. While Redis does not
        answer, the monitor cannot ask the others: it sends its request (the trainer answers a
        second request for one change by training once more), rather than lose it."""
        try:
            with redis_errors("claiming the retrain request"):
                taken = self._client.set(self._key, request_id, nx=True, px=self._timeout_ms)
                if not taken:
                    current = self._client.get(self._key)
                    taken = current is not None and _text(current) == request_id
        except RedisError as exc:
            log.warning("%s; sending retrain request %s unclaimed", exc, request_id)
            taken = True
        if taken:
            self._holder = request_id
        return bool(taken)

    def release(self) -> None:
        try:
            with redis_errors("clearing the retrain request"):
                self._client.delete(self._key)
        except RedisError as exc:
            log.warning("%s; it lapses by itself after the retrain timeout", exc)
        self._holder = None

    def supersede(self, request_id: str, ts: int) -> None:
        try:
            with redis_errors("claiming the retrain request"):
                self._client.set(self._key, request_id, px=self._timeout_ms)
        except RedisError as exc:
            log.warning("%s; sending retrain request %s unclaimed", exc, request_id)
        self._holder = request_id


def release_claim(client: Redis, key: str, request_id: str) -> bool:
    """Release the claim if ``request_id`` still holds it (never another request's); True when
    it did."""
    with redis_errors("releasing the retrain request"):
        # EVALSHA, never EVAL: driftline's Redis user may run only scripts by their SHA.
        return bool(client.register_script(_RELEASE_IF_HELD)(keys=[key], args=[request_id]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
