"""The one place that decides whether a retrain request may go out: one outstanding per model.

A request is outstanding from when it is sent until a newer version is served (or the retrain
timeout passes with none). :class:`SharedClaim` keeps that in a Redis key set only if absent, so
every monitor of the model shares it (each sees only its partitions' events, and several may find
the same change). :class:`LocalClaim` keeps it in memory, by event time, for analytics run alone
(tests, benchmarks). A request that is sent again, with the same id, after a monitor's restart
is allowed again: the claim is its own.

>>> claim = LocalClaim(timeout_ms=1_000)
>>> claim.try_claim("a", ts=0), claim.try_claim("b", ts=500), claim.try_claim("a", ts=600)
(True, False, True)
>>> claim.try_claim("b", ts=1_000), claim.holder
(True, 'b')
>>> claim.release(); claim.holder is None
True
"""

from __future__ import annotations

from typing import Protocol

from shared.io.redis import Redis, redis_errors


class RetrainClaim(Protocol):
    """Who holds the right to the model's one outstanding retrain request."""

    @property
    def holder(self) -> str | None:
        """The request id that holds it, as far as this process knows; None when free."""
        ...

    def try_claim(self, request_id: str, ts: int) -> bool:
        """Take it for ``request_id`` (at event time ``ts``) if it is free or already its own."""
        ...

    def release(self) -> None:
        """A newer version is served: the outstanding request is answered."""
        ...


class LocalClaim:
    """In memory, by event time: a claim lapses ``timeout_ms`` after it was taken."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self._held: tuple[str, int] | None = None

    @property
    def holder(self) -> str | None:
        return None if self._held is None else self._held[0]

    def try_claim(self, request_id: str, ts: int) -> bool:
        held = self._held
        if held is not None and held[0] == request_id:
            return True  # its own: sent again after a replay
        if held is None or ts - held[1] >= self.timeout_ms:
            self._held = (request_id, ts)
            return True
        return False

    def release(self) -> None:
        self._held = None


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
        return self._holder

    def try_claim(self, request_id: str, ts: int) -> bool:
        with redis_errors("claiming the retrain request"):
            taken = self._client.set(self._key, request_id, nx=True, px=self._timeout_ms)
            if not taken:
                current = self._client.get(self._key)
                taken = current is not None and _text(current) == request_id
        if taken:
            self._holder = request_id
        return bool(taken)

    def release(self) -> None:
        with redis_errors("clearing the retrain request"):
            self._client.delete(self._key)
        self._holder = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
