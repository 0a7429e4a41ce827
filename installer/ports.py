"""Which TCP ports on the loopback interface are free."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from installer.errors import EnvironmentProblem

if TYPE_CHECKING:
    from installer.config import Settings

_EXPLICIT = ("command line", "environment", "profile")


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


def decide_port(settings: Settings, running: int | None, default: int, notes: list[str]) -> int:
    """The port a server the installer runs listens on: the one asked for (or `default`), the
    one it already runs on, or the next free one when the wanted port was not chosen
    explicitly and another program took it (`notes` says so)."""
    wanted = settings.port or default
    if running == wanted or port_is_free(wanted):
        return wanted
    if settings.sources["port"] in _EXPLICIT:
        raise EnvironmentProblem(f"port {wanted} on {settings.host} is in use by another program",
                                 hint="stop that program, or choose another port with --port")
    chosen = next_free_port(wanted + 1)
    if settings.sources["port"] == ".env (recorded)":
        notes.append(f"port {wanted} recorded in .env is now taken by another program; "
                     f"moving to {chosen} (.env and MCP config follow)")
    else:
        notes.append(f"port {wanted} is in use; using the next free port, {chosen}")
    return chosen
