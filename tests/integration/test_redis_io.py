"""Redis I/O against the real server: connect, prefixes that isolate deployments, clear errors."""

from __future__ import annotations

import pytest

from shared.core.errors import RedisError
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis, redis_errors
from tests.conftest import Servers

pytestmark = pytest.mark.integration


def test_connect_and_round_trip(servers: Servers, unique: str) -> None:
    client = connect_redis(servers.redis_url)
    key = RedisKeys(f"t{unique}:").active("m")
    try:
        client.set(key, 3)
        assert client.get(key) == b"3"
    finally:
        client.delete(key)
        client.close()


def test_two_prefixes_share_one_redis_without_touching_each_other(
    servers: Servers, unique: str
) -> None:
    client = connect_redis(servers.redis_url)
    first, second = RedisKeys(f"a{unique}:"), RedisKeys(f"b{unique}:")
    try:
        client.set(first.active("m"), 1)
        client.set(second.active("m"), 2)
        assert client.get(first.active("m")) == b"1"
        assert client.get(second.active("m")) == b"2"
        assert client.keys(f"a{unique}:*") == [first.active("m").encode()]
    finally:
        client.delete(first.active("m"), second.active("m"))
        client.close()


def test_server_appends_to_its_log(servers: Servers) -> None:
    if servers.source != "local processes":
        pytest.skip("append-only persistence is set by `driftline infra up`, not by other servers")
    client = connect_redis(servers.redis_url)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()


def test_unreachable_redis_is_a_translated_error_with_the_fix() -> None:
    with pytest.raises(
        RedisError, match=r"Redis did not answer at redis://127.0.0.1:1/0.*driftline infra up"
    ):
        connect_redis("redis://127.0.0.1:1/0", timeout_s=1.0)


def test_a_refused_command_is_translated(servers: Servers) -> None:
    client = connect_redis(servers.redis_url)
    try:
        with pytest.raises(RedisError, match="unknown command"), redis_errors("running a command"):
            client.execute_command("NO-SUCH-COMMAND")
    finally:
        client.close()
