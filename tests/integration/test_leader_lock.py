"""The trainer's leader lock against the real Redis: one holder, renewal, takeover after expiry,
and a holder that stalled past its expiry can neither renew nor free its successor's lock."""

from __future__ import annotations

import time

import pytest

from services.trainer.leader import LeaderLock
from shared.io.redis import connect_redis
from tests.conftest import Servers

pytestmark = pytest.mark.integration


def test_one_holder_renewal_takeover_and_no_stale_release(servers: Servers, unique: str) -> None:
    client = connect_redis(servers.redis_url)
    key = f"t{unique}:lock:trainer:m"
    first = LeaderLock(client, key, "first", ttl_s=3.0)
    second = LeaderLock(client, key, "second", ttl_s=3.0)
    try:
        assert first.try_acquire() and first.held
        assert not second.try_acquire()
        time.sleep(7.0)  # over twice the expiry: only renewal keeps it
        assert first.held and not second.try_acquire()
        assert first.current_holder() == "first"

        # The holder stalls: its renewals stop, the lock expires, the standby takes it.
        first._stop.set()  # simulate a holder frozen past its expiry
        time.sleep(4.0)
        assert second.try_acquire() and second.current_holder() == "second"
        assert not first.renew() and not first.held
        first.release()  # must not free the lock it no longer holds
        assert second.current_holder() == "second"

        second.release()  # a clean release frees it at once
        assert client.get(key) is None
    finally:
        first.release()
        second.release()
        client.delete(key)
        client.close()
