"""Redis I/O: the only module that imports redis-py (``Redis``, the client type, is re-exported).

Its errors leave it translated.

>>> connect_redis("not-a-url")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
shared.core.errors.ConfigError: DRIFTLINE_REDIS_URL 'not-a-url' is not a Redis URL: Redis URL must ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis import Redis

from shared.core.errors import ConfigError, RedisError

__all__ = [
    "Redis",
    "connect_redis",
    "redact",
    "redis_errors",
]


def redact(url: str) -> str:
    """``url`` fit for a log line or a status: its password, if any, replaced.

    >>> redact("redis://driftline:s3cret@127.0.0.1:6379/0?ssl_ca_certs=/ca.pem")
    'redis://driftline:***@127.0.0.1:6379/0?ssl_ca_certs=/ca.pem'
    >>> redact("rediss://:s3cret@host/0"), redact("redis://127.0.0.1:6379/0")
    ('rediss://:***@host/0', 'redis://127.0.0.1:6379/0')
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, host = rest.partition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


@contextmanager
def redis_errors(action: str, url: str | None = None) -> Iterator[None]:
    """Translate redis-py errors raised inside the block into :class:`RedisError`."""
    try:
        yield
    except redis.AuthenticationError as exc:
        raise RedisError(
            f"{action}: Redis refused the credentials ({exc}). Put the user and password in "
            "DRIFTLINE_REDIS_URL (redis://USER:PASSWORD@HOST:PORT/DB) or DRIFTLINE_REDIS_PASSWORD; "
            "after `driftline infra up` driftline finds the local ones by itself."
        ) from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        where = f" at {redact(url)}" if url else ""
        raise RedisError(
            f"{action}: Redis did not answer{where} ({exc}). Start one with `driftline infra up`, "
            "or set DRIFTLINE_REDIS_URL to a running Redis."
        ) from exc
    except redis.RedisError as exc:
        raise RedisError(f"{action}: {exc}") from exc


def connect_redis(url: str, *, timeout_s: float = 5.0, check: bool = True) -> redis.Redis:
    """A client for ``url``; with ``check`` it pings first, so a dead Redis fails here, clearly."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise ConfigError(
            f"DRIFTLINE_REDIS_URL {redact(url)!r} is not a Redis URL: {exc}"
        ) from None
    if check:
        with redis_errors("connecting to Redis", url):
            client.ping()
    return client
