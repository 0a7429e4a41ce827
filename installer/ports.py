"""Which TCP ports on the loopback interface are free."""

from __future__ import annotations

import socket

from installer.errors import EnvironmentProblem


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as PostgreSQL does: connections in TIME_WAIT after a stop must not count as "in use"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def next_free_port(start: int, host: str = "127.0.0.1", attempts: int = 100) -> int:
    for port in range(start, min(start + attempts, 65536)):
        if port_is_free(port, host):
            return port
    raise EnvironmentProblem(
        f"no free port on {host} between {start} and {start + attempts - 1}",
        hint="free one of them, or choose another with --port",
    )
