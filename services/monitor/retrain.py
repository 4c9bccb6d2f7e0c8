"""The one place that decides whether a retrain request may go out: one outstanding per model.

A request is outstanding from when it is sent until a newer version is served, the trainer
answers it without one (a rejected candidate, a failed training: it releases the claim), or the
retrain timeout passes. A later change than the one it is about supersedes it.
:class:`SharedClaim` (:mod:`shared.registry.claims`) keeps that in a Redis key set only if absent, so
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

from shared.registry.claims import SharedClaim

__all__ = ["LocalClaim", "RetrainClaim", "SharedClaim"]


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

    def supersede(self, request_id: str, ts: int) -> None:
        """Take it for ``request_id`` whoever holds it: a later change than the one the
        outstanding request is about needs its own request."""
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

    def supersede(self, request_id: str, ts: int) -> None:
        self._held = (request_id, ts)

    def state(self) -> tuple[str | None, int, int]:
        """``(holder, taken at, timeout)`` as plain data, for a checkpoint."""
        held = self._held
        return (None, 0, self.timeout_ms) if held is None else (held[0], held[1], self.timeout_ms)

    @classmethod
    def from_state(cls, state: tuple[str | None, int, int]) -> LocalClaim:
        holder, taken, timeout_ms = state
        claim = cls(timeout_ms)
        claim._held = None if holder is None else (holder, taken)
        return claim
