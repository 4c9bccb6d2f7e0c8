"""Choosing TCP ports on the loopback interface for the local servers."""

from __future__ import annotations

import socket

from shared.core.errors import InfraError

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on ``host:port`` and we could bind it now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_port(
    what: str,
    configured: int | None,
    preferred: int | None,
    env_var: str,
    avoid: tuple[int, ...] = (),
) -> int:
    """The port for ``what``: the configured one (which must be free), else ``preferred`` when
    free, else any free port.

    A configured port in use is an error with the fix, not a silent move elsewhere: the user asked
    for that port and other programs may be pointed at it.
    """
    if configured is not None:
        if not port_is_free(configured):
            raise InfraError(
                f"{what} cannot start: port {configured} on {HOST} is already in use. "
                f"Stop whatever listens there (`ss -ltnp 'sport = :{configured}'` shows it), "
                f"or choose another port with {env_var}."
            )
        return configured
    if preferred is not None and preferred not in avoid and port_is_free(preferred):
        return preferred
    while True:
        port = free_port()
        if port not in avoid:
            return port
