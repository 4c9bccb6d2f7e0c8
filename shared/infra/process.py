"""Starting, finding and stopping the detached server processes that `driftline infra` manages."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def start_detached(
    cmd: Sequence[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``cmd`` in its own session, output appended to ``log_path``; return its pid.

    Its own session keeps it alive after the CLI exits and out of reach of the terminal's Ctrl+C.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(pid: int | None, marker: str | None = None) -> bool:
    """True when ``pid`` is alive, not a zombie, and (where /proc exists) its command line
    contains ``marker``, which guards against a recycled pid that now belongs to another program.
    """
    if not pid or pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return marker is None
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    # An empty command line is unknown, not foreign: a process rewriting its title (redis-server
    # does at start) shows none for a moment.
    return marker is None or not cmdline.strip() or marker in cmdline


def stop(pid: int, marker: str | None = None, timeout_s: float = 30.0) -> str:
    """Stop ``pid``: SIGTERM, wait up to ``timeout_s``, then SIGKILL. Return what it took:
    ``"not running"``, ``"terminated"`` or ``"killed"``.
    """
    if not is_running(pid, marker):
        return "not running"
    # The marker proved whose pid this is; from here on wait for the pid itself, since a dying
    # process loses its command line before it is gone.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, timeout_s):
        return "terminated"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 10.0)
    return "killed"


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` has exited; True if it did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
