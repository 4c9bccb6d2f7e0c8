"""What a notifier says of itself in Redis, for `driftline status`: the partitions it owns, each
route's backlog and whether it is failing, and the incidents it holds."""

from __future__ import annotations

import msgspec


class RouteStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    where: str
    """The route as its logs name it (no secret)."""
    waiting: int
    failing: str | None = None
    """Why its last attempt failed, while it fails."""


class NotifyStatus(msgspec.Struct, frozen=True, kw_only=True):
    member: str
    kafka_client: str
    partitions: list[int]
    incidents: int
    routes: list[RouteStatus]
    ts: int
