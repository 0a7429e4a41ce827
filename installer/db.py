"""The one way to reach the database: open a connection, ask whether a server answers.

Every module connects through `connect()`, so a server that cannot be reached is reported the
same way everywhere: a `ServerError` (exit 5) naming the masked URL, libpq's reason and what to
run. Passwords travel as keyword arguments, never on a command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from installer import program
from installer.credentials import ConnInfo
from installer.errors import ServerError


def reason(exc: BaseException) -> str:
    """libpq's first line of an error, without the connection string noise."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def tls_hint(info: ConnInfo, exc: BaseException) -> str | None:
    """What to do when TLS is why libpq refused (a certificate that does not verify, a server
    without TLS); None when it is not. Starting the server or --full would not help."""
    text = reason(exc)
    if "does not support SSL" in text:
        return ("the server offers no TLS: ask whoever runs it to enable it; only on a trusted "
                "network, set sslmode to prefer or disable (PGSSLMODE in .env, LEARNING_SSLMODE)")
    if "client certificate" in text or "private key" in text:
        return ("the server wants a client certificate: give it and its key (mode 0600) with "
                "sslcert and sslkey (PGSSLCERT/PGSSLKEY in .env, LEARNING_SSLCERT/"
                "LEARNING_SSLKEY, or the admin URL)")
    if "certificate" not in text and "SSL error:" not in text:
        return None  # e.g. "SSL SYSCALL error": the connection broke, not its TLS settings
    trusted = (f"the CA certificate(s) in {info.tls.sslrootcert}" if info.tls.sslrootcert
               else "libpq's default ~/.postgresql/root.crt")
    return (f"sslmode {info.tls.sslmode or 'prefer'} checks the server's certificate against "
            f"{trusted}: put there the CA certificate that signed the server's (the provider "
            "publishes it), or point sslrootcert at it (PGSSLROOTCERT in .env, "
            "LEARNING_SSLROOTCERT, the admin URL's sslrootcert); with verify-full the host "
            "name must be one the certificate names")


def unreachable(info: ConnInfo, exc: BaseException, details: str | None = None) -> ServerError:
    return ServerError(
        f"cannot connect to {info.masked_url()}: {reason(exc)}",
        hint=tls_hint(info, exc) or f"start the server with {program.command('start')}, or "
        f"repair the installation with {program.command('--full')}; "
        f"{program.command('doctor')} shows what is wrong",
        details=details)


def refused(exc: psycopg.Error, doing: str = "") -> ServerError:
    """A `psycopg.Error` that escaped a step or a command, as the server's own reason (exit 5).

    A lost connection reads as "cannot connect"; anything else the server refused (a missing
    privilege, a failed statement) names what was being done and the server's reason."""
    if isinstance(exc, psycopg.OperationalError) and not getattr(exc, "sqlstate", None):
        return ServerError(
            f"cannot connect to the database: {reason(exc)}",
            hint=f"start it with {program.command('start')}, or repair everything with "
            f"{program.command('--full')}; {program.command('doctor')} shows what is wrong")
    where = f"{doing}: " if doing else ""
    return ServerError(f"{where}the server refused: {reason(exc)}",
                       hint=f"{program.command('doctor')} shows what is wrong; re-run with "
                       "--verbose for details")


def connect(info: ConnInfo, *, autocommit: bool = False,
            session: Mapping[str, str] | None = None, **options: Any) -> psycopg.Connection:
    """A connection as `info`'s role; `session` settings are SET before it is returned.

    `options` go to libpq (e.g. connect_timeout=3). Raises ServerError when the server cannot
    be reached or refuses the login.
    """
    try:
        conn = psycopg.connect(**info.kwargs(**options), autocommit=True)
    except psycopg.OperationalError as exc:
        raise unreachable(info, exc) from exc
    for name, value in (session or {}).items():
        conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    conn.autocommit = autocommit
    return conn


def one(conn: psycopg.Connection, query: str | sql.SQL | sql.Composed,
        params: Sequence[Any] = ()) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (an aggregate, a function call)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise psycopg.ProgrammingError(f"no row from: {query}")
    return row


def answers(info: ConnInfo, timeout: int = 3) -> bool:
    """Whether `info` can log in right now (server up, role and password accepted)."""
    try:
        with psycopg.connect(**info.kwargs(connect_timeout=timeout)):
            return True
    except psycopg.OperationalError:
        return False
