"""The agent's side of the database: one statement per read, typed calls for writes.

Every call opens its own connection as the agent role, so nothing an agent sets in one call
(session settings, advisory locks, prepared statements) outlives it. Each runs in a
transaction whose limits are SET LOCAL first: a read is READ ONLY, sent with the extended
protocol (the server refuses more than one statement in it) and streamed, so at most
`max_rows` rows are ever fetched; a write is one `SELECT agent_api.<function>(...)` whose
arguments travel as parameters.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from installer import db
from installer.credentials import ConnInfo
from installer.errors import InstallerError

CELL_CHARS = 10_000  # a longer text value is cut, and the answer says so
ANSWER_CHARS = 1_000_000  # rows stop once their JSON reaches this size


class AgentError(Exception):
    """What the agent is told when a call fails: the server's message, in plain words."""


@dataclass(frozen=True)
class Limits:
    statement_timeout_ms: int = 30_000
    max_rows: int = 500


def describe_error(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip() or type(exc).__name__
    if "cannot insert multiple commands into a prepared statement" in text:
        return "one statement per call: send each statement in its own `query` call"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        text += " (the statement took longer than this server allows)"
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        text += "; `query` only reads: record data with the typed tools (add_memory, ...)"
    extra = [f"{label}: {value}" for label, value in (("detail", diag.message_detail),
                                                      ("hint", diag.message_hint)) if value]
    return "; ".join([text, *extra])


@contextmanager
def transaction(info: ConnInfo, limits: Limits, *, read_only: bool) -> Iterator[psycopg.Cursor]:
    """A cursor in a fresh transaction with the limits set; a read is always rolled back.

    A watchdog cancels the statement shortly after the timeout, in case a statement found a
    way around `statement_timeout`.
    """
    try:
        conn = db.connect(info, autocommit=True, application_name="learning-mcp")
    except InstallerError as exc:  # its message names the URL and libpq's reason
        raise AgentError(f"the learning database is not reachable: {exc.message}") from exc
    watchdog = threading.Timer(limits.statement_timeout_ms / 1000 + 5, conn.cancel_safe)
    try:
        conn.execute("BEGIN READ ONLY" if read_only else "BEGIN READ WRITE")
        for name, value in (("statement_timeout", limits.statement_timeout_ms),
                            ("lock_timeout", min(limits.statement_timeout_ms, 5_000)),
                            ("idle_in_transaction_session_timeout",
                             limits.statement_timeout_ms + 10_000)):
            conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name),
                                                             sql.Literal(f"{value}ms")))
        watchdog.start()
        with conn.cursor() as cur:
            yield cur
        conn.execute("ROLLBACK" if read_only else "COMMIT")
    except psycopg.Error as exc:
        raise AgentError(describe_error(exc)) from exc
    finally:
        watchdog.cancel()
        conn.close()


def _jsonable(value: Any) -> tuple[Any, bool]:
    """A JSON value for one cell, and whether it was cut to CELL_CHARS."""
    if isinstance(value, bytes | memoryview):
        value = "\\x" + bytes(value).hex()
    elif isinstance(value, UUID | Decimal | date | datetime | time | timedelta):
        value = str(value)
    elif isinstance(value, dict | list):
        value = json.loads(json.dumps(value, default=str))
    elif value is not None and not isinstance(value, str | int | float | bool):
        value = str(value)
    if isinstance(value, str) and len(value) > CELL_CHARS:
        return value[:CELL_CHARS], True
    return value, False


@dataclass
class Answer:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: str = ""  # why there may be more, or ""
    status: str = ""

    def as_text(self) -> str:
        body: dict[str, Any] = {"columns": self.columns, "rows": self.rows,
                                "row_count": len(self.rows)}
        if self.truncated:
            body["truncated"] = self.truncated
        if not self.columns:
            body = {"status": self.status}
        return json.dumps(body, ensure_ascii=False, default=str)


def read(info: ConnInfo, limits: Limits, statement: str | sql.Composed,
         params: Mapping[str, Any] | None = None) -> Answer:
    """Rows of one read-only statement, at most `limits.max_rows` of them."""
    if isinstance(statement, str) and not statement.strip():
        raise AgentError("the query is empty: send one SQL statement")
    with transaction(info, limits, read_only=True) as cur:
        answer = Answer([], [])
        stream = cast(Generator[tuple[Any, ...], None, None], cur.stream(statement, params))
        size, cut = 0, False
        try:
            for row in stream:
                if answer.rows == [] and cur.description:
                    answer.columns = [col.name for col in cur.description]
                if len(answer.rows) >= limits.max_rows:
                    answer.truncated = f"more than {limits.max_rows} rows: only the first " \
                                       f"{limits.max_rows} are shown; add LIMIT/OFFSET or filter"
                    break
                if size >= ANSWER_CHARS:
                    answer.truncated = f"the rows shown reached {ANSWER_CHARS:,} characters; " \
                                       "select fewer or narrower columns"
                    break
                values = [_jsonable(value) for value in row]
                cut = cut or any(was_cut for _, was_cut in values)
                record = dict(zip(answer.columns, (value for value, _ in values), strict=True))
                size += len(json.dumps(record, default=str))
                answer.rows.append(record)
        finally:
            stream.close()  # stops the server sending the rest
        if cur.description and not answer.columns:
            answer.columns = [col.name for col in cur.description]
        if cut and not answer.truncated:
            answer.truncated = f"text values longer than {CELL_CHARS:,} characters were cut"
        answer.status = cur.statusmessage or ""
    return answer


def write(info: ConnInfo, limits: Limits, function: str, args: Mapping[str, Any],
          types: Mapping[str, str]) -> Any:
    """`SELECT agent_api.<function>(name => value::type, ...)` for the arguments given; the
    function's own defaults apply to the others. Returns its result."""
    given = {name: value for name, value in args.items() if value is not None}
    call = sql.SQL("SELECT agent_api.{}({})").format(sql.Identifier(function), sql.SQL(", ").join(
        sql.SQL("{} => {}::{}").format(sql.Identifier(f"p_{name}"), sql.Placeholder(name),
                                       sql.SQL(types[name]))
        for name in given))
    values = {name: Jsonb(value) if types[name] == "jsonb" else value
              for name, value in given.items()}
    with transaction(info, limits, read_only=False) as cur:
        row = cur.execute(call, values).fetchone()
    result = row[0] if row else None
    return str(result) if isinstance(result, UUID) else result
