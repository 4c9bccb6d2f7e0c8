"""Leader election on Redis: one lock key with an expiry, renewed by its holder.

The holder writes a random token with ``SET NX PX``; renewal and release run as Lua scripts that act
only while the key still holds that token, so a holder that stalled past the expiry can neither
extend nor delete a lock that someone else has taken since. A standby calls :meth:`try_acquire` on
a timer and takes over within one expiry of the holder dying. A background thread renews while the
holder is busy (training can take minutes); if a renewal finds the lock lost, :attr:`held` turns
False and the holder must stop acting as leader before its next side effect.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

from shared.core.errors import RedisError
from shared.io.redis import Redis, redis_errors

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: Redis, key: str, holder: str, ttl_s: float = 10.0) -> None:
        if ttl_s <= 0:
            raise ValueError("the lock's expiry must be positive")
        self._client = client
        self.key = key
        self.holder = holder
        self._token = f"{holder}:{secrets.token_hex(8)}"
        self.ttl_ms = int(ttl_s * 1000)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._held = threading.Event()
        self._valid_until = 0.0
        """Monotonic time the key expires at, as of the last write that succeeded."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_warning = 0.0
        self.error: str | None = None
        """Why the last renewal could not reach Redis; None once one succeeds."""

    @property
    def held(self) -> bool:
        """Ours, and not past the expiry of the last successful write: a renewal thread starved
        of CPU cannot make a lock that Redis has already expired look held."""
        return self._held.is_set() and time.monotonic() < self._valid_until

    def current_holder(self) -> str | None:
        """Who holds the lock now (its holder name), or None."""
        with redis_errors("reading the leader lock"):
            value = self._client.get(self.key)
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return text.rsplit(":", 1)[0]

    def try_acquire(self) -> bool:
        """Take the lock if it is free (or already ours); start renewing it. True when held."""
        if self._held.is_set():
            return self.held  # the renewal thread is running: it extends or gives up the lock
        started = time.monotonic()
        with redis_errors("taking the leader lock"):
            taken = self._client.set(self.key, self._token, nx=True, px=self.ttl_ms)
        if not taken:
            return False
        self._valid_until = started + self.ttl_ms / 1000
        self._held.set()
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep, name="leader-lock", daemon=True)
        self._thread.start()
        return True

    def renew(self) -> bool:
        """Extend the lock if it is still ours; otherwise mark it lost. True while held."""
        started = time.monotonic()
        try:
            with redis_errors("renewing the leader lock"):
                extended = self._renew(keys=[self.key], args=[self._token, self.ttl_ms])
        except RedisError as exc:
            # Not lost yet: the key may well still be ours. The next renewal decides, and the
            # expiry bounds how long a cut-off leader can believe it leads.
            self.error = str(exc)
            if time.monotonic() >= self._next_warning:  # once a minute while it lasts
                self._next_warning = time.monotonic() + 60.0
                log.warning("could not renew the leader lock %s: %s", self.key, exc)
            return self.held
        self.error = None
        if not extended:
            if self._held.is_set():
                log.warning("lost the leader lock %s", self.key)
            self._held.clear()
        else:
            self._valid_until = started + self.ttl_ms / 1000
        return self.held

    def _keep(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            if not self.renew():
                return

    def release(self) -> None:
        """Stop renewing and free the lock if it is still ours, so a standby takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._held.is_set():
            self._held.clear()
            try:
                with redis_errors("releasing the leader lock"):
                    self._release(keys=[self.key], args=[self._token])
            except RedisError as exc:
                log.warning("could not release the leader lock (it expires by itself): %s", exc)
