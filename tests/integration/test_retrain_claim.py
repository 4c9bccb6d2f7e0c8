"""The one outstanding retrain request per model, shared by every monitor of it, in the real Redis:
one request at a time, its own request again after a replay, free once a new version is served,
and free by itself after the retrain timeout."""

from __future__ import annotations

import time

import pytest

from services.monitor.retrain import SharedClaim
from shared.io.redis import connect_redis
from shared.registry.claims import release_claim
from tests.conftest import Servers

pytestmark = pytest.mark.integration


def test_two_monitors_share_one_outstanding_request(servers: Servers, unique: str) -> None:
    client = connect_redis(servers.redis_url)
    key = f"t{unique}:model:m:retrain:outstanding"
    first, second = SharedClaim(client, key, 60.0), SharedClaim(client, key, 60.0)
    try:
        assert first.try_claim("a", ts=0) and first.holder == "a"
        assert not second.try_claim("b", ts=0) and second.holder == "a"  # what Redis holds
        assert second.try_claim("a", ts=0)  # request a, sent again by a monitor that replays
        first.release()
        assert second.try_claim("b", ts=0) and client.get(key) == b"b"
    finally:
        client.delete(key)
        client.close()


def test_a_claim_lapses_after_the_retrain_timeout(servers: Servers, unique: str) -> None:
    client = connect_redis(servers.redis_url)
    key = f"t{unique}:model:m:retrain:outstanding"
    claim = SharedClaim(client, key, 0.5)
    try:
        assert claim.try_claim("a", ts=0)
        assert not claim.try_claim("b", ts=0)
        time.sleep(1.0)
        assert claim.try_claim("b", ts=0)
    finally:
        client.delete(key)
        client.close()


def test_the_trainer_releases_only_the_request_it_answered(servers: Servers, unique: str) -> None:
    """A rejected candidate answers its request: the trainer frees the claim at once (it held
    until a version was served or an hour passed), but never a newer request's claim."""
    client = connect_redis(servers.redis_url)
    key = f"t{unique}:model:m:retrain:outstanding"
    monitor = SharedClaim(client, key, 3_600.0)
    try:
        assert monitor.try_claim("a", ts=0)
        assert not release_claim(client, key, "older") and monitor.holder == "a"
        assert release_claim(client, key, "a") and monitor.holder is None
        assert monitor.try_claim("b", ts=0)
        monitor.supersede("c", ts=0)  # a later change takes it whoever holds it
        assert monitor.holder == "c" and client.pttl(key) > 3_500_000
    finally:
        client.delete(key)
        client.close()
