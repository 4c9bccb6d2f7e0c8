"""A service's status in Redis: one expiring key per process, which `driftline status` reads.

>>> import numpy as np
>>> class Status(msgspec.Struct):
...     figure: object
>>> msgspec.json.encode(Status(np.float64(0.5)), enc_hook=_plain), _plain(object)
(b'{"figure":0.5}', "<class 'object'>")
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from shared.core.errors import DriftlineError
from shared.io.redis import Redis, redis_errors

log = logging.getLogger(__name__)


class StatusPublisher:
    """Writes a status under ``key`` with an expiry, so a dead process's status disappears by
    itself; a Redis that does not answer costs a warning a minute, never the service."""

    def __init__(self, client: Redis, key: str, service: str) -> None:
        self._client = client
        self._key = key
        self._service = service
        self._next_warning = 0.0

    def _warn(self, exc: DriftlineError) -> None:
        now = time.monotonic()
        if now >= self._next_warning:
            self._next_warning = now + 60.0
            log.warning("%s (said once a minute while it lasts)", exc)

    def publish(self, status: msgspec.Struct, ttl_s: float) -> None:
        data = msgspec.json.encode(status, enc_hook=_plain)
        try:
            with redis_errors(f"publishing the {self._service}'s status"):
                self._client.set(self._key, data, px=int(ttl_s * 1000))
        except DriftlineError as exc:
            self._warn(exc)

    def clear(self) -> None:
        try:
            with redis_errors(f"clearing the {self._service}'s status"):
                self._client.delete(self._key)
        except DriftlineError as exc:
            self._warn(exc)


def _plain(value: Any) -> Any:
    """What msgspec cannot encode by itself: a numpy scalar as its value, anything else as text
    (a status is for people and dashboards; it never stops a service)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)
