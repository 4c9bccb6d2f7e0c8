"""What a trainer says about itself: typed, published to Redis for `driftline status`.

The JSON form (``msgspec.json.encode``) is what ``model:{name}:trainer:status:{instance}`` holds.
"""

from __future__ import annotations

import msgspec

from services.trainer.requests import Handled


class PendingRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A retrain request waiting for enough examples."""

    request_id: str
    since_ts: int | None
    waiting: str
    """Why, in words: how many examples it has of how many it needs."""


class TrainerStatus(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    leader: bool
    holder: str
    """This trainer's name in the leader lock."""
    algorithm: str
    examples: int
    """Examples in the window."""
    newest_ts: int | None
    duplicates: int
    evicted: int
    pending: list[PendingRequest]
    last_outcome: Handled | None
    """What became of the last request or snapshot: its outcome, version and evidence."""
    updated_at: int
    """Epoch milliseconds."""
