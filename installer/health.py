"""Waiting for a server to be ready: short polls under one deadline, a useful failure.

Order of probes: the server process is alive, then an authenticated TCP connection as the
given role answers `SELECT 1`. Authentication failures stop the wait at once (retrying cannot
fix a wrong password); "starting up" and "connection refused" are retried until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import errors as pgerrors

from installer import program
from installer.credentials import ConnInfo
from installer.errors import ServerError

POLL_INTERVAL = 0.1
_FATAL_SQLSTATES = {"28P01", "28000", "3D000"}  # bad password, no such role/hba, no such database


def wait_until_healthy(
    conn: ConnInfo,
    timeout: float,
    *,
    process_alive: Callable[[], bool] = lambda: True,
    log_tail: Callable[[], str] = lambda: "",
    what: str = "the PostgreSQL server",
) -> float:
    """Block until `SELECT 1` succeeds as `conn.user`; returns the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    last_error = "no attempt made"
    while True:
        if not process_alive():
            raise ServerError(f"{what} stopped while starting up",
                              hint="read the log lines above; a port clash, a full disk or a "
                              "permissions problem on the data directory are the usual causes",
                              details=log_tail())
        try:  # raw psycopg, not db.connect: a failed login's sqlstate ends the wait at once
            with psycopg.connect(**conn.kwargs(connect_timeout=2)) as connection:
                connection.execute("SELECT 1")
            return time.monotonic() - started
        except psycopg.OperationalError as exc:
            last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            sqlstate = getattr(exc, "sqlstate", None)
            if sqlstate in _FATAL_SQLSTATES or "password authentication failed" in str(exc):
                raise ServerError(
                    f"{what} refused the login of role {conn.user!r}: {last_error}",
                    hint="the password in .env does not match the server's; if you changed it "
                    f"by hand, restore it in .env, or run {program.command('--full')} to repair "
                    "roles you own",
                ) from exc
        except pgerrors.Error as exc:  # pragma: no cover - SELECT 1 failing is exotic
            last_error = str(exc)
        if time.monotonic() >= deadline:
            raise ServerError(
                f"{what} did not become healthy within {timeout:.0f} s (last error: {last_error})",
                hint="check the log below; raise the wait with LEARNING_HEALTH_TIMEOUT if the "
                "machine is just slow",
                details=log_tail(),
            )
        time.sleep(POLL_INTERVAL)
