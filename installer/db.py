"""The one way to reach the database: open a connection, ask whether a server answers.

Every module connects through `connect()`, so a server that cannot be reached is reported the
same way everywhere: a `ServerError` (exit 5) naming the masked URL, libpq's reason and what to
run. Passwords travel as keyword arguments, never on a command line.

Nothing here relies on the session outliving a transaction, so every connection also works
through a transaction pooler (PgBouncer `pool_mode = transaction`), where consecutive
transactions of one client may run on different server connections: statements are never
prepared by name (psycopg would after five runs of a query), and settings are SET LOCAL, in
the transaction that needs them (`transaction()`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from installer import program
from installer.credentials import ENV_KEYS, ConnInfo, Tls
from installer.errors import ServerError


def reason(exc: BaseException) -> str:
    """libpq's first line of an error, without the connection string noise."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Cause:
    """Why a login failed, in one word (`kind`), and what to do about it."""

    kind: str  # tls | password | role | pg_hba | connect | database | refused | timeout | unknown
    summary: str
    todo: str


# libpq's and the server's words -> the cause; the first match wins: a pg_hba refusal names
# the encryption ("SSL encryption"), a TLS failure may end in "could not connect".
_CAUSES: tuple[tuple[str, str, str], ...] = (
    (r"no pg_hba\.conf entry|pg_hba\.conf rejects", "pg_hba",
     "pg_hba.conf has no line letting this role reach this database from here"),
    (r"permission denied for database|does not have connect privilege", "connect",
     "the role lacks the CONNECT privilege on this database"),
    (r"certificate|does not support ssl|ssl error|ssl is required|sslmode|\btls\b|gssapi|"
     r"private key", "tls",
     "TLS: the server's certificate or the TLS settings do not match"),
    (r"password authentication failed|no password supplied|authentication failed|scram",
     "password", "the password was refused"),
    (r'role "[^"]*" does not exist', "role", "the role does not exist"),
    (r'database "[^"]*" does not exist', "database", "the database does not exist"),
    (r"timeout expired|timed out", "timeout", "the server did not answer in time"),
    (r"connection refused|no such file or directory|could not translate host name|network is "
     r"unreachable|no route to host|the database system is|server closed the connection|"
     r"could not connect", "refused",
     "no server answers at this address (down, starting, or another host or port)"),
)


def cause_of(error: BaseException | str) -> Cause:
    """The cause of a failed connection, from libpq's message (an exception or the text a
    child process printed), with the one thing to do about it."""
    text = error if isinstance(error, str) else str(error)
    for pattern, kind, summary in _CAUSES:
        if re.search(pattern, text, re.IGNORECASE):
            return Cause(kind, summary, _todo(kind))
    return Cause("unknown", "the connection failed", _todo("unknown"))


def _todo(kind: str) -> str:
    full, doctor = program.command("--full"), program.command("doctor")
    return {
        "tls": "check sslmode and the CA certificate that must have signed the server's "
               "(PGSSLMODE, PGSSLROOTCERT in .env; LEARNING_SSLMODE, LEARNING_SSLROOTCERT)",
        "pg_hba": "add a line for this role, database and address to the server's pg_hba.conf "
                  f"and reload it (native and docker mode: {full} rewrites it)",
        "connect": f"GRANT CONNECT ON DATABASE to the role as the database's owner ({full} "
                   "does it for the learning database)",
        "password": f"the password in .env (or ~/.pgpass) differs from the server's: {full} "
                    "sets it again",
        "role": f"{full} creates the role",
        "database": f"{full} creates the database; check the name in .env",
        "timeout": "check that the host and port are right and that no firewall drops the "
                   "connection",
        "refused": f"start the server with {program.command('start')} or repair the "
                   f"installation with {full} (an external server: ask whoever runs it); "
                   "check the host and port",
    }.get(kind, f"repair the installation with {full}; {doctor} shows what is wrong")


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
    cause = cause_of(exc)
    return ServerError(
        f"cannot connect to {info.masked_url()}: {reason(exc)}",
        hint=tls_hint(info, exc) or f"{cause.summary}: {cause.todo}", details=details)


def refused(exc: psycopg.Error, doing: str = "") -> ServerError:
    """A `psycopg.Error` that escaped a step or a command, as the server's own reason (exit 5).

    A lost connection reads as "cannot connect"; anything else the server refused (a missing
    privilege, a failed statement) names what was being done and the server's reason."""
    if isinstance(exc, psycopg.OperationalError) and not getattr(exc, "sqlstate", None):
        cause = cause_of(exc)
        return ServerError(f"cannot connect to the database: {reason(exc)}",
                           hint=f"{cause.summary}: {cause.todo}")
    where = f"{doing}: " if doing else ""
    return ServerError(f"{where}the server refused: {reason(exc)}",
                       hint=f"{program.command('doctor')} shows what is wrong; re-run with "
                       "--verbose for details")


def connect(info: ConnInfo, *, autocommit: bool = False, **options: Any) -> psycopg.Connection:
    """A connection as `info`'s role.

    `options` go to libpq (e.g. connect_timeout=3). Raises ServerError when the server cannot
    be reached or refuses the login.
    """
    try:
        # prepare_threshold=None: a named prepared statement lives on one server connection,
        # which a transaction pooler hands to another client after the transaction
        return psycopg.connect(**info.kwargs(**options), autocommit=autocommit,
                               prepare_threshold=None)
    except psycopg.OperationalError as exc:
        raise unreachable(info, exc) from exc


def login(conn: psycopg.Connection) -> ConnInfo:
    """The login `conn` was opened with (TLS settings included), to open another like it."""
    info = conn.info
    params = info.get_parameters()
    return ConnInfo(info.host, info.port, info.dbname, info.user, info.password or None,
                    Tls(**{name: params.get(name) for name in ENV_KEYS}))


@contextmanager
def transaction(conn: psycopg.Connection, settings: Mapping[str, str]) -> Iterator[None]:
    """A transaction whose `settings` hold for it alone (SET LOCAL). A session-level SET would,
    behind a transaction pooler, stay on a server connection another client gets next, while
    this client's next transaction may run without it."""
    with conn.transaction():
        if settings:
            conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(
                sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
                for name, value in settings.items())))
        yield


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
