"""A local redis-server with append-only persistence, run from the PATH."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from shared.core.errors import InfraError, RedisError
from shared.infra.process import is_running, start_detached, tail
from shared.io.redis import connect_redis


def find_redis_server() -> str:
    """Path of `redis-server`, or an :class:`InfraError` saying how to install it."""
    found = shutil.which("redis-server")
    if found is None:
        raise InfraError(
            "redis-server not found on the PATH. Install it (Debian/Ubuntu: "
            "`apt-get install redis-server`; Fedora: `dnf install redis`; macOS: "
            "`brew install redis`), or set DRIFTLINE_REDIS_URL to an existing Redis."
        )
    return found


def command(redis_server: str, data_dir: Path, port: int, host: str) -> list[str]:
    """The redis-server command line: loopback only, append-only file on, logs to stdout."""
    return [
        redis_server,
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        "",
    ]


def start(*, redis_server: str, redis_dir: Path, port: int, host: str) -> int:
    """Start redis-server with its data under ``redis_dir``; return its pid."""
    data_dir = redis_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_detached(
        command(redis_server, data_dir, port, host), redis_dir / "redis.log", cwd=redis_dir
    )


def wait_ready(url: str, pid: int, marker: str, log_path: Path, timeout_s: float) -> float:
    """Wait until Redis answers PING; return the seconds it took, or raise with its log's tail."""
    started = time.monotonic()
    while True:
        if not is_running(pid, marker):
            raise InfraError(
                f"redis-server exited during start-up. Its log says why:\n{tail(log_path)}"
            )
        try:
            connect_redis(url, timeout_s=1.0).close()
            return time.monotonic() - started
        except RedisError:
            pass
        if time.monotonic() - started > timeout_s:
            raise InfraError(
                f"redis-server did not answer at {url} within {timeout_s:.0f} s:\n{tail(log_path)}"
            )
        time.sleep(0.1)
