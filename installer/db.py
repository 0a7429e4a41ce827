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

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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


def unreachable(info: ConnInfo, exc: BaseException, details: str | None = None) -> ServerError:
    return ServerError(
        f"cannot connect to {info.masked_url()}: {reason(exc)}",
        hint=f"start the server with {program.command('start')}, or repair the installation "
        f"with {program.command('--full')}; {program.command('doctor')} shows what is wrong",
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
    """The login `conn` was opened with, to open another connection like it."""
    info = conn.info
    return ConnInfo(info.host, info.port, info.dbname, info.user, info.password or None)


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
